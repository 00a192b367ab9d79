"""The synthetic catalogue: deterministic, in the real 2014 format, with the promised structure."""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recsys_assets.core.catalogue.staging import stage_interactions, stage_items
from recsys_assets.devdata.synthetic import (
    CATEGORIES,
    CATEGORY_NAMES,
    METADATA_FILE,
    PRESETS,
    REVIEWS_FILE,
    generate,
)

SMALLER = {"n_items": 600, "n_users": 300, "n_reviews": 9_000, "n_reviewed_items": 400}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("synthetic")
    return out, generate("small", out, overrides=SMALLER)


def _digest(path: Path) -> str:
    with gzip.open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def test_same_seed_same_files(tmp_path: Path, small: tuple[Path, dict[str, object]]) -> None:
    out, _ = small
    again = tmp_path / "again"
    generate("small", again, overrides=SMALLER, image_files=False, image_base_uri=(out / "images").as_uri())
    assert _digest(again / REVIEWS_FILE) == _digest(out / REVIEWS_FILE)
    assert _digest(again / METADATA_FILE) == _digest(out / METADATA_FILE)


def test_files_are_in_the_real_2014_format(small: tuple[Path, dict[str, object]]) -> None:
    out, manifest = small
    with gzip.open(out / METADATA_FILE, "rt") as fh:
        first_meta = fh.readline()
    assert first_meta.startswith("{'asin': '")  # a Python literal, not JSON
    record = ast.literal_eval(first_meta)
    assert {"asin", "categories", "salesRank", "brand"} <= set(record)
    with gzip.open(out / REVIEWS_FILE, "rt") as fh:
        review = json.loads(fh.readline())
    assert {"reviewerID", "asin", "overall", "unixReviewTime", "reviewText", "summary"} <= set(review)
    assert manifest["reviews"] == SMALLER["n_reviews"]
    assert manifest["items"] == SMALLER["n_items"]


def test_structure(small: tuple[Path, dict[str, object]]) -> None:
    out, _ = small
    items = stage_items(str(out / METADATA_FILE), "2014", workers=1).items
    months = [str(m) for m in np.arange(np.datetime64("2012-08"), np.datetime64("2014-08"))]
    staged = stage_interactions(str(out / REVIEWS_FILE), "2014", months, ("2012-08", "2014-08"), workers=1)
    reviews = pd.concat(staged.months.values(), ignore_index=True)
    assert len(reviews) == SMALLER["n_reviews"] and staged.unassigned.empty

    # At least 24 months, each with reviews, volume growing gently (no month-to-month cliff).
    per_month = np.array([len(staged.months[m]) for m in months])
    assert len(months) >= 24 and per_month.min() > 0
    assert per_month[-6:].mean() > per_month[:6].mean()
    assert np.abs(np.diff(per_month) / per_month[:-1]).max() < 0.5

    # Every user has at least 5 reviews and reviews an item once.
    assert reviews.groupby("user_id").size().min() >= 5
    assert not reviews.duplicated(["user_id", "item_id"]).any()

    # Some items lack text or images; only part of the catalogue is ever reviewed.
    assert 0.03 < items["title"].isna().mean() < 0.2
    assert 0.1 < items["description"].isna().mean() < 0.4
    assert 0.5 < items["image_url"].notna().mean() < 0.9
    reviewed = reviews["item_id"].nunique()
    assert reviewed <= SMALLER["n_reviewed_items"] < len(items)

    # Power-law popularity: the top 10% of reviewed items take far more than 10% of reviews.
    counts = reviews["item_id"].value_counts().to_numpy()
    assert counts[: len(counts) // 10].sum() / counts.sum() > 0.3

    # Titles carry the category signal: a category's own words occur in its items' titles.
    category = items["categories"].map(lambda c: c[-1])
    assert category.nunique() == len(CATEGORY_NAMES)
    vocab = {CATEGORIES[name][0][-1]: CATEGORIES[name][1] for name in CATEGORY_NAMES}
    titled = items[items["title"].notna()]
    hits = [
        any(word.title() in title for word in vocab[cat])
        for title, cat in zip(titled["title"], category[titled.index], strict=True)
    ]
    assert all(hits)

    # Preferences drift: a user's first and last quarter of reviews differ in category.
    item_cat = dict(zip(items["item_id"], category, strict=True))
    reviews["cat"] = reviews["item_id"].map(item_cat)
    reviews = reviews.sort_values(["user_id", "ts"])
    shifted = 0
    for _, group in reviews.groupby("user_id"):
        quarter = max(1, len(group) // 4)
        head, tail = group["cat"].iloc[:quarter], group["cat"].iloc[-quarter:]
        shifted += head.mode().iloc[0] != tail.mode().iloc[0]
    assert shifted / reviews["user_id"].nunique() > 0.4


def test_images_exist_for_image_urls(small: tuple[Path, dict[str, object]]) -> None:
    out, manifest = small
    items = stage_items(str(out / METADATA_FILE), "2014", workers=1).items
    urls = items["image_url"].dropna()
    assert manifest["image_files"] == len(urls)
    path = Path(urls.iloc[0].removeprefix("file://"))
    with Image.open(path) as image:
        assert image.size == (64, 64) and image.format == "JPEG"


def test_reference_preset_has_the_reference_shape() -> None:
    preset = PRESETS["amazon-electronics"]
    assert (preset.n_items, preset.n_users, preset.n_reviews, preset.n_reviewed_items) == (
        498_196,
        192_403,
        1_689_116,
        63_001,
    )


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        generate("huge", Path("/nonexistent"))
