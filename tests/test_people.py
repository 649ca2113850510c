"""Users, roles and tokens: the user database, the login rules, and a real server holding two users to their
own collections through every route."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.collections import Collections
from rag.embedding import Embedder
from rag.settings import Settings
from tests.test_collections import ENG, HR
from ui.access import ANYONE, MAX_FAILURES, Access, Person, Refused
from ui.people import People, PeopleError
from ui.userdb import MIGRATIONS, DatabaseError

PASSWORD = "correct horse battery"


def test_users_passwords_roles_and_tokens(tmp_path: Path) -> None:
    people = People(tmp_path / "users.db")
    assert not people.any()
    people.add("Alice", PASSWORD)
    assert people.any() and people.verify("alice", PASSWORD) == "Alice"  # names match whatever their case
    assert people.verify("Alice", "wrong password") is None and people.verify("nobody", PASSWORD) is None
    stored = sqlite3.connect(tmp_path / "users.db").execute("SELECT password FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(PeopleError, match="exists"):
        people.add("ALICE", PASSWORD)
    with pytest.raises(PeopleError, match="too short"):
        people.add("bob", "short")
    with pytest.raises(PeopleError, match="cannot name a user"):
        people.add("bob smith", PASSWORD)
    people.grant("alice", "c1", "reader")
    people.grant("alice", "c1", "editor")  # replaces
    assert people.roles("ALICE") == {"c1": "editor"} and people.roles("nobody") is None
    with pytest.raises(PeopleError, match="role 'owner'"):
        people.grant("alice", "c1", "owner")
    made, token = people.new_token("alice", "laptop")
    assert token.startswith(f"rag_{made.id}_") and people.token_user(token) == "Alice"
    assert token not in (tmp_path / "users.db").read_bytes().decode(errors="replace")  # kept as a hash
    assert [t.label for t in people.tokens("alice")] == ["laptop"] and people.tokens()[0].last_used is not None
    people.revoke_token(made.id)
    assert people.token_user(token) is None
    _, second = people.new_token("alice")
    people.remove("alice")  # their roles and tokens go with them
    assert people.token_user(second) is None and people.roles("alice") is None and not people.any()


def test_the_schema_upgrades_in_place_once_whoever_starts_first(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    sqlite3.connect(path).close()  # an empty database file: version 0
    errors: list[Exception] = []

    def start() -> None:
        try:
            People(path).migrate()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(DatabaseError, match="newer version"):
        People(newer).any()


def test_roles_rise_and_logins_are_limited(tmp_path: Path) -> None:
    reader = Person("r", {"c1": "reader", "*": "reader"})
    assert reader.may("c1", "reader") and not reader.may("c1", "editor") and reader.may("c2", "reader")
    assert Person("e", {"c1": "editor"}).may("c1", "reader") and not Person("e", {"c1": "editor"}).may("", "reader")
    assert ANYONE.may("anything", "admin")
    settings = Settings.load(home=tmp_path / ".rag")
    access = Access(settings)
    assert not access.required() and access.identify("", "1.2.3.4") is ANYONE  # no login configured: as before
    access.people.add("carol", PASSWORD)
    assert access.required()
    with pytest.raises(Refused, match="credentials required"):
        access.identify("", "1.2.3.4")
    for _ in range(MAX_FAILURES):
        assert access.login("carol", "not it at all", "1.2.3.4") is None
    with pytest.raises(Refused, match="too many failed logins") as info:
        access.login("carol", PASSWORD, "5.6.7.8")  # the user is held, from any address
    assert info.value.status == 429 and info.value.retry_after
    with pytest.raises(Refused, match="too many failed logins"):
        access.login("dave", PASSWORD, "1.2.3.4")  # and the address, for any user
    access.people.add("frank", PASSWORD)
    for name in ("x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11"):
        assert access.login(name, "not it at all", "") is None  # page logins: no address to count against
    assert access.login("frank", PASSWORD, "") is not None  # so other users of the page are not locked out


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """A server over the default, `hr` and `eng` collections with alice (reader of hr), bob (editor of eng) and
    the admin of `RAG_AUTH`; their tokens."""
    from tests.helpers import serving
    from tests.test_collections import make_two

    base = make_two(tmp_path_factory.mktemp("team"), embedder)
    settings = Settings.load(home=base / ".rag", corpus=base / "corpus")
    people = People(settings.users)
    registry = Collections(settings)
    people.add("alice", PASSWORD)
    people.grant("alice", registry.get("hr").key, "reader")
    people.add("bob", PASSWORD)
    people.grant("bob", registry.get("eng").key, "editor")
    tokens = {"alice": people.new_token("alice")[1], "bob": people.new_token("bob")[1]}
    with serving(base, env={"RAG_AUTH": "root:root-password-1"}) as url:
        yield url, base, tokens


def client(url: str, token: str | None = None, auth: tuple[str, str] | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, auth=auth, timeout=120)


@pytest.mark.integration
def test_two_users_never_reach_each_others_collections(team: tuple[str, Path, dict[str, str]]) -> None:
    url, base, tokens = team
    with client(url, tokens["alice"]) as alice, client(url, auth=("bob", PASSWORD)) as bob:
        assert alice.get("/v1/collections").json() == {"collections": ["hr"], "default": None}
        assert bob.get("/v1/collections").json() == {"collections": ["eng"], "default": None}
        assert [m["id"] for m in alice.get("/v1/models").json()["data"]] == ["hr"]
        answer = alice.post("/v1/ask", json={"question": HR[2], "collection": "hr"}).json()
        assert HR[3] in answer["answer"]
        # Every route to another collection, or to one that does not exist, gets the same 404 line.
        refusals = [
            alice.post("/v1/ask", json={"question": ENG[2], "collection": "eng"}),
            alice.post("/v1/ask", json={"question": ENG[2]}),  # the server's own (default): not hers either
            alice.post("/v1/ask", json={"question": ENG[2], "collection": "sales"}),
            alice.get("/v1/status", params={"collection": "eng"}),
            alice.get("/v1/documents", params={"collection": "eng"}),
            alice.get("/v1/documents/eng/runbook.md/file", params={"collection": "eng"}),
            alice.get("/v1/documents/eng/runbook.md/view", params={"collection": "eng"}),
            alice.post("/v1/chat/completions", json={"model": "eng", "messages": [{"role": "user", "content": "x"}]}),
            alice.post("/v1/chat/completions", json={"model": "rag", "messages": [{"role": "user", "content": "x"}]}),
            bob.get("/v1/documents/hr/handbook.md/view", params={"collection": "hr"}),
        ]
        for refused in refusals:
            assert refused.status_code == 404, refused.text
            message = refused.json()["error"]["message"]
            assert "runbook" not in message and "handbook" not in message
            # the line for a collection that does not exist at all (the OpenAI route says "model")
            assert "you may read" in message or "does not exist; use 'rag' or a collection's name" in message
        # A guessed source inside her own collection is just not indexed there.
        assert alice.get("/v1/documents/eng/runbook.md/view", params={"collection": "hr"}).status_code == 404
        # A reader cannot change anything; an editor can, in their own collection only.
        upload = alice.post("/v1/documents", data={"collection": "hr"},
                            files=[("files", ("x.md", b"# X\n\nA fact.\n"))])
        assert upload.status_code == 403 and "editors only" in upload.json()["error"]["message"]
        assert alice.delete("/v1/documents/hr/handbook.md", params={"collection": "hr"}).status_code == 403
        added = bob.post("/v1/documents", data={"collection": "eng"},
                         files=[("files", ("oncall.md", b"# On call\n\nThe on-call rota changes on Mondays.\n"))])
        assert added.status_code == 200 and (base / "eng" / "oncall.md").exists()
        assert bob.post("/v1/documents", data={"collection": "hr"},
                        files=[("files", ("y.md", b"# Y\n\nAnother.\n"))]).status_code == 404
    with client(url, auth=("root", "root-password-1")) as root:  # RAG_AUTH: admin of everything
        assert root.get("/v1/collections").json()["collections"] == ["default", "eng", "hr"]
    with client(url) as nobody:
        assert nobody.get("/v1/status").status_code == 401
    with client(url, auth=("alice", "wrong password!")) as wrong:
        assert wrong.get("/v1/status").status_code == 401


@pytest.mark.integration
def test_a_revoked_token_stops_at_once_and_a_removed_user_too(team: tuple[str, Path, dict[str, str]]) -> None:
    url, base, _ = team
    people = People(Settings.load(home=base / ".rag").users)
    people.add("erin", PASSWORD)
    people.grant("erin", "*", "reader")
    made, token = people.new_token("erin")
    with client(url, token) as erin:
        assert erin.get("/v1/status", params={"collection": "hr"}).status_code == 200
        people.revoke_token(made.id)
        refused = erin.get("/v1/status", params={"collection": "hr"})
        assert refused.status_code == 401 and "not valid" in refused.json()["error"]["message"]
    with client(url, auth=("erin", PASSWORD)) as erin:
        assert erin.get("/v1/status", params={"collection": "hr"}).status_code == 200
        people.remove("erin")
        assert erin.get("/v1/status", params={"collection": "hr"}).status_code == 401


@pytest.mark.integration
def test_mcp_over_http_holds_a_user_to_their_collections(team: tuple[str, Path, dict[str, str]]) -> None:
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    url, _, tokens = team

    async def session() -> None:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {tokens['bob']}"}, timeout=120)
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as mcp:
            listed = await mcp.call_tool("list_collections", {})
            assert listed.structured_content["collections"] == ["eng"]
            asked = await mcp.call_tool("ask", {"question": ENG[2], "collection": "eng"})
            assert ENG[3] in asked.structured_content["answer"]
            for call in (mcp.call_tool("ask", {"question": HR[2], "collection": "hr"}),
                         mcp.call_tool("list_documents", {}), mcp.call_tool("search", {"query": "leave"})):
                refused = await call
                assert refused.is_error and "you may read" in refused.content[0].text

    anyio.run(session)


@pytest.mark.integration
def test_the_page_logs_users_in_with_an_httponly_cookie(team: tuple[str, Path, dict[str, str]]) -> None:
    url, _, _ = team
    with httpx.Client(base_url=url, timeout=60) as page:
        assert page.post("/login", data={"username": "alice", "password": "not her password"}).status_code == 400
        good = page.post("/login", data={"username": "alice", "password": PASSWORD})
        assert good.status_code == 200 and good.json() == {"success": True}
        cookies = good.headers.get_list("set-cookie")
        assert cookies and all("HttpOnly" in c for c in cookies) and any("SameSite" in c for c in cookies)
        assert page.get("/logout", follow_redirects=False).status_code in (302, 307)


@pytest.mark.integration
def test_conversations_are_saved_kept_private_and_reopened_after_a_restart(
        team: tuple[str, Path, dict[str, str]], embedder: Embedder) -> None:
    from ingest.pipeline import ingest
    from tests.helpers import serving

    _, base, tokens = team
    # A collection of its own: only this test's servers open it (one process at a time on an embedded store).
    registry = Collections(Settings.load(home=base / ".rag", corpus=base / "corpus"))
    notes = registry.create("notes", corpus=base / "notes")
    (notes.corpus / "leave.md").write_text(HR[1])
    assert ingest([notes.corpus], registry.settings_for("notes"), embedder=embedder).added == 1
    People(registry.settings.users).grant("alice", notes.key, "reader")
    env = {"RAG_AUTH": "root:root-password-1"}
    with serving(base, env=env) as url, client(url, tokens["alice"]) as alice, client(url, tokens["bob"]) as bob:
        first = alice.post("/v1/ask", json={"question": HR[2], "collection": "notes", "conversation": "new"}).json()
        ident = first["conversation"]
        assert HR[3] in first["answer"]
        follow = alice.post("/v1/ask", json={"question": "And is that per year?", "conversation": ident}).json()
        assert follow["conversation"] == ident and follow["standalone_question"] != "And is that per year?"
        [listed] = [c for c in alice.get("/v1/conversations").json()["conversations"] if c["id"] == ident]
        assert listed["title"] == HR[2] and listed["turns"] == 2 and listed["collection"] == "notes"
        for attempt in (bob.get(f"/v1/conversations/{ident}"), bob.delete(f"/v1/conversations/{ident}"),
                        bob.post("/v1/ask", json={"question": "x?", "conversation": ident}),
                        alice.get("/v1/conversations/not-an-id")):
            assert attempt.status_code == 404 and "no conversation" in attempt.json()["error"]["message"]
        assert ident not in str(bob.get("/v1/conversations").json())
        renamed = alice.patch(f"/v1/conversations/{ident}", json={"title": "Leave days"})
        assert renamed.json()["title"] == "Leave days"
    # The document changes and is indexed again while no server runs: the old citation says so.
    (notes.corpus / "leave.md").write_text(HR[1].replace("twenty-six", "twenty-eight"))
    assert ingest([notes.corpus], registry.settings_for("notes"), embedder=embedder).updated == 1
    with serving(base, env=env) as url, client(url, tokens["alice"]) as alice:  # a new server process
        reopened = alice.get(f"/v1/conversations/{ident}").json()
        assert reopened["title"] == "Leave days" and reopened["turns"][0]["question"] == HR[2]
        citations = reopened["turns"][0]["answer"]["citations"]
        assert citations and not any(c["current"] for c in citations)
        assert alice.delete(f"/v1/conversations/{ident}").json() == {"id": ident, "deleted": True}
        assert alice.get(f"/v1/conversations/{ident}").status_code == 404
    registry.remove("notes")  # the other tests of this server see alice with `hr` alone


@pytest.mark.integration
def test_a_load_across_two_users_and_collections_has_no_error_and_no_crossed_answer(
        team: tuple[str, Path, dict[str, str]]) -> None:
    from ui.bench.load import Question, run_load

    url, _, tokens = team
    asks = {"alice": ("hr", [Question(HR[2], True), Question(ENG[2], False), Question("Is leave paid?", True)]),
            "bob": ("eng", [Question(ENG[2], True), Question(HR[2], False), Question("Who deploys it?", True)])}
    results: dict[str, dict[str, object]] = {}

    def load(user: str) -> None:
        collection, questions = asks[user]
        results[user] = run_load(url, questions, clients=10, per_client=10, token=tokens[user], collection=collection)

    threads = [threading.Thread(target=load, args=(user,)) for user in asks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for user, result in results.items():
        assert result["requests"] == 100 and result["errors"] == 0, (user, result["error_examples"])
        assert result["answers"]["citing_other_documents"] == 0, user  # type: ignore[index]


@pytest.mark.integration
def test_the_command_line_manages_users_roles_and_tokens(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "RAG_HOME": str(tmp_path / ".rag")}

    def rag(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ui.cli", *args], input=stdin, capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120)

    assert rag("collections", "create", "hr").returncode == 0
    added = rag("users", "add", "zoe", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0 and "rag users grant zoe COLLECTION reader" in added.stdout
    assert rag("users", "add", "zed", "--password-stdin", stdin="short\n").stderr.startswith("error: the password")
    assert rag("users", "grant", "zoe", "hr", "editor").returncode == 0
    assert rag("users", "grant", "zoe", "sales", "reader").stderr.startswith("error: no collection named 'sales'")
    assert json.loads(rag("users", "list", "--json").stdout) == [{"name": "zoe", "roles": {"hr": "editor"}}]
    made = rag("users", "token", "zoe", "--label", "ci")
    token = made.stdout.strip()
    assert token.startswith("rag_") and "shown this once" in made.stderr
    people = People(Settings.load(home=tmp_path / ".rag").users)
    assert people.token_user(token) == "zoe" and people.verify("zoe", PASSWORD) == "zoe"
    [listed] = json.loads(rag("users", "tokens", "--json").stdout)
    assert listed["label"] == "ci" and token not in json.dumps(listed)
    assert rag("users", "token", "--revoke", listed["id"]).returncode == 0 and people.token_user(token) is None
    assert rag("users", "revoke", "zoe", "hr").returncode == 0 and people.roles("zoe") == {}
    assert rag("users", "remove", "zoe").returncode == 0 and not people.any()


@pytest.mark.browser
def test_the_page_shows_each_user_only_their_collections_and_conversations(
        team: tuple[str, Path, dict[str, str]], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, SERVER_WAIT

    url, _, _ = team
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)

        def login(name: str) -> Any:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(url)
            page.get_by_label("username").fill(name)
            page.get_by_label("password").fill(PASSWORD)
            page.get_by_role("button", name="Login").click()
            expect(page.locator("#question textarea")).to_be_editable(timeout=SERVER_WAIT)
            return page

        alice = login("alice")
        picker = alice.locator("#collection input")
        expect(picker).to_have_value("hr", timeout=SERVER_WAIT)  # the server's own (default) is not hers
        alice.locator("#collection input").click()
        expect(alice.get_by_role("option")).to_have_count(1)
        expect(alice.get_by_role("option", name="hr")).to_be_visible()
        alice.keyboard.press("Escape")
        alice.locator("#question textarea").fill(HR[2])
        alice.locator("#ask").click()
        expect(alice.locator("#chat")).to_contain_text(HR[3], timeout=SERVER_WAIT)
        alice.locator("#sources").get_by_text("hr/handbook.md").first.wait_for(timeout=SERVER_WAIT)
        # Its source opens in her collection, not the server's.
        link = alice.locator("#sources a.open-source").first.get_attribute("href") or ""
        assert "collection=hr" in link, link
        # The conversation is saved: a fresh page lists it and reopens it.
        again = login("alice")
        again.locator("#conversations input").click()
        again.get_by_role("option", name=HR[2]).click()
        expect(again.locator("#chat")).to_contain_text(HR[3], timeout=SERVER_WAIT)
        again.screenshot(path=tmp_path / "alice-reopened.png", full_page=True)
        # Bob sees his collection only, and none of alice's conversations.
        bob = login("bob")
        expect(bob.locator("#collection input")).to_have_value("eng", timeout=SERVER_WAIT)
        bob.locator("#conversations input").click()
        expect(bob.get_by_role("option", name=HR[2])).to_have_count(0)
        browser.close()


@pytest.mark.integration
def test_collections_users_and_conversations_survive_sigkill_of_the_server_and_of_an_ingest(
        tmp_path: Path, embedder: Embedder) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers import free_port
    from tests.test_collections import make_two

    base = make_two(tmp_path / "base", embedder)
    settings = Settings.load(home=base / ".rag", corpus=base / "corpus")
    people = People(settings.users)
    people.add("alice", PASSWORD)
    people.grant("alice", "*", "reader")
    _, token = people.new_token("alice")
    env = {**os.environ, "RAG_HOME": str(base / ".rag"), "RAG_CORPUS": str(base / "corpus")}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(port)], env=env, cwd=base,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saved: list[str] = []
    try:
        with client(f"http://127.0.0.1:{port}", token) as alice:
            deadline = time.monotonic() + 120
            while True:
                try:
                    alice.get("/v1/collections")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.3)
            for _ in range(3):
                saved.append(alice.post("/v1/ask", json={"question": HR[2], "collection": "hr",
                                                         "conversation": "new"}).json()["conversation"])
            # Killed while it writes: a question being saved, and another user added beside it.
            writing = threading.Thread(target=lambda: alice.post("/v1/ask", json={
                "question": ENG[2], "collection": "eng", "conversation": "new"}))
            writing.start()
            people.add("bob", PASSWORD)
            server.send_signal(signal.SIGKILL)
            writing.join()
    finally:
        server.kill()
        server.wait()
    # An ingest of a collection killed half way through its files (watched from here, as tests/test_ingest.py does).
    from rag.index.store import Store

    registry = Collections(settings)
    bulk = registry.create("bulk")
    for n in range(40):
        facts = " ".join(f"Crane {n} lifted load {j} of {n * 7} tonnes on day {j}." for j in range(30))
        (bulk.corpus / f"note-{n:02}.md").write_text(f"# Note {n}\n\n{facts}\n")
    slow = {**env, "RAG_EMBED_BATCH_SIZE": "2", "RAG_EMBED_GROUP": "8"}
    ingest_run = subprocess.Popen([sys.executable, "-m", "ui.cli", "ingest", "--collection", "bulk"], env=slow,
                                  cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    own = registry.settings_for("bulk")
    done, deadline = 0, time.monotonic() + 300
    while time.monotonic() < deadline and ingest_run.poll() is None and done < 5:
        time.sleep(0.2)
        if (own.home / "chroma" / "chroma.sqlite3").exists():
            try:
                done = max((c.count() for c in Store(own).client().list_collections() if c.name.endswith("-files")),
                           default=0)
            except Exception:  # opened while the writer was still creating it: look again
                continue
    assert ingest_run.poll() is None and 5 <= done < 40, done
    ingest_run.send_signal(signal.SIGKILL)
    ingest_run.wait()
    # Nothing lost: the database is whole, every user, role, token and saved conversation is there.
    with sqlite3.connect(settings.users) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [u.name for u in people.users()] == ["alice", "bob"] and people.token_user(token) == "alice"
    from ui.conversations import Conversations

    kept = {c.id for c in Conversations(settings.users).of("alice")}
    assert set(saved) <= kept
    assert [c.name for c in registry.list()] == ["default", "bulk", "eng", "hr"]
    from tests.helpers import run_rag

    done = run_rag("ingest", "--collection", "bulk", home=base / ".rag")  # the next run completes the job
    assert done.returncode == 0 and "added 0," not in done.stdout, done.stdout  # it had work left: killed mid-way
    out = run_rag("ask", "How many tonnes did crane 33 lift?", "--json", "--collection", "bulk", home=base / ".rag")
    assert "231 tonnes" in out.stdout


def test_a_database_of_the_first_version_upgrades_in_place_keeping_its_users(tmp_path: Path) -> None:
    from ui.conversations import Conversations

    path = tmp_path / "users.db"
    with sqlite3.connect(path) as db:  # what the first release wrote: people, no conversations
        for statement in filter(str.strip, MIGRATIONS[0].split(";")):
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO users VALUES ('olga', 'not-a-real-hash', 0)")
    conversations = Conversations(path)
    ident = conversations.start("olga", "", "How many cranes?")  # the new tables are there
    assert [c.id for c in conversations.of("olga")] == [ident]
    assert [u.name for u in People(path).users()] == ["olga"]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 2


@pytest.mark.integration
def test_admins_manage_collections_and_people_over_http(team: tuple[str, Path, dict[str, str]]) -> None:
    url, _, tokens = team
    with client(url, auth=("root", "root-password-1")) as root, client(url, tokens["alice"]) as alice:
        for refused in (alice.post("/v1/collections", json={"name": "legal"}), alice.get("/v1/users"),
                        alice.post("/v1/users", json={"name": "gina", "password": PASSWORD}),
                        alice.delete("/v1/collections/hr")):
            assert refused.status_code == 403 and "admins only" in refused.json()["error"]["message"], refused.text
        assert root.post("/v1/collections", json={"name": "legal"}).json() == {"name": "legal"}
        assert root.post("/v1/users", json={"name": "gina", "password": PASSWORD}).status_code == 200
        assert root.post("/v1/users/gina/roles", json={"collection": "legal", "role": "editor"}).status_code == 200
        assert {"name": "gina", "roles": {"legal": "editor"}} in root.get("/v1/users").json()["users"]
        made = root.post("/v1/users/gina/tokens", json={"label": "ci"}).json()
        with client(url, made["token"]) as gina:
            assert gina.get("/v1/collections").json()["collections"] == ["legal"]
            assert root.delete(f"/v1/tokens/{made['id']}").json()["revoked"] is True
            assert gina.get("/v1/collections").status_code == 401
        assert root.delete("/v1/users/gina").json()["removed"] is True
        assert root.delete("/v1/collections/legal").json() == {"name": "legal", "removed": True}
        assert "legal" not in root.get("/v1/collections").json()["collections"]
        bad = root.post("/v1/collections", json={"name": "../etc"})
        assert bad.status_code == 400 and "cannot name a collection" in bad.json()["error"]["message"]
