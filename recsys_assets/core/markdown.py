"""Markdown for people: asset metadata and reports (the Dagster UI renders it)."""

from __future__ import annotations

from typing import Any


class Markdown(str):
    """Text to show rendered as markdown, wherever it travels (asset metadata, Pipes, checks)."""


def image(alt: str, png: bytes) -> Markdown:
    """A PNG embedded in markdown (the Dagster UI shows it inline; nothing to fetch)."""
    import base64

    return Markdown(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def _cell(value: Any) -> str:
    """A value as one table cell: a ``|`` or a line break in it (a title's) would split the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list[Any]]) -> Markdown:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))
