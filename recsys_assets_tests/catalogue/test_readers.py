"""The raw readers on small files written in each real Amazon format."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from recsys_assets.core.catalogue.amazon import parse_price
from recsys_assets.core.catalogue.blocks import CorruptInputError, iter_blocks
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
    staged = stage_items(str(path), "2014", tmp_path / "out", workers=1)

    assert staged.records_read == 5  # the blank line is not a record, but is counted
    assert staged.blank_lines == 1
    items = staged.load_items()
    assert items["item_id"].tolist() == ["0528881469", "0594451647"]
    first, second = items.iloc[0], items.iloc[1]
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

    q = staged.load_quarantine()
    assert q["line"].tolist() == [3, 4, 6]
    assert q["code"].tolist() == ["invalid_record", "missing_field", "repeated_item"]
    assert q["reason"][0].startswith("not a valid Python dict literal: SyntaxError")
    assert q["reason"][1] == "missing field: asin"
    # The repeated line merges into line 1's record, whose longer title wins.
    assert (
        q["reason"][2] == "repeats item '0528881469' of line 1; merged into one record (conflicting: title)"
    )
    assert q["kept_line"].fillna(0).tolist() == [0, 0, 1]
    assert set(q["file"]) == {str(path)}
    assert q["record"][0] == "this is not a dict {"
    assert (staged.invalid, staged.repeated_lines, dict(staged.conflicts)) == (2, 1, {"title": 1})
    assert staged.quarantine_rate == pytest.approx(2 / 5)


def test_2014_reviews_split_by_month_and_quarantine(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "reviews.json.gz", REVIEWS_2014)
    staged = stage_interactions(
        str(path), "2014", ["2013-06", "2013-07"], ("2013-01", "2014-01"), tmp_path / "out", workers=1
    )

    june, july = staged.load("2013-06"), staged.load("2013-07")
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
    assert staged.months["2013-06"].load_quarantine()["line"].tolist() == [3, 4, 6]
    july_q = staged.months["2013-07"].load_quarantine()
    assert july_q["line"].tolist() == [3, 5, 6]
    assert july_q["reason"][1] == "overall is not a finite number: 'five'"
    assert staged.quarantine_rate("2013-06") == pytest.approx(3 / 4)


def test_records_of_months_not_requested_are_counted(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "reviews.json.gz", REVIEWS_2014[:2])
    staged = stage_interactions(str(path), "2014", ["2013-06"], ("2013-01", "2014-01"), tmp_path, workers=1)
    assert staged.months["2013-06"].rows == 1
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
    staged = stage_items(str(write_gz(tmp_path / "meta.json.gz", meta)), "2018", tmp_path / "out", workers=1)
    items = staged.load_items()
    first = items.iloc[0]
    assert first["title"] == "Cable & Adapter"
    assert first["description"] == "Fast cable"
    assert first["price"] == 1299.0
    assert first["image_url"] == "big.jpg"
    assert list(first["categories"]) == ["Electronics", "Cables"]
    assert items["price"].iloc[1] == 9.99
    assert np.isnan(items["price"].iloc[2])
    assert staged.price_unparsed == 1
    assert staged.load_quarantine()["reason"].tolist() == ["expected a JSON object, got list"]

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
        str(write_gz(tmp_path / "r.json.gz", reviews)),
        "2018",
        ["2017-07"],
        ("2017-01", "2018-01"),
        tmp_path / "out",
        workers=1,
    )
    assert staged_r.load("2017-07")["item_id"].tolist() == ["B01"]


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
    staged = stage_items(str(write_gz(tmp_path / "meta.jsonl.gz", meta)), "2023", tmp_path / "out", workers=1)
    row = staged.load_items().iloc[0]
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
        tmp_path / "out",
        workers=1,
    )
    may = staged_r.load("2020-05")
    assert may["item_id"].tolist() == ["P1"]
    assert str(may["ts"].iloc[0]) == "2020-05-04 18:10:55+00:00"


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    plain = tmp_path / "reviews.json.gz"  # misleading name, plain text inside
    plain.write_text(REVIEWS_2014[0] + "\n")
    zipped = tmp_path / "reviews.jsonl"
    zipped.write_bytes(gzip.compress((REVIEWS_2014[0] + "\n").encode()))
    for path in (plain, zipped):
        staged = stage_interactions(
            str(path), "2014", ["2013-06"], ("2013-01", "2014-01"), tmp_path, workers=1
        )
        assert staged.months["2013-06"].rows == 1


def test_missing_file_names_the_uri(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.json\.gz: no such file"):
        stage_items(str(tmp_path / "nope.json.gz"), "2014", tmp_path)


def test_unknown_format_is_rejected(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "m.json.gz", META_2014[:1])
    with pytest.raises(ValueError, match="unknown Amazon dump format '2099'"):
        stage_items(str(path), "2099", tmp_path, workers=1)


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
    months = ("2013-01", "2014-01")
    serial = stage_interactions(str(path), "2014", ["2013-06"], months, tmp_path / "serial", workers=1)
    from recsys_assets.core.catalogue import blocks

    original = blocks.BLOCK_BYTES
    blocks.BLOCK_BYTES = 4096  # many blocks, so the pool really runs
    try:
        parallel = stage_interactions(str(path), "2014", ["2013-06"], months, tmp_path / "par", workers=2)
    finally:
        blocks.BLOCK_BYTES = original
    assert parallel.load("2013-06").equals(serial.load("2013-06"))
    assert parallel.unassigned["line"].tolist() == [1235]


def test_reads_https_and_gs(tmp_path: Path, http_root: tuple[Path, str], gcs_emulator: str) -> None:
    root, base_url = http_root
    write_gz(root / "meta.json.gz", META_2014[:2])
    over_http = stage_items(f"{base_url}/meta.json.gz", "2014", tmp_path / "http", workers=1)
    assert over_http.load_items()["item_id"].tolist() == ["0528881469", "0594451647"]

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator}
    )
    blob = client.bucket(GCS_BUCKET).blob("raw/meta.json.gz")
    blob.upload_from_filename(str(root / "meta.json.gz"))
    over_gs = stage_items(f"gs://{GCS_BUCKET}/raw/meta.json.gz", "2014", tmp_path / "gs", workers=1)
    assert over_gs.load_items().equals(over_http.load_items())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, (None, None)),
        (12.5, (12.5, None)),
        ("$9.99", (9.99, None)),
        ("", (None, None)),
        ("free", (None, "no price in the text")),
        (True, (None, "a boolean")),
        (float("inf"), (None, "not a finite number")),
        ("$" + "9" * 400, (None, "not a finite number")),
    ],
)
def test_parse_price(raw: object, expected: tuple[float | None, str | None]) -> None:
    assert parse_price(raw) == expected


def test_clean_text() -> None:
    assert clean_text("  A&amp;B <br/>\n  C ") == "A&B C"
    assert clean_text("&lt;5mm") == "<5mm"  # unescaped after tag stripping, so it survives
    assert clean_text(["a", None, "b"]) == "a b"
    assert clean_text("   ") is None


def _review(**fields: object) -> str:
    base: dict[str, object] = {"reviewerID": "U1", "asin": "I1", "overall": 4.0, "unixReviewTime": 1370563200}
    return json.dumps({**base, **fields})


def test_wrong_typed_ids_and_values_are_quarantined_with_the_type(tmp_path: Path) -> None:
    lines = [
        _review(reviewerID=["L"]),
        _review(asin={"id": "I1"}),
        _review(asin=True),
        _review(asin=12.5),
        _review(overall="5"),
        _review(asin=12345),  # an integer id is an id: staged as "12345"
        _review(reviewerID=7.0, asin="I2"),  # an integral float too
        "",
        "   ",
        _review(asin="  "),
    ]
    path = write_gz(tmp_path / "r.json.gz", lines)
    staged = stage_interactions(str(path), "2014", ["2013-06"], ("2013-01", "2014-01"), tmp_path, workers=1)
    june = staged.load("2013-06")
    assert june[["user_id", "item_id"]].values.tolist() == [["U1", "12345"], ["7", "I2"]]
    q = staged.months["2013-06"].load_quarantine()
    assert q["reason"].tolist() == [
        "reviewerID is a list (['L']), expected a string or an integer",
        "asin is a dict ({'id': 'I1'}), expected a string or an integer",
        "asin is a boolean (True), expected a string or an integer",
        "asin is a fractional number (12.5), expected a string or an integer",
        "overall is not a finite number: '5'",
        "missing field: asin",
    ]
    assert q["line"].tolist() == [1, 2, 3, 4, 5, 10]
    assert (staged.records_read, staged.blank_lines) == (8, 2)


def test_wrong_typed_metadata_fields(tmp_path: Path) -> None:
    lines = [
        "{'asin': ['X'], 'title': 'list id'}",
        "{'asin': 'A', 'title': {'nested': 1}, 'price': 1e400}",
        "{'asin': 'B', 'title': f(1)}",
    ]
    staged = stage_items(str(write_gz(tmp_path / "m.json.gz", lines)), "2014", tmp_path, workers=1)
    items = staged.load_items()
    assert items["item_id"].tolist() == ["A"]
    assert items["title"].isna().all() and items["price"].isna().all()
    assert dict(staged.nulled) == {"title: a dict": 1, "price: not a finite number": 1}
    reasons = staged.load_quarantine()["reason"].tolist()
    assert reasons[0] == "asin is a list (['X']), expected a string or an integer"
    # The parser's message without the memory address it carries (<ast.Call object at 0x...>).
    assert reasons[1] == (
        "not a valid Python dict literal: ValueError: malformed node or string on line 1: Call"
    )


def test_duplicate_reviews_collapse_to_the_first(tmp_path: Path) -> None:
    lines = [
        _review(),
        _review(reviewerID="U2"),
        _review(),  # an exact copy of line 1
        _review(overall=2.0),  # same event, other rating: still the same event
        _review(unixReviewTime=1370563201),  # one second later: another event
    ]
    path = write_gz(tmp_path / "r.json.gz", lines)
    staged = stage_interactions(str(path), "2014", ["2013-06"], ("2013-01", "2014-01"), tmp_path, workers=1)
    june = staged.load("2013-06")
    assert june[["user_id", "rating"]].values.tolist() == [["U1", 4.0], ["U2", 4.0], ["U1", 4.0]]
    month = staged.months["2013-06"]
    assert (month.rows, month.duplicates, month.invalid, month.quarantine_rate) == (3, 2, 0, 0.0)
    q = month.load_quarantine()
    assert q[["line", "code", "kept_line"]].values.tolist() == [[3, "duplicate", 1], [4, "duplicate", 1]]
    assert q["reason"].tolist() == [
        "same user_id, item_id and ts as line 1, which is kept",
        "same user_id, item_id and ts as line 1, which is kept; its rating 2 differs from the kept 4",
    ]
    assert q["record"][0] == "user_id=U1 item_id=I1 ts=2013-06-07T00:00:00Z"
    assert staged.duplicate_examples["line"].tolist() == [3, 4]


def test_repeated_metadata_lines_merge_their_most_complete_values(tmp_path: Path) -> None:
    lines = [
        json.dumps({"asin": "A", "title": "Short", "price": "$5.00", "category": ["E"]}),
        json.dumps({"asin": "B", "title": "Other"}),
        json.dumps({"asin": "A", "title": "A longer title", "description": ["Some text"], "price": "$6.00"}),
        json.dumps({"asin": "A", "brand": "Acme", "category": ["E", "Cables"]}),
    ]
    staged = stage_items(str(write_gz(tmp_path / "m.json.gz", lines)), "2018", tmp_path, workers=1)
    items = staged.load_items().set_index("item_id")
    a = items.loc["A"]
    assert (a["title"], a["description"], a["brand"], list(a["categories"]), a["price"]) == (
        "A longer title",
        "Some text",
        "Acme",
        ["E", "Cables"],
        5.0,  # the first price: prices have no "more complete"
    )
    assert list(items.index) == ["A", "B"]
    assert (staged.repeated_lines, staged.invalid, staged.quarantine_rate) == (2, 0, 0.0)
    assert dict(staged.conflicts) == {"title": 1, "categories": 1, "price": 1}
    examples = staged.conflict_examples.set_index("field")
    assert examples.loc["price", "values"] == "5.0 | 6.0"
    q = staged.load_quarantine()
    assert q["kept_line"].tolist() == [1, 1]
    assert q["reason"][0] == (
        "repeats item 'A' of line 1; merged into one record (conflicting: title, categories, price)"
    )


def test_repeated_items_merge_across_shards(tmp_path: Path) -> None:
    lines = [json.dumps({"asin": f"I{i % 50}", "title": "t" * (i % 7 + 1)}) for i in range(400)]
    path = write_gz(tmp_path / "m.json.gz", lines)
    one = stage_items(str(path), "2018", tmp_path / "one", workers=1)
    four = stage_items(str(path), "2018", tmp_path / "four", workers=1, shards=4)
    by_id = [s.load_items().set_index("item_id").sort_index() for s in (one, four)]
    assert by_id[0].equals(by_id[1]) and len(by_id[0]) == 50
    assert one.repeated_lines == four.repeated_lines == 350


def test_truncated_gzip_names_the_file_and_how_far_it_got(tmp_path: Path) -> None:
    whole = gzip.compress(("\n".join(_review(reviewerID=f"U{i}") for i in range(20_000)) + "\n").encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CorruptInputError) as error:
        stage_interactions(str(path), "2014", ["2013-06"], ("2013-01", "2014-01"), tmp_path, workers=1)
    message = str(error.value)
    assert message.startswith(f"{path}: the compressed stream is truncated or corrupt after ")
    assert "whole lines read): EOFError: Compressed file ended before the end-of-stream marker" in message
    assert message.endswith("the stored partitions are still those of the last successful run.")
