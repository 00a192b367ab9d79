"""What a person sees for an item: its title, or, for an item without one (about 8% of the
synthetic default, and real Amazon metadata has them too), a name made from its brand, its most
specific category and its id. The API, the explorer and the reports all show this name, so an
item reads the same everywhere and never as a blank."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from recsys_assets.core.io.codecs import read_parquet


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def most_specific_category(categories: Iterable[object] | None) -> str:
    """The last non-blank entry of an item's category path ("" when it has none)."""
    return next(
        (_text(c) for c in reversed(list(categories if categories is not None else [])) if _text(c)), ""
    )


def display_name(item_id: str, title: object, brand: object, categories: Iterable[object] | None) -> str:
    """The title; else "<brand> <most specific category> (<id>)", either part when the other is
    missing; else "Item <id>"."""
    if named := _text(title):
        return named
    parts = [p for p in (_text(brand), most_specific_category(categories)) if p]
    return f"{' '.join(parts)} ({item_id})" if parts else f"Item {item_id}"


@dataclass(frozen=True)
class ItemCards:
    """What the API's explorer shows of each item, in node order: its display name, its most
    specific category and its image's URL (None without one)."""

    titles: list[str]
    categories: list[str]
    images: list[str | None]


def item_cards(items: pd.DataFrame) -> ItemCards:
    """The cards of a catalogue frame's rows (``item_id``, ``title``, ``brand``, ``categories``,
    ``image_url``), in order."""
    images = [url.strip() if isinstance(url, str) and url.strip() else None for url in items["image_url"]]
    return ItemCards(display_names(items), [most_specific_category(c) for c in items["categories"]], images)


def display_names(items: pd.DataFrame) -> list[str]:
    """``display_name`` of every row of a catalogue frame (``item_id``, ``title``, ``brand``,
    ``categories``), in order."""
    columns: Sequence[str] = ("item_id", "title", "brand", "categories")
    return [display_name(*row) for row in items[list(columns)].itertuples(index=False, name=None)]


def catalogue_cards(items_uri: str, node_items: list[str]) -> ItemCards:
    """The cards of the catalogue at ``items_uri`` (items.parquet), checked to be in the graph's
    node order ``node_items``."""
    catalogue = read_parquet(items_uri, columns=["item_id", "title", "brand", "categories", "image_url"])
    if catalogue["item_id"].tolist() != node_items:
        raise ValueError(f"{items_uri}: item order differs from node_maps.json; rematerialize node_maps")
    return item_cards(catalogue)
