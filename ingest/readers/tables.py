"""Tables as text a quote can stand on: a row is never separated from its header."""

from __future__ import annotations

from collections.abc import Sequence


def table_rows(rows: Sequence[Sequence[str]]) -> str:
    """A table as text a quote can stand on: one block per row (see `named_rows`)."""
    return "\n\n".join(named_rows(rows))


def named_rows(rows: Sequence[Sequence[str]]) -> list[str]:
    """A table's rows, each as one line with every cell named by its column's header (`Cluster: A |
    Chunkservers: 342 | Available disk space: 72 TB`), so that a row is never read, or quoted, without
    its header. The first non-empty row is the header."""
    cells = [[" ".join(str(c).split()) for c in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return []
    header, body = cells[0], cells[1:]
    if not body or len(header) < 2:
        return [" | ".join(c for c in row if c) for row in cells]
    out = [" | ".join(c for c in header if c)]
    for row in body:
        named = [f"{h}: {v}" if h else v for h, v in zip(header, row, strict=False) if v]
        out.append(" | ".join(named))
    return out


def merge_header(rows: Sequence[Sequence[str | None]]) -> list[list[str]]:
    """A drawn table's grid with its header rows made one. None marks a cell merged with the one above
    (a cell spanning columns is already repeated over them). The header is the first row and those
    under it whose first cell is empty or merged (a sub-header such as `mean | 99th percentile` under
    `latency (ms)`); a merged cell below the header repeats the value above it."""
    if not rows:
        return []
    depth = 1
    while depth < min(len(rows), 3) and not (rows[depth][0] or "").strip() and any(rows[depth][1:]):
        depth += 1
    width = max(len(row) for row in rows)
    header = [""] * width
    for row in rows[:depth]:
        for column, cell in enumerate(row):
            part = " ".join((cell or "").split())
            if part and part not in header[column]:
                header[column] = f"{header[column]} {part}".strip()
    body: list[list[str]] = []
    for row in rows[depth:]:
        above = body[-1] if body else [""] * width
        body.append([above[column] if cell is None else cell for column, cell in enumerate(row)])
    return [header, *body]
