"""How CLI commands print data: a readable table by default, JSON with ``--json``.

Ids that a later command takes (source, alert, call and key ids) are never truncated or
wrapped, whatever the terminal's width; other columns fold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from cli.http import print_json

Cell = Callable[[dict[str, Any]], Any]


def text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def when(value: Any) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM``."""
    if not value:
        return "—"
    return str(value).replace("T", " ")[:16]


def print_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str | Cell]],
    *,
    title: str | None = None,
    as_json: bool = False,
    ids: Sequence[str] = (),
    raw: Any = None,
) -> None:
    """``columns``: (header, key or function of the row). ``ids``: headers never truncated.
    With ``as_json`` prints ``raw`` (default: the rows) as JSON instead."""
    if as_json:
        print_json(rows if raw is None else raw)
        return
    table = Table(title=title, box=box.SIMPLE_HEAD)
    cells = [(key if callable(key) else (lambda r, k=key: r.get(k))) for _, key in columns]
    rendered = [[text(cell(row)) for cell in cells] for row in rows]
    for i, (header, _) in enumerate(columns):
        if header in ids:
            width = max([len(header), *(len(r[i]) for r in rendered)])
            table.add_column(header, no_wrap=True, min_width=width)
        else:
            table.add_column(header, overflow="fold")
    for r in rendered:
        table.add_row(*r)
    Console().print(table)
    if not rows:
        Console(stderr=True).print("(none)")
