"""Tables as text a quote can stand on: a row is never separated from its header."""

from __future__ import annotations

from collections.abc import Sequence


def table_rows(rows: Sequence[Sequence[str]]) -> str:
    """A table as text a quote can stand on: one block per row, each cell after the first named by
    its column's header (`Cluster A | Chunkservers: 342 | Available disk space: 72 TB`), so that a
    row is never read, or quoted, without its header."""
    cells = [[" ".join(str(c).split()) for c in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return ""
    header, body = cells[0], cells[1:]
    if not body or len(header) < 2:
        return "\n\n".join(" | ".join(c for c in row if c) for row in cells)
    out = [" | ".join(c for c in header if c)]
    for row in body:
        named = [row[0]] + [f"{h}: {v}" if h else v for h, v in zip(header[1:], row[1:], strict=False) if v]
        out.append(" | ".join(c for c in named if c))
    return "\n\n".join(out)
