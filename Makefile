# Fresh machine: `make demo` (index corpus/, serve the chat page on http://127.0.0.1:7860) or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint browser ocr clean

install: $(STAMP)

# torch is installed first and pinned (constraints.txt) to the local CPU build: an unpinned
# torch pulls gigabytes of CUDA packages.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install ocr
	$(BIN)/rag ingest corpus
	$(BIN)/rag serve

lint: install
	$(BIN)/ruff check rag ingest ui tests
	$(BIN)/mypy

# OCR of scanned pages and images: Debian's Tesseract (RAG_OCR=auto uses it when it is installed).
ocr:
	@command -v tesseract >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    tesseract-ocr tesseract-ocr-eng >/dev/null; } || \
	  echo "warning: could not install tesseract-ocr; scanned pages and images will not be read"

# The browser test drives Debian's Chromium (Playwright cannot download browsers offline).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: lint browser ocr
	$(BIN)/pytest

# The unit layer, for the inner loop (under a minute): no model, index, server or browser.
test-fast: install
	$(BIN)/pytest -m "not integration and not server and not browser"

# A Chroma server for RAG_CHROMA_URL=http://127.0.0.1:8000 (the `chroma` command comes with chromadb, works offline).
.PHONY: chroma
CHROMA_PATH ?= .rag/chroma-server
CHROMA_PORT ?= 8000
chroma: install
	$(BIN)/chroma run --path $(CHROMA_PATH) --host 127.0.0.1 --port $(CHROMA_PORT)

clean:
	rm -rf $(VENV) .rag
