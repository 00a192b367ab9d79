"""Display names: an item without a title still reads as something, the same everywhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_assets.core.catalogue.display import display_name, display_names


@pytest.mark.parametrize(
    ("title", "brand", "categories", "expected"),
    [
        ("  Sony WH-1000XM4 ", "Sony", ["Electronics", "Headphones"], "Sony WH-1000XM4"),
        (None, "VortekY", np.array(["Electronics", "Audio", "Headphones"]), "VortekY Headphones (B06)"),
        ("", "VortekY", ["Electronics", "Headphones", " "], "VortekY Headphones (B06)"),  # blanks skipped
        (None, None, ["Movies", "Comedy"], "Comedy (B06)"),
        (float("nan"), "Anker", [], "Anker (B06)"),  # a missing value read from Parquet
        (None, "", None, "Item B06"),
    ],
)
def test_a_title_else_brand_category_and_id(
    title: object, brand: object, categories: object, expected: str
) -> None:
    assert display_name("B06", title, brand, categories) == expected  # type: ignore[arg-type]


def test_every_row_of_a_catalogue_in_order() -> None:
    items = pd.DataFrame(
        {
            "item_id": ["A", "B", "C"],
            "title": ["Cable", None, None],
            "brand": ["Anker", "Sony", None],
            "categories": [["Electronics"], ["Electronics", "Headphones"], []],
            "price": [9.0, None, None],
        }
    )
    assert display_names(items) == ["Cable", "Sony Headphones (B)", "Item C"]
