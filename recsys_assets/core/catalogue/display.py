"""What a person sees for an item: its title, or, for an item without one (about 8% of the
synthetic default, and real Amazon metadata has them too), a name made from its brand, its most
specific category and its id. The API, the explorer and the reports all show this name, so an
item reads the same everywhere and never as a blank."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def display_name(item_id: str, title: object, brand: object, categories: Iterable[object] | None) -> str:
    """The title; else "<brand> <most specific category> (<id>)", either part when the other is
    missing; else "Item <id>"."""
    if named := _text(title):
        return named
    category = next((c for c in reversed(list(categories if categories is not None else [])) if _text(c)), "")
    parts = [p for p in (_text(brand), _text(category)) if p]
    return f"{' '.join(parts)} ({item_id})" if parts else f"Item {item_id}"


def display_names(items: pd.DataFrame) -> list[str]:
    """``display_name`` of every row of a catalogue frame (``item_id``, ``title``, ``brand``,
    ``categories``), in order."""
    columns: Sequence[str] = ("item_id", "title", "brand", "categories")
    return [display_name(*row) for row in items[list(columns)].itertuples(index=False, name=None)]
