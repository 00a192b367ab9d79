"""The raw readers on small files written in each real Amazon format."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from recsys_assets.core.catalogue.amazon import parse_price
from recsys_assets.core.catalogue.blocks import iter_blocks
from recsys_assets.core.catalogue.staging import stage_interactions, stage_items
from recsys_assets.core.catalogue.text import clean_text
from recsys_assets_tests.conftest import GCS_BUCKET, write_gz

# 2014 metadata: Python literals. Line 2 uses single quotes around a value holding a
# double quote and lacks a title; line 3 is garbage; line 4 lacks the asin; line 6 repeats
# line 1's asin.
META_2014 = [
    "{'asin': '0528881469', 'title': 'Rand McNally 528881469 7-inch Intelliroute TND 700 Truck GPS',"
    " 'price': 299.99, 'imUrl': 'http://ecx.images-amazon.com/images/I/51FnRkJqzOL._SY300_.jpg',"
    " 'related': {'also_bought': ['B002SUPKUM']}, 'brand': 'Rand McNally',"
    " 'categories': [['Electronics', 'GPS & Navigation', 'Vehicle GPS', 'Trucking GPS']],"
    " 'description': 'Rand McNally&#39;s <b>TND 700</b>   truck\\n GPS'}",
    "{'asin': '0594451647', 'description': 'A 7\" tablet case', 'price': 5.0,"
    " 'categories': [['Electronics', 'Computers & Accessories'], ['Electronics', 'Tablets']]}",
    "this is not a dict {",
    "{'title': 'No asin here', 'price': 3.0}",
    "",
    "{'asin': '0528881469', 'title': 'Duplicate record'}",
]

REVIEWS_2014 = [
    json.dumps(
        {
            "reviewerID": "A1",
            "asin": "0528881469",
            "overall": 5.0,
            "unixReviewTime": 1370563200,
            "reviewText": "Great",
            "summary": "ok",
        }
    ),  # 2013-06-07
    json.dumps(
        {"reviewerID": "A2", "asin": "0594451647", "overall": 7.0, "unixReviewTime": 1372636800}
    ),  # 2013-07-01
    "{garbage",
    json.dumps({"reviewerID": "A3", "overall": 4.0, "unixReviewTime": 1370563200}),  # no asin, June
    json.dumps({"reviewerID": "A4", "asin": "0594451647", "overall": "five", "unixReviewTime": 1372636800}),
    json.dumps(
        {"reviewerID": "A5", "asin": "0594451647", "overall": 3, "unixReviewTime": 1906329600}
    ),  # 2030
]


def test_2014_metadata_python_literals(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "meta_Electronics.json.gz", META_2014)
    staged = stage_items(str(path), "2014", workers=1)

    assert staged.records_read == 5  # the blank line is not a record
    assert staged.items["item_id"].tolist() == ["0528881469", "0594451647"]
    first, second = staged.items.iloc[0], staged.items.iloc[1]
    assert first["title"] == "Rand McNally 528881469 7-inch Intelliroute TND 700 Truck GPS"
    assert first["description"] == "Rand McNally's TND 700 truck GPS"
    assert first["brand"] == "Rand McNally"
    assert list(first["categories"]) == ["Electronics", "GPS & Navigation", "Vehicle GPS", "Trucking GPS"]
    assert first["price"] == pytest.approx(299.99)
    assert first["image_url"].endswith("51FnRkJqzOL._SY300_.jpg")
    assert second["title"] is None
    assert second["description"] == 'A 7" tablet case'
    assert list(second["categories"]) == ["Electronics", "Computers & Accessories", "Tablets"]
    assert second["image_url"] is None

    q = staged.quarantine
    assert q["line"].tolist() == [3, 4, 6]
    assert q["code"].tolist() == ["invalid_record", "missing_field", "duplicate_item_id"]
    assert q["reason"][0].startswith("not a valid Python dict literal: SyntaxError")
    assert q["reason"][1] == "missing field: asin"
    assert q["reason"][2] == "duplicate item_id '0528881469': first seen on line 1"
    assert set(q["file"]) == {str(path)}
    assert q["record"][0] == "this is not a dict {"
    assert staged.quarantine_rate == pytest.approx(3 / 5)


def test_2014_reviews_split_by_month_and_quarantine(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "reviews.json.gz", REVIEWS_2014)
    staged = stage_interactions(str(path), "2014", ["2013-06", "2013-07"], ("2013-01", "2014-01"), workers=1)

    june, july = staged.months["2013-06"], staged.months["2013-07"]
    assert june[["user_id", "item_id", "rating"]].values.tolist() == [["A1", "0528881469", 5.0]]
    assert str(june["ts"].iloc[0]) == "2013-06-07 00:00:00+00:00"
    # A rating of 7 is kept for the range check to report, not hidden in the quarantine.
    assert july[["user_id", "rating"]].values.tolist() == [["A2", 7.0]]
    assert staged.records_read == 6
    assert staged.records_other_months == 0

    # garbage (line 3) and the 2030 review (line 6) belong to no month: every month lists them.
    assert staged.unassigned["line"].tolist() == [3, 6]
    assert staged.unassigned["code"].tolist() == ["invalid_record", "ts_out_of_range"]
    assert "outside the partitioned months 2013-01..2013-12" in staged.unassigned["reason"][1]
    # the asin-less June review (line 4) is June's; the string rating (line 5) is July's.
    assert staged.quarantine["2013-06"]["line"].tolist() == [3, 4, 6]
    assert staged.quarantine["2013-07"]["line"].tolist() == [3, 5, 6]
    assert staged.quarantine["2013-07"]["reason"][1] == "overall is not a number: 'five'"
    assert staged.quarantine_rate("2013-06") == pytest.approx(3 / 4)


def test_records_of_months_not_requested_are_counted(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "reviews.json.gz", REVIEWS_2014[:2])
    staged = stage_interactions(str(path), "2014", ["2013-06"], ("2013-01", "2014-01"), workers=1)
    assert len(staged.months["2013-06"]) == 1
    assert staged.records_other_months == 1


def test_2018_format(tmp_path: Path) -> None:
    meta = [
        json.dumps(
            {
                "asin": "B01",
                "title": "Cable &amp; Adapter",
                "description": ["<p>Fast</p>", "cable"],
                "price": "$1,299.00",
                "imageURL": ["small.jpg"],
                "imageURLHighRes": ["big.jpg"],
                "category": ["Electronics", "Cables"],
                "brand": "Acme",
            }
        ),
        json.dumps({"asin": "B02", "title": "Ranged", "price": "$9.99 - $15.99", "category": []}),
        json.dumps({"asin": "B03", "title": "Odd price", "price": ".a-box-inner{background-color:#fff}"}),
        "[1, 2]",
    ]
    staged = stage_items(str(write_gz(tmp_path / "meta.json.gz", meta)), "2018", workers=1)
    first = staged.items.iloc[0]
    assert first["title"] == "Cable & Adapter"
    assert first["description"] == "Fast cable"
    assert first["price"] == 1299.0
    assert first["image_url"] == "big.jpg"
    assert list(first["categories"]) == ["Electronics", "Cables"]
    assert staged.items["price"].iloc[1] == 9.99
    assert np.isnan(staged.items["price"].iloc[2])
    assert staged.price_unparsed == 1
    assert staged.quarantine["reason"].tolist() == ["expected a JSON object, got list"]

    reviews = [
        json.dumps(
            {
                "reviewerID": "U",
                "asin": "B01",
                "overall": 4.0,
                "unixReviewTime": 1500000000,
                "verified": True,
                "vote": "2",
            }
        )
    ]
    staged_r = stage_interactions(
        str(write_gz(tmp_path / "r.json.gz", reviews)), "2018", ["2017-07"], ("2017-01", "2018-01"), workers=1
    )
    assert staged_r.months["2017-07"]["item_id"].tolist() == ["B01"]


def test_2023_format_uses_parent_asin_and_milliseconds(tmp_path: Path) -> None:
    meta = [
        json.dumps(
            {
                "parent_asin": "P1",
                "title": "Speaker",
                "description": [],
                "price": None,
                "store": "Boom",
                "categories": ["Electronics", "Home Audio"],
                "images": [{"thumb": "t.jpg", "large": "l.jpg", "hi_res": None}],
            }
        )
    ]
    staged = stage_items(str(write_gz(tmp_path / "meta.jsonl.gz", meta)), "2023", workers=1)
    row = staged.items.iloc[0]
    assert (row["item_id"], row["brand"], row["image_url"], row["description"]) == (
        "P1",
        "Boom",
        "l.jpg",
        None,
    )
    assert np.isnan(row["price"])

    reviews = [
        json.dumps(
            {"user_id": "U1", "asin": "C1", "parent_asin": "P1", "rating": 5.0, "timestamp": 1588615855070}
        )
    ]  # 2020-05-04T18:10:55.070Z
    staged_r = stage_interactions(
        str(write_gz(tmp_path / "r.jsonl.gz", reviews)),
        "2023",
        ["2020-05"],
        ("2020-01", "2021-01"),
        workers=1,
    )
    may = staged_r.months["2020-05"]
    assert may["item_id"].tolist() == ["P1"]
    assert str(may["ts"].iloc[0]) == "2020-05-04 18:10:55+00:00"


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    plain = tmp_path / "reviews.json.gz"  # misleading name, plain text inside
    plain.write_text(REVIEWS_2014[0] + "\n")
    zipped = tmp_path / "reviews.jsonl"
    zipped.write_bytes(gzip.compress((REVIEWS_2014[0] + "\n").encode()))
    for path in (plain, zipped):
        staged = stage_interactions(str(path), "2014", ["2013-06"], ("2013-01", "2014-01"), workers=1)
        assert len(staged.months["2013-06"]) == 1


def test_missing_file_names_the_uri(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.json\.gz: no such file"):
        stage_items(str(tmp_path / "nope.json.gz"), "2014")


def test_unknown_format_is_rejected(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "m.json.gz", META_2014[:1])
    with pytest.raises(ValueError, match="unknown Amazon dump format '2099'"):
        stage_items(str(path), "2099", workers=1)


def test_blocks_keep_line_numbers_across_block_boundaries(tmp_path: Path) -> None:
    lines = [f"line-{i}" for i in range(1, 1001)]
    path = write_gz(tmp_path / "lines.gz", lines)
    seen = []
    for start, block in iter_blocks(str(path), block_bytes=97):
        for offset, text in enumerate(block.split(b"\n")):
            if text:
                seen.append((start + offset, text.decode()))
    assert seen == [(i, f"line-{i}") for i in range(1, 1001)]


def test_parallel_parse_matches_serial(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "reviewerID": f"U{i}",
                "asin": f"I{i % 7}",
                "overall": 1 + i % 5,
                "unixReviewTime": 1370563200 + i,
            }
        )
        for i in range(3000)
    ]
    lines[1234] = "not json"
    path = write_gz(tmp_path / "r.json.gz", lines)
    serial = stage_interactions(str(path), "2014", ["2013-06"], ("2013-01", "2014-01"), workers=1)
    from recsys_assets.core.catalogue import blocks

    original = blocks.BLOCK_BYTES
    blocks.BLOCK_BYTES = 4096  # many blocks, so the pool really runs
    try:
        parallel = stage_interactions(str(path), "2014", ["2013-06"], ("2013-01", "2014-01"), workers=2)
    finally:
        blocks.BLOCK_BYTES = original
    assert parallel.months["2013-06"].equals(serial.months["2013-06"])
    assert parallel.unassigned["line"].tolist() == [1235]


def test_reads_https_and_gs(tmp_path: Path, http_root: tuple[Path, str], gcs_emulator: str) -> None:
    root, base_url = http_root
    write_gz(root / "meta.json.gz", META_2014[:2])
    over_http = stage_items(f"{base_url}/meta.json.gz", "2014", workers=1)
    assert over_http.items["item_id"].tolist() == ["0528881469", "0594451647"]

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator}
    )
    blob = client.bucket(GCS_BUCKET).blob("raw/meta.json.gz")
    blob.upload_from_filename(str(root / "meta.json.gz"))
    over_gs = stage_items(f"gs://{GCS_BUCKET}/raw/meta.json.gz", "2014", workers=1)
    assert over_gs.items.equals(over_http.items)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, (None, False)),
        (12.5, (12.5, False)),
        ("$9.99", (9.99, False)),
        ("", (None, False)),
        ("free", (None, True)),
        (True, (None, True)),
    ],
)
def test_parse_price(raw: object, expected: tuple[float | None, bool]) -> None:
    assert parse_price(raw) == expected


def test_clean_text() -> None:
    assert clean_text("  A&amp;B <br/>\n  C ") == "A&B C"
    assert clean_text("&lt;5mm") == "<5mm"  # unescaped after tag stripping, so it survives
    assert clean_text(["a", None, "b"]) == "a b"
    assert clean_text("   ") is None
