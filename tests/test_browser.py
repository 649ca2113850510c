"""The chat page in a real browser (Playwright, headless Chromium) against the real `rag serve` of `live`.

Screenshots go under each test's tmp_path (their paths are printed: run with -s to see them). Set
README_SCREENSHOT=/some/path.png to also save the README picture of the page after the follow-up.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright

from ingest.readers import FORMATS
from tests.helpers import HIGH_QUESTION, LOW_QUESTION, OFF_TOPIC_QUESTION, Live, make_paper

pytestmark = pytest.mark.browser  # a real browser against a real server

CHROMIUM = "/usr/bin/chromium"  # the system's Chromium when there is one; else Playwright's own download
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WIDE: ViewportSize = {"width": 1400, "height": 1000}  # chat and sources side by side
NARROW: ViewportSize = {"width": 700, "height": 900}  # the columns stack: the sources panel is below the fold
SERVER_WAIT = 120_000  # ms; for answers and ingests, which may queue behind other tests' requests

SEED_DOC = "corpus/deepseek-huawei-nvidia-buying-frenzy.md"
Q_910C = "How many 910C processors will Huawei make?"
QUOTE_910C = "Huawei aims to crank out 100,000 of its latest 910C processors this year."
Q_OLDER = "And of the older model?"
QUOTE_910B = "They'll make 300,000 of the older 910B chips too."
Q_OFF_TOPIC = "What is the capital of Australia?"
PLACEHOLDER = "Sources appear here: the quoted sentence inside its passage."


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        found = shutil.which(CHROMIUM)
        launched = playwright.chromium.launch(executable_path=found, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


class Watched:
    """A fresh page (own context) that records console errors and uncaught page errors."""

    def __init__(self, browser: Browser, viewport: ViewportSize, shots: Path) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.shots = shots
        self.page.on("console", lambda m: self.errors.append(f"console.error: {m.text} at {m.location}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def shot(self, name: str, full_page: bool = True) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=path, full_page=full_page, animations="disabled", caret="hide")
        print(f"screenshot: {path}")
        return path

    def no_errors(self) -> None:
        """Fails (never as an expected failure) when the page logged an error."""
        if self.errors:
            pytest.fail(f"{len(self.errors)} browser error(s):\n" + "\n".join(self.errors))


@contextmanager
def _watching(browser: Browser, viewport: ViewportSize, shots: Path) -> Iterator[Watched]:
    w = Watched(browser, viewport, shots)
    yield w
    w.context.close()
    for line in w.errors:  # also when the test failed before its own check
        print(line)


@pytest.fixture
def watched(browser: Browser, tmp_path: Path) -> Iterator[Watched]:
    with _watching(browser, WIDE, tmp_path) as w:
        yield w


@pytest.fixture
def narrow(browser: Browser, tmp_path: Path) -> Iterator[Watched]:
    with _watching(browser, NARROW, tmp_path) as w:
        yield w


def open_page(w: Watched, live: Live) -> Page:
    page = w.page
    page.goto(live.url)
    expect(page.locator("#question textarea")).to_be_editable(timeout=SERVER_WAIT)
    return page


def ask(page: Page, question: str) -> Locator:
    """Type `question`, press Enter, and return the finished answer (not a streaming one)."""
    bots = page.locator("#chat [data-testid=bot]")
    before = bots.count()
    box = page.locator("#question textarea")
    box.press_sequentially(question)
    box.press("Enter")
    expect(box).to_have_value("")
    expect(bots).to_have_count(before + 1, timeout=SERVER_WAIT)
    # The sources panel changes only with the final answer, in the same update as the chat.
    expect(page.locator("#sources .src-title")).to_contain_text(f"“{question}”", timeout=SERVER_WAIT)
    latest = bots.last
    expect(latest.locator(".streaming")).to_have_count(0)
    expect(latest.locator(".answer, .abstain").first).to_be_visible()
    return latest


def card_for(page: Page, link: Locator) -> Locator:
    """The sources card a `[n]` link points to (by its href, `#src-<turn>-<n>`)."""
    href = link.get_attribute("href") or ""
    assert re.fullmatch(r"#src-\d+-\d+", href), href
    return page.locator(f"#sources .src-card{href}")


def documents_in(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
               and p.name.lower().endswith(FORMATS))


def test_chat_page_asks_follows_up_abstains_uploads_and_resets(watched: Watched, live: Live, tmp_path: Path) -> None:
    page = open_page(watched, live)
    documents = documents_in(live.base / "corpus")
    status = page.locator("#status")
    expect(status).to_have_text(re.compile(rf"\b{documents} documents · \d+ chunks · model "), timeout=SERVER_WAIT)
    expect(page.locator("#sources .src-title")).to_have_text(PLACEHOLDER)
    watched.shot("0-opened")

    # A question: a cited answer, and the quoted sentence highlighted in its source card.
    first = ask(page, Q_910C)
    expect(first.locator(".answer")).to_contain_text("100,000")
    one = first.locator(".answer a.cite").first
    expect(one).to_have_text("[1]")
    expect(one).to_have_attribute("title", f"{SEED_DOC}: {QUOTE_910C}")
    expect(first.locator(".src-list")).to_contain_text(SEED_DOC)
    expect(first.locator(".standalone")).to_have_count(0)
    card = card_for(page, one)
    expect(card).to_have_count(1)
    expect(card.locator(".src-n")).to_have_text("[1]")
    expect(card.locator("mark")).to_have_text(QUOTE_910C)
    expect(card.locator(".src-path")).to_have_text(re.compile(rf"^{re.escape(SEED_DOC)} characters \d+–\d+ · open$"))
    expect(card.locator(".src-score")).to_have_text(re.compile(r"^score -?\d\.\d\d$"))
    watched.shot("1-answer")
    # Open the cited source: its text, the quoted sentence marked and scrolled into view.
    with page.context.expect_page() as opened:
        card.locator("a.open-source").click()
    source = opened.value
    expect(source.locator("mark#quote")).to_have_text(QUOTE_910C, timeout=SERVER_WAIT)
    expect(source.locator("mark#quote")).to_be_in_viewport()
    expect(source.locator("h1")).to_have_text(re.compile("DeepSeek"))
    source.close()

    # A follow-up: resolved against the conversation, and the rewritten question shown under the answer.
    follow = ask(page, Q_OLDER)
    expect(page.locator("#chat [data-testid=bot]")).to_have_count(2)
    expect(follow.locator(".answer")).to_contain_text(QUOTE_910B)
    expect(follow.locator(".standalone")).to_have_text(re.compile(r"^Searched for: “.+”$"))
    expect(follow.locator(".standalone")).not_to_have_text(f"Searched for: “{Q_OLDER}”")
    older = follow.locator(f'.answer a.cite[title="{SEED_DOC}: {QUOTE_910B}"]')
    expect(older).to_have_count(1)
    expect(card_for(page, older).locator("mark")).to_have_text(QUOTE_910B)
    expect(page.locator("#sources .src-card")).not_to_have_count(0)
    expect(page.locator("#sources .src-card.closest")).to_have_count(0)
    watched.shot("2-follow-up")
    readme = watched.shot("readme", full_page=False)  # 1400x1000: both answers and the follow-up's sources
    if target := os.environ.get("README_SCREENSHOT"):
        shutil.copyfile(readme, target)
        print(f"README screenshot: {target}")

    # An off-topic question: an abstention, and the closest passages instead of sources.
    off = ask(page, Q_OFF_TOPIC)
    expect(off.locator(".abstain")).to_be_visible()
    expect(off.locator(".answer")).to_have_count(0)
    expect(off.locator("a.cite")).to_have_count(0)
    expect(page.locator("#sources .src-title.abstain")).to_have_text(
        f"No passage answers “{Q_OFF_TOPIC}”. Closest passages:")
    expect(page.locator("#sources .src-card.closest")).not_to_have_count(0)
    expect(page.locator("#sources .src-card:not(.closest)")).to_have_count(0)
    watched.shot("3-abstain")

    # Upload a document through the page; it is indexed and answers questions at once.
    name = "browser-quibbleflux-lantern.md"
    upload = tmp_path / name
    upload.write_text("# The Quibbleflux lantern\n\nThe Quibbleflux lantern was made by Orrin Vale in 1887. "
                      "It burned lamp oil behind a ring of green glass.\n\nOnly three of them were ever sold.\n",
                      encoding="utf-8")
    page.get_by_role("button", name="Add documents").click()
    expect(page.locator("#add")).to_be_visible()
    page.locator("#upload input[type=file]").set_input_files(upload)
    sent = page.locator("#upload .file-preview a")  # the link to the server's copy: the upload is done
    expect(sent).to_have_attribute("href", re.compile(rf"/gradio_api/file=.+/{re.escape(name)}$"), timeout=SERVER_WAIT)
    page.locator("#add").click()
    expect(page.locator("#upload-result li")).to_have_text(f"✅ {name}: added · indexed as corpus/{name}",
                                                        timeout=SERVER_WAIT)
    expect(status).to_have_text(re.compile(rf"\b{documents + 1} documents · \d+ chunks · model "))
    expect(page.locator("#upload .file-preview")).to_have_count(0)  # the file box is emptied for the next upload
    watched.shot("4-uploaded")
    lantern = ask(page, "Who made the Quibbleflux lantern?")
    expect(lantern.locator(".answer")).to_contain_text("Orrin Vale")
    expect(lantern.locator(".src-list")).to_contain_text(f"corpus/{name}")
    made = lantern.locator(".answer a.cite").first
    expect(made).to_have_attribute("title", f"corpus/{name}: The Quibbleflux lantern was made by Orrin Vale in 1887.")
    expect(card_for(page, made).locator(".src-path")).to_contain_text(f"corpus/{name}")
    watched.shot("5-uploaded-answer")

    # New chat: an empty conversation and the sources placeholder again.
    page.locator("#new-chat").click()
    expect(page.locator("#chat [data-testid=bot], #chat [data-testid=user]")).to_have_count(0)
    expect(page.locator("#chat")).to_contain_text("Ask a question about the indexed documents.")
    expect(page.locator("#sources .src-card")).to_have_count(0)
    expect(page.locator("#sources .src-title")).to_have_text(PLACEHOLDER)
    watched.shot("6-new-chat")

    watched.no_errors()


def test_low_confidence_answers_look_apart_and_abstentions_rank_their_passages(watched: Watched, live: Live) -> None:
    page = open_page(watched, live)
    expect(page.locator("#examples")).to_be_visible()  # the live corpus has a golden.jsonl
    new_chat = page.locator("#new-chat")

    # Low confidence: a visible label above a muted answer, and source cards that say so.
    low = ask(page, LOW_QUESTION)
    label = low.locator(".low-label")
    expect(label).to_be_visible()
    expect(label).to_have_text("Low confidence — closest evidence, may not answer the question")
    expect(low.locator(".answer.low")).to_be_visible()
    expect(low.locator(".answer.low")).to_have_css("font-style", "italic")  # the page's CSS applies
    expect(low.locator(".answer.low a.cite").first).to_have_text("[1]")
    expect(page.locator("#sources .src-title.low")).to_contain_text("low confidence")
    cards = page.locator("#sources .src-card.low")
    expect(cards).not_to_have_count(0)
    expect(page.locator("#sources .src-card:not(.low)")).to_have_count(0)
    expect(cards.first.locator(".src-note")).to_have_text("Closest evidence found: this quote may not answer "
                                                          "the question.")
    watched.shot("low-confidence")

    # A confident answer: none of that.
    new_chat.click()
    expect(page.locator("#chat [data-testid=bot]")).to_have_count(0)
    high = ask(page, HIGH_QUESTION)
    expect(high.locator(".answer")).to_be_visible()
    expect(high.locator(".answer")).to_have_css("font-style", "normal")
    expect(high.locator(".low-label, .answer.low")).to_have_count(0)
    expect(page.locator("#sources .src-card")).not_to_have_count(0)
    expect(page.locator("#sources .src-card.low, #sources .src-note, #sources .src-title.low")).to_have_count(0)
    watched.shot("high-confidence")

    # An abstention: its closest passages, best first, with their similarity, in the message and the panel.
    new_chat.click()
    expect(page.locator("#chat [data-testid=bot]")).to_have_count(0)
    off = ask(page, OFF_TOPIC_QUESTION)
    expect(off.locator(".low-label")).to_have_count(0)
    listed = off.locator(".src-list")
    expect(listed).to_have_text(re.compile(r"^Closest: corpus/\S+ \(similarity -?\d\.\d\d\)"))
    shown = [float(x) for x in re.findall(r"similarity (-?\d\.\d\d)", listed.inner_text())]
    scores = page.locator("#sources .src-card.closest .src-score")
    expect(scores).to_have_count(len(shown))
    panel = [float(t.removeprefix("similarity ")) for t in scores.all_inner_texts()]
    assert 1 <= len(shown) <= 3 and panel == shown == sorted(shown, reverse=True), (shown, panel)
    watched.shot("abstain-closest")

    watched.no_errors()


def test_clicking_a_citation_scrolls_its_source_card_into_view(narrow: Watched, live: Live) -> None:
    try:  # any failure before the click is a real failure, not the expected one
        page = open_page(narrow, live)
        one = ask(page, Q_910C).locator(".answer a.cite").first
        card = card_for(page, one)
        expect(card.locator("mark")).to_have_text(QUOTE_910C)
    except AssertionError as exc:
        pytest.fail(f"before the click: {exc}")
    box, fold = card.bounding_box(), page.viewport_size
    if box is None or fold is None or box["y"] < fold["height"]:  # else the check below would prove nothing
        pytest.fail(f"the card should start below the fold of a narrow page (columns stacked): {box}, {fold}")
    narrow.shot("before-click")
    one.click()
    narrow.no_errors()
    try:
        expect(card).to_be_in_viewport()
    finally:
        narrow.shot("after-click")


def test_documents_are_listed_filtered_opened_at_their_page_and_removed(watched: Watched, live: Live,
                                                                        tmp_path: Path) -> None:
    page = open_page(watched, live)
    paper = tmp_path / "browser-storage-paper.pdf"
    make_paper(paper)  # "A master process tracks where every chunk lives" on page 1
    page.get_by_role("button", name="Add documents").click()
    page.locator("#upload input[type=file]").set_input_files(paper)
    expect(page.locator("#upload .file-preview a")).to_have_attribute("href", re.compile(paper.name),
                                                                     timeout=SERVER_WAIT)
    page.locator("#add").click()
    expect(page.locator("#upload-result li")).to_contain_text(f"{paper.name}: added", timeout=SERVER_WAIT)

    # The documents view lists it with its title and pages.
    page.get_by_role("button", name=re.compile("^Documents")).click()
    table = page.locator("#documents-table")
    expect(table).to_contain_text(f"corpus/{paper.name}")
    expect(table).to_contain_text("Chunked Storage for Large Files")
    watched.shot("1-documents")

    # Asked within the paper only, a question the seed articles answer is not answered from them.
    page.get_by_role("button", name=re.compile("^Settings")).click()
    only = page.locator("#only input")
    only.fill(paper.name)
    page.get_by_role("option", name=f"corpus/{paper.name}").click()
    seed = ask(page, Q_910C)
    expect(seed.locator(f'a.cite[title^="{SEED_DOC}"]')).to_have_count(0)
    master = ask(page, "Which process keeps track of where each chunk is?")
    link = master.locator(f'.answer a.cite[title^="corpus/{paper.name}"]').first
    expect(link).to_have_count(1)
    opener = card_for(page, link).locator("a.open-source")
    expect(opener).to_have_attribute("href", f"/v1/documents/corpus/{paper.name}/file#page=1")
    pdf = page.request.get(live.url.rstrip("/") + f"/v1/documents/corpus/{paper.name}/file")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf" and pdf.body() == paper.read_bytes()
    watched.shot("2-filtered")

    # Remove it: the page asks first; a cancelled confirmation removes nothing.
    page.locator("#document input").fill(paper.name)
    page.get_by_role("option", name=f"corpus/{paper.name}").click()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#remove").click()
    expect(page.locator("#documents-result")).to_contain_text("choose a document first", timeout=SERVER_WAIT)
    expect(table).to_contain_text(f"corpus/{paper.name}")
    page.locator("#document input").fill(paper.name)
    page.get_by_role("option", name=f"corpus/{paper.name}").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#remove").click()
    expect(page.locator("#documents-result")).to_contain_text(
        f"corpus/{paper.name}: removed · deleted the uploaded file", timeout=SERVER_WAIT)
    expect(table).not_to_contain_text(f"corpus/{paper.name}")
    assert not (live.base / "corpus" / paper.name).exists()
    expect(page.locator("#only")).not_to_contain_text(paper.name)  # the filter let go of the removed document
    again = ask(page, "Which process keeps track of where each chunk is?")
    expect(again.locator(f'a.cite[title^="corpus/{paper.name}"]')).to_have_count(0)
    watched.shot("3-removed")

    # A picked document removed elsewhere (another tab, the API): asking is a clear error, not a search of all.
    name = "browser-picked-then-removed.md"
    sent = page.request.post(live.url.rstrip("/") + "/v1/documents", multipart={
        "files": {"name": name, "mimeType": "text/markdown", "buffer": b"# Gone\n\nThe Vexmoor bell rings at dusk.\n"}})
    assert sent.ok, sent.text()
    page.reload()
    expect(page.locator("#question textarea")).to_be_editable(timeout=SERVER_WAIT)
    page.get_by_role("button", name=re.compile("^Settings")).click()
    page.locator("#only input").fill(name)
    page.get_by_role("option", name=f"corpus/{name}").click()
    assert page.request.delete(live.url.rstrip("/") + f"/v1/documents/corpus/{name}").ok
    refused = ask_error(page, "When does the Vexmoor bell ring?")
    expect(refused).to_contain_text(f"no indexed document matches the source filter 'corpus/{name}'")
    watched.shot("4-filter-matches-nothing")
    watched.no_errors()


def ask_error(page: Page, question: str) -> Locator:
    """Type `question`, press Enter, and return the error the chat shows instead of an answer."""
    box = page.locator("#question textarea")
    box.press_sequentially(question)
    box.press("Enter")
    error = page.locator("#chat [data-testid=bot] .error").last
    expect(error).to_be_visible(timeout=SERVER_WAIT)
    return error

