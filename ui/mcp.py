"""The MCP server: agents search the documents, ask for checked, cited answers and list what is indexed,
over stdio (`rag mcp`) or streamable HTTP at `/mcp` under `rag serve` (behind the same credentials)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context  # at run time: the SDK finds a tool's context by its annotation
from pydantic import BaseModel, Field

from rag.assistant import Assistant
from rag.errors import RagError
from ui import render
from ui.access import ANYONE, Access, Person, Refused

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

INSTRUCTIONS = """Answers come from the user's own indexed documents. `ask` returns an answer whose every
sentence carries a verdict (supported, weak, unsupported) from a check of the quoted passage, and a
confidence (high: the quotes answer the question; low: only the closest evidence); an abstention means the
documents do not hold the answer. `search` returns passages with their source and character span;
`list_documents` says what is indexed. Documents may be kept in several collections (`list_collections`): each
tool takes the collection to use. Quote citations as given; do not add facts they do not hold."""


class Turn(BaseModel):
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: str


Named = Annotated[str | None, Field(description="The collection (`list_collections`); default: the server's.")]
Sources = Annotated[list[str] | None, Field(
    description="Only these documents: glob patterns on the source (`corpus/notes/*.md`) or its file name "
                "(`*.pdf`); none or [] means every document.")]


def build_mcp(assistant: Assistant, access: Access | None = None) -> MCPServer:
    """The MCP server over `assistant` (its collection; a call may name another): tools `search`, `ask`,
    `list_documents` and `list_collections`. Over HTTP each call is held to the caller's roles (`access`);
    over stdio the caller is the local user, who may read everything."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server: MCPServer = MCPServer("rag", instructions=INSTRUCTIONS)

    def who(ctx: Context | None) -> Person:
        if access is None:
            return ANYONE  # stdio: the local user
        try:
            request = ctx.request_context.request if ctx is not None else None
        except ValueError:
            request = None
        if request is None:  # over HTTP a call always has its request: without one, nobody is known
            if access.required():
                raise ToolError("credentials required")
            return ANYONE
        try:
            return access.identify(request.headers.get("authorization", ""),
                                   request.client.host if request.client else "")
        except Refused as exc:
            raise ToolError(str(exc)) from None

    def pick(ctx: Context | None, name: str | None) -> Assistant:
        person = who(ctx)
        return access.collection(person, assistant, name) if access is not None else assistant.collection(name)

    def clear(text: str, what: str) -> str:
        if not text.strip():
            raise ToolError(f"{what} is empty; give the words to look for")
        return text

    @server.tool(title="Search the documents")
    def search(query: Annotated[str, Field(description="What to look for, in words.")],
               k: Annotated[int, Field(ge=1, le=50, description="How many passages.")] = 5,
               sources: Sources = None, collection: Named = None, ctx: Context | None = None) -> dict[str, Any]:
        """The passages of the indexed documents that best match `query`, best first, each with its source,
        title, page or section, character span in the document (start, end) and score."""
        try:
            hits = pick(ctx, collection).retrieve(clear(query, "query"), k, sources=sources)
        except RagError as exc:
            raise ToolError(str(exc)) from None
        return {"passages": [{**hit.to_dict(), "score": round(hit.score, 4)} for hit in hits]}

    @server.tool(title="Ask the documents")
    def ask(question: Annotated[str, Field(description="The question.")],
            history: Annotated[list[Turn] | None, Field(
                description="Earlier turns, oldest first, so that a follow-up is understood.")] = None,
            sources: Sources = None, collection: Named = None, ctx: Context | None = None) -> dict[str, Any]:
        """A cited answer from the indexed documents: the answer text with [n] markers, its confidence, and
        for each citation the quoted sentence, its source, character span and the check's verdict (and a
        verdict for each answer sentence). `abstained` is true when the documents do not hold the answer."""
        turns = [{"role": t.role, "content": t.content} for t in history or []]
        try:
            answer = pick(ctx, collection).ask(clear(question, "question"), turns, sources=sources)
        except RagError as exc:
            raise ToolError(str(exc)) from None
        return answer.to_dict()

    @server.tool(title="List the indexed documents")
    def list_documents(offset: Annotated[int, Field(ge=0)] = 0,
                       limit: Annotated[int, Field(ge=1, le=1000)] = 100, collection: Named = None,
                       ctx: Context | None = None) -> dict[str, Any]:
        """The indexed documents (source, title, pages, chunks, size, when indexed), a page at a time, and
        the files the last ingest could not read, with the reason."""
        try:
            return render.listing(pick(ctx, collection), offset, limit)
        except RagError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(title="List the collections")
    def list_collections(ctx: Context | None = None) -> dict[str, Any]:
        """The collections (named document sets) the other tools take as `collection`, and the one used when a
        call names none."""
        mine = access.readable(who(ctx), assistant) if access is not None else assistant.collections()
        return {"collections": mine, "default": assistant.collection_name if assistant.collection_name in mine
                else None}

    return server


def serve_stdio(assistant: Assistant) -> None:
    """Answer one MCP client over stdin/stdout until it closes them."""
    import anyio

    anyio.run(build_mcp(assistant).run_stdio_async)
