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
from recsys_assets.core.graphs.splits import split_interactions
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


def test_structure(small: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    out, manifest = small
    items = stage_items(str(out / METADATA_FILE), "2014", tmp_path, workers=1).load_items()
    months = [str(m) for m in np.arange(np.datetime64("2012-08"), np.datetime64("2014-08"))]
    staged = stage_interactions(
        str(out / REVIEWS_FILE), "2014", months, ("2012-08", "2014-08"), tmp_path, workers=1
    )
    reviews = pd.concat([staged.load(m) for m in months], ignore_index=True)
    # The small preset re-reviews 0.2% of its reviews: later events of a pair, staged as rows.
    re_reviews = round(PRESETS["small"].re_review_share * SMALLER["n_reviews"])
    assert manifest["expected_split"] == {
        "pairs": SMALLER["n_reviews"],
        "repeated_user_item_pairs": re_reviews,
    }
    assert len(reviews) == SMALLER["n_reviews"] + re_reviews == 9_018 and staged.unassigned.empty
    again = reviews.duplicated(["user_id", "item_id"], keep="first")
    assert again.sum() == re_reviews
    first = reviews[~again].set_index(["user_id", "item_id"])["ts"]
    later = reviews[again].set_index(["user_id", "item_id"])["ts"]
    gap = (later - first.loc[later.index]).dt.total_seconds() / 86_400
    assert (gap >= 1).all() and (gap <= 180).all()  # 1 to 180 days after the first review
    reviews = reviews[~again]

    # At least 24 months, each with reviews, volume growing gently (no month-to-month cliff).
    per_month = np.array([staged.months[m].rows for m in months])
    assert len(months) >= 24 and per_month.min() > 0
    assert per_month[-6:].mean() > per_month[:6].mean()
    assert np.abs(np.diff(per_month) / per_month[:-1]).max() < 0.5

    # Every user has at least 5 reviews and, re-reviews aside, reviews an item once.
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


def test_images_exist_for_image_urls(small: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    out, manifest = small
    items = stage_items(str(out / METADATA_FILE), "2014", tmp_path, workers=1).load_items()
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


QUIRKY = {
    **SMALLER,
    "duplicate_review_share": 30 / 9_000,
    "duplicate_rating_change_share": 7 / 30,
    "repeated_item_share": 25 / 600,
    "conflicting_item_share": 9 / 25,
    "wrong_type_review_share": 4 / 9_000,
    "wrong_type_item_share": 3 / 600,
    "blank_lines": 5,
    "re_review_share": 12 / 9_000,
}


@pytest.mark.parametrize("fmt", ["2014", "2018", "2023"])
def test_planted_quirks_stage_with_exactly_the_expected_counts(tmp_path: Path, fmt: str) -> None:
    manifest = generate("small", tmp_path / "raw", fmt=fmt, image_files=False, overrides=QUIRKY)
    files, expected = manifest["files"], manifest["expected_staging"]
    assert isinstance(files, dict) and isinstance(expected, dict)
    # The clean counts still hold; each quirk's count is the override asked for.
    assert expected == {
        "review_records": 9_000 + 30 + 4 + 12,
        "review_rows": 9_000 + 12,
        "duplicate_reviews": 30,
        "duplicates_with_other_rating": 7,
        "invalid_reviews": 4,
        "review_blank_lines": 5,
        "metadata_records": 600 + 25 + 3,
        "repeated_item_lines": 25,
        "items_with_conflicting_title": 9,
        "invalid_items": 3,
        "prices_not_finite": 3,
        "metadata_blank_lines": 5,
    }
    # Two workers on small blocks: duplicates and repeated items cross block boundaries.
    from recsys_assets.core.catalogue import blocks

    original, blocks.BLOCK_BYTES = blocks.BLOCK_BYTES, 64 * 1024
    try:
        items = stage_items(str(tmp_path / "raw" / files["metadata"]), fmt, tmp_path / "out", workers=2)
        months = [str(m) for m in np.arange(np.datetime64("2012-08"), np.datetime64("2014-08"))]
        staged = stage_interactions(
            str(tmp_path / "raw" / files["reviews"]), fmt, months, ("2012-08", "2014-08"), tmp_path / "out",
            workers=2,
        )  # fmt: skip
    finally:
        blocks.BLOCK_BYTES = original

    assert (items.records_read, items.items, items.blank_lines) == (628, 600, 5)
    assert (items.repeated_lines, dict(items.conflicts), items.invalid) == (25, {"title": 9}, 3)
    assert dict(items.nulled) == {"price: not a finite number": 3}
    quarantine = items.load_quarantine()
    assert quarantine["code"].value_counts().to_dict() == {"repeated_item": 25, "wrong_type": 3}
    assert (
        quarantine.loc[quarantine["code"] == "repeated_item", "kept_line"]
        .lt(quarantine.loc[quarantine["code"] == "repeated_item", "line"])
        .all()
    )
    assert set(items.conflict_examples["field"]) == {"title"}
    assert items.conflict_examples["values"].str.contains(r" \(Renewed\)").all()
    assert items.load_items()["item_id"].is_unique

    # Re-reviews are other events (a later time): staged as rows, then collapsed by the split.
    assert (staged.records_read, staged.rows, staged.blank_lines) == (9_046, 9_012, 5)
    interactions = pd.concat([staged.months[m].load() for m in months], ignore_index=True)
    split = split_interactions(interactions)
    assert manifest["expected_split"] == {"pairs": 9_000, "repeated_user_item_pairs": 12}
    assert (len(split.frame), split.repeated_pairs) == (9_000, 12)
    assert split.frame["events"].sum() == 9_012 and (split.frame["events"] == 2).sum() == 12
    assert staged.duplicates == 30 and staged.unassigned.empty
    assert sum(m.invalid for m in staged.months.values()) == 4
    assert max(m.invalid for m in staged.months.values()) == 1  # one per month, by design
    reasons = pd.concat([staged.months[m].load_quarantine() for m in months], ignore_index=True)
    duplicates = reasons[reasons["code"] == "duplicate"]
    assert len(duplicates) == 30 and (duplicates["kept_line"] < duplicates["line"]).all()
    assert duplicates["reason"].str.contains("differs from the kept").sum() == 7
    wrong = reasons.loc[reasons["code"] == "wrong_type", "reason"].tolist()
    assert len(wrong) == 4
    assert any("is a list" in r for r in wrong) and any("is a dict" in r for r in wrong)
    assert any("is a fractional number" in r for r in wrong) and any(
        "not a finite number" in r for r in wrong
    )


@pytest.mark.parametrize("fmt", ["2014", "2018", "2023"])
def test_a_truncated_dump_stops_with_its_name_in_every_format(tmp_path: Path, fmt: str) -> None:
    from recsys_assets.core.catalogue.blocks import CorruptInputError

    manifest = generate("small", tmp_path / "raw", fmt=fmt, image_files=False, overrides=SMALLER)
    files = manifest["files"]
    assert isinstance(files, dict)
    for name in (files["reviews"], files["metadata"]):
        path = tmp_path / "raw" / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    months = [str(m) for m in np.arange(np.datetime64("2012-08"), np.datetime64("2014-08"))]
    with pytest.raises(CorruptInputError, match=rf"^{tmp_path / 'raw' / files['reviews']}: the compressed"):
        stage_interactions(
            str(tmp_path / "raw" / files["reviews"]), fmt, months, ("2012-08", "2014-08"), tmp_path, workers=1
        )
    with pytest.raises(CorruptInputError, match=r"whole lines read\): EOFError"):
        stage_items(str(tmp_path / "raw" / files["metadata"]), fmt, tmp_path, workers=1)
