"""One ASGI app: the chat page at `/`, the HTTP API under `/v1`, its OpenAPI docs at `/docs`, MCP at `/mcp`."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from swagger_ui_bundle import swagger_ui_path

from ingest.pipeline import Report
from ingest.watch import Watcher
from rag.assistant import Assistant
from rag.errors import IndexMissingError, RagError
from rag.settings import Settings
from ui.access import Access, Person, Refused
from ui.admin import admin_router
from ui.api import error, rag_error, router
from ui.app import CSS, HEAD, build_app
from ui.mcp import build_mcp


def create_app(assistant: Assistant, watcher: Watcher | None = None, host: str = "127.0.0.1") -> Any:
    """The FastAPI app serving page, API and MCP over one shared `assistant` (and the state of `watcher`,
    when folders are watched), to be served on `host`.

    With users in the user database, `RAG_AUTH` (`USER:PASS`) or `RAG_API_TOKEN`, the page asks for a login
    and the API and MCP want HTTP basic credentials or a bearer token, and each request is held to the
    person's roles (`ui.access`).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    settings = assistant.settings
    access = Access(assistant.base_settings)

    def guard(request: Request) -> Person:
        """The person a request comes from (`ui.access`); a 401 or 429 when it does not say, or says wrongly."""
        try:
            person = access.identify(request.headers.get("authorization", ""),
                                     request.client.host if request.client else "")
        except Refused as exc:
            headers = {"WWW-Authenticate": 'Basic realm="rag"'} if exc.status == 401 else {}
            if exc.retry_after is not None:
                headers["Retry-After"] = str(exc.retry_after)
            raise HTTPException(exc.status, str(exc), headers=headers) from None
        request.state.person = person  # for the routes (`ui.api.asker`)
        return person

    mcp = build_mcp(assistant, access)
    # The SDK's own app gives the MCP endpoint (with DNS-rebinding protection on a loopback host); its session
    # manager runs for the life of ours.
    mcp_app = mcp.streamable_http_app(streamable_http_path="/mcp", host=host)
    app = FastAPI(title="rag: cited answers from your documents", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lambda _: mcp.session_manager.run())
    app.include_router(router(assistant, access, guard, watcher))
    app.include_router(admin_router(assistant, access, guard))
    app.add_exception_handler(RagError, rag_error)  # every route's RagError, as a status and an OpenAI-shaped body
    endpoint = next(r.endpoint for r in mcp_app.routes if isinstance(r, Route) and r.path == "/mcp")
    app.router.routes.append(Route("/mcp", _Guarded(endpoint, guard), methods=["GET", "POST", "DELETE"],
                                   include_in_schema=False))

    @app.exception_handler(StarletteHTTPException)  # FastAPI's subclass, and Starlette's own body errors
    def refused(request: Request, exc: StarletteHTTPException) -> JSONResponse:  # OpenAI-shaped, like every API error
        kind = "authentication_error" if exc.status_code == 401 else "invalid_request_error"
        body = {"error": {"message": str(exc.detail), "type": kind}}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return error(422, f"invalid request: {problems}")

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(guard)])
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(guard)])
    def docs() -> HTMLResponse:  # Swagger UI from a local copy: no CDN, works offline
        return get_swagger_ui_html(openapi_url="/openapi.json", title="rag API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="")

    blocks = build_app(assistant, watcher, access)

    def page_login(name: str, password: str) -> bool:
        try:
            return access.login(name, password, "") is not None
        except Refused:
            return False

    return gr.mount_gradio_app(
        app, blocks, path="/", auth=page_login if access.required() else None, css=CSS, head=HEAD,
        footer_links=[], run_history=False, max_file_size=settings.max_file_bytes,
        show_error=True, mcp_server=False, ssr_mode=False,
    )


class _Guarded:
    """An ASGI app behind the API's credentials check: a refused request gets the API's 401 body."""

    def __init__(self, app: Any, guard: Callable[[Request], object]) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            self.guard(Request(scope))
        except HTTPException as exc:
            body = {"error": {"message": str(exc.detail), "type": "authentication_error"}}
            await JSONResponse(body, status_code=exc.status_code, headers=exc.headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def serve(settings: Settings, host: str, port: int, watch: list[Path] | None = None,
          collection: str | None = None) -> None:
    """Load the model, open the index of `collection` (default: the default one; requests may name any other)
    or wait for uploads, then serve until interrupted; with `watch`, keep that collection's index in step
    with those folders (`[]`: its corpus folder) meanwhile."""
    import uvicorn

    _check_port(host, port)
    if not _loopback(host) and settings.auth is None:
        print(f"warning: serving on {host} without --auth: anyone who can reach this address can read "
              "and add documents", file=sys.stderr)
    assistant = Assistant(settings).collection(collection)
    settings = assistant.settings
    assistant.warm_up()  # load the model now, not on the first question
    try:
        status = assistant.status()
        print(f"index: {status['documents']} documents, {status['chunks']} chunks ({status['location']})")
    except IndexMissingError as exc:  # other errors (a mismatched index) stop here, in one line
        print(f"warning: {exc}, or upload documents on the page", file=sys.stderr)
    watcher = None
    if watch is not None:
        def synced(report: Report | None, error: str) -> None:
            assistant.refresh()
            print(f"sync: {report.summary() if report else 'failed: ' + error}", flush=True)

        watcher = Watcher(watch or [settings.corpus], settings, assistant.embedder, on_sync=synced)
    app = create_app(assistant, watcher, host)
    if watcher is not None:
        watcher.start()
        print(f"watching {', '.join(watcher.state.folders)}: changes are indexed within seconds", flush=True)
    print(f"serving the chat page on http://{_url_host(host)}:{port}/ and the API on "
          f"http://{_url_host(host)}:{port}/v1 (docs at /docs, MCP at /mcp); Ctrl-C stops", flush=True)
    # Open page connections (Gradio's event streams) must not hold up Ctrl-C for long.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _check_port(host: str, port: int) -> None:
    """Fail with one clear line when the address cannot be bound (uvicorn would log and exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise RagError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another with --port "
                           "or --host") from None
