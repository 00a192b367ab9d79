"""Text clean-up shared by every reader: HTML tags stripped, entities unescaped, whitespace collapsed."""

from __future__ import annotations

import html
import re
from typing import Any

_TAG = re.compile(r"<[^<>]{0,200}>")
_SPACE = re.compile(r"\s+")


def clean_text(value: Any) -> str | None:
    """Normalise a raw text field; lists (2018/2023 descriptions) are joined with spaces.

    Tags are stripped *before* entities are unescaped so that an escaped ``&lt;5mm``
    survives as text. Returns ``None`` for missing or blank values.
    """
    if value is None:
        return None
    if isinstance(value, list):
        value = " ".join(str(part) for part in value if part is not None)
    elif not isinstance(value, str):
        value = str(value)
    if "<" in value:
        value = _TAG.sub(" ", value)
    if "&" in value:
        value = html.unescape(value)
    value = _SPACE.sub(" ", value).strip()
    return value or None
