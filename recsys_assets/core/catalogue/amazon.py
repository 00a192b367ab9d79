"""Parsers for the three public Amazon review dumps (2014, 2018, 2023).

Each parser turns one block of raw lines into columns plus quarantine rows. Parsers are
plain functions over bytes so they can run in worker processes (see ``blocks``).

Formats (see the README):

* 2014 (McAuley): reviews are JSON; metadata lines are *Python dict literals* (single
  quotes), parsed with ``ast.literal_eval`` (never ``eval``).
* 2018 (Ni et al.): both files are strict JSON; ``price`` is a string like ``"$9.99"``.
* 2023 (McAuley lab): JSONL; reviews carry ``parent_asin`` and millisecond timestamps.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast, get_args

import orjson

from recsys_assets.core.catalogue.text import clean_text
from recsys_assets.settings.data import RawFormat

FORMATS: tuple[str, ...] = get_args(RawFormat)
QUARANTINE_SNIPPET_CHARS = 500
#: Timestamps beyond +-10^11 s (year ~5138) are treated as garbage, not dates.
MAX_EPOCH_SECONDS = 10**11

# Quarantine reason codes; the ``reason`` column holds the human-readable detail.
INVALID = "invalid_record"
MISSING = "missing_field"
WRONG_TYPE = "wrong_type"
DUPLICATE_ITEM = "duplicate_item_id"
TS_OUT_OF_RANGE = "ts_out_of_range"


@dataclass(frozen=True)
class ReviewSchema:
    user: str
    item: str
    rating: str
    ts: str
    ts_per_second: int


REVIEW_SCHEMAS = {
    "2014": ReviewSchema("reviewerID", "asin", "overall", "unixReviewTime", 1),
    "2018": ReviewSchema("reviewerID", "asin", "overall", "unixReviewTime", 1),
    # 2023 metadata is keyed by parent_asin, so reviews join on it too.
    "2023": ReviewSchema("user_id", "parent_asin", "rating", "timestamp", 1000),
}

REVIEW_COLUMNS = ("user_id", "item_id", "rating", "ts")
ITEM_COLUMNS = ("item_id", "title", "description", "brand", "categories", "price", "image_url")


@dataclass
class ParsedBlock:
    """Columns of the good records of one block, and the records quarantined from it."""

    columns: dict[str, list[Any]]
    quarantine_lines: list[int] = field(default_factory=list)
    quarantine_codes: list[str] = field(default_factory=list)
    quarantine_reasons: list[str] = field(default_factory=list)
    quarantine_records: list[str] = field(default_factory=list)
    #: Epoch seconds of each quarantined review whose timestamp was readable, else -1;
    #: it lets a bad record be charged to its own month.
    quarantine_ts: list[int] = field(default_factory=list)
    #: Line number of each good record, aligned with ``columns``.
    lines: list[int] = field(default_factory=list)
    price_unparsed: int = 0

    def quarantine(self, line: int, code: str, reason: str, raw: bytes, ts: int = -1) -> None:
        self.quarantine_lines.append(line)
        self.quarantine_codes.append(code)
        self.quarantine_ts.append(ts)
        self.quarantine_reasons.append(reason)
        self.quarantine_records.append(raw[:QUARANTINE_SNIPPET_CHARS].decode("utf-8", errors="replace"))


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown Amazon dump format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def iter_block_lines(start_line: int, block: bytes) -> list[tuple[int, bytes]]:
    """Split a block of whole lines, keeping 1-based line numbers; blank lines are skipped."""
    out = []
    for offset, raw in enumerate(block.split(b"\n")):
        line = raw.rstrip(b"\r")
        if line.strip():
            out.append((start_line + offset, line))
    return out


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_reviews_block(fmt: str, start_line: int, block: bytes) -> ParsedBlock:
    """Parse review lines into ``user_id, item_id, rating, ts`` (ts in epoch seconds).

    A record is quarantined when it is not a JSON object, lacks a required field, or a
    field has the wrong type. Out-of-range values (a rating of 7) are *kept*: range rules
    belong to the data-quality checks, which report them with the offending rows.
    """
    schema = REVIEW_SCHEMAS[check_format(fmt)]
    parsed = ParsedBlock(columns={name: [] for name in REVIEW_COLUMNS})
    users, items, ratings, stamps = (parsed.columns[c] for c in REVIEW_COLUMNS)
    for number, raw in iter_block_lines(start_line, block):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            parsed.quarantine(number, INVALID, f"invalid JSON: {exc}", raw)
            continue
        if not isinstance(record, dict):
            parsed.quarantine(number, INVALID, f"expected a JSON object, got {type(record).__name__}", raw)
            continue
        user, item = record.get(schema.user), record.get(schema.item)
        rating, ts = record.get(schema.rating), record.get(schema.ts)
        ts_ok = (
            not isinstance(ts, bool)
            and isinstance(ts, int | float)
            and math.isfinite(ts)
            and abs(ts) < MAX_EPOCH_SECONDS * schema.ts_per_second
        )
        seconds = int(cast(float, ts)) // schema.ts_per_second if ts_ok else -1
        missing = [
            name
            for name, value in (
                (schema.user, user),
                (schema.item, item),
                (schema.rating, rating),
                (schema.ts, ts),
            )
            if value is None or value == ""
        ]
        if missing:
            parsed.quarantine(number, MISSING, f"missing field: {', '.join(missing)}", raw, seconds)
            continue
        if isinstance(rating, bool) or not isinstance(rating, int | float):
            reason = f"{schema.rating} is not a number: {_describe(rating)}"
            parsed.quarantine(number, WRONG_TYPE, reason, raw, seconds)
            continue
        if not ts_ok:
            parsed.quarantine(
                number, WRONG_TYPE, f"{schema.ts} is not an epoch timestamp: {_describe(ts)}", raw
            )
            continue
        users.append(str(user))
        items.append(str(item))
        ratings.append(float(rating))
        stamps.append(seconds)
        parsed.lines.append(number)
    return parsed


_PRICE = re.compile(r"\$?\s*([0-9][0-9,]*(?:\.[0-9]+)?)")


def parse_price(value: Any) -> tuple[float | None, bool]:
    """Return ``(price, unparsed)``: 2014/2023 give floats, 2018 strings like ``"$9.99"``.

    A range ``"$9.99 - $15.99"`` yields its lower bound. A present value that holds no
    price at all gives ``(None, True)`` so the caller can count it.
    """
    if value is None or value == "":
        return None, False
    if isinstance(value, bool):
        return None, True
    if isinstance(value, int | float):
        return float(value), False
    match = _PRICE.search(str(value))
    if match is None:
        return None, True
    return float(match.group(1).replace(",", "")), False


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for entry in value:
            yield from _leaves(entry)
    else:
        yield value


def _flatten_categories(value: Any) -> list[str]:
    """2014 gives a list of category paths, 2018/2023 a flat list; keep first-seen order."""
    texts = (clean_text(entry) for entry in _leaves(value))
    return list(dict.fromkeys(text for text in texts if text))


def _first_image_2018(record: dict[str, Any]) -> Any:
    for key in ("imageURLHighRes", "imageURL"):
        urls = record.get(key)
        if isinstance(urls, list) and urls:
            return urls[0]
        if isinstance(urls, str) and urls:
            return urls
    return None


def _first_image_2023(record: dict[str, Any]) -> Any:
    images = record.get("images")
    if isinstance(images, list):
        for image in images:
            if isinstance(image, dict):
                for key in ("hi_res", "large", "thumb"):
                    if image.get(key):
                        return image[key]
    return None


@dataclass(frozen=True)
class MetadataSchema:
    item: str
    brand: str
    categories: str
    image: Callable[[dict[str, Any]], Any]
    loads: Callable[[bytes], Any]


def _python_literal(raw: bytes) -> Any:
    return ast.literal_eval(raw.decode("utf-8"))


METADATA_SCHEMAS = {
    "2014": MetadataSchema("asin", "brand", "categories", lambda r: r.get("imUrl"), _python_literal),
    "2018": MetadataSchema("asin", "brand", "category", _first_image_2018, orjson.loads),
    "2023": MetadataSchema("parent_asin", "store", "categories", _first_image_2023, orjson.loads),
}

# Errors ast.literal_eval / orjson raise on malformed input; anything else is a bug and
# must propagate.
_LITERAL_ERRORS = (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError)


def parse_metadata_block(fmt: str, start_line: int, block: bytes) -> ParsedBlock:
    """Parse metadata lines into the ``items`` columns; records without an id are quarantined."""
    schema = METADATA_SCHEMAS[check_format(fmt)]
    parsed = ParsedBlock(columns={name: [] for name in ITEM_COLUMNS})
    cols = parsed.columns
    kind = "Python dict literal" if fmt == "2014" else "JSON object"
    for number, raw in iter_block_lines(start_line, block):
        try:
            record = schema.loads(raw)
        except _LITERAL_ERRORS as exc:
            parsed.quarantine(number, INVALID, f"not a valid {kind}: {type(exc).__name__}: {exc}", raw)
            continue
        if not isinstance(record, dict):
            parsed.quarantine(number, INVALID, f"expected a {kind}, got {type(record).__name__}", raw)
            continue
        item = record.get(schema.item)
        if item is None or str(item).strip() == "":
            parsed.quarantine(number, MISSING, f"missing field: {schema.item}", raw)
            continue
        price, unparsed = parse_price(record.get("price"))
        parsed.price_unparsed += unparsed
        image = schema.image(record)
        cols["item_id"].append(str(item).strip())
        cols["title"].append(clean_text(record.get("title")))
        cols["description"].append(clean_text(record.get("description")))
        cols["brand"].append(clean_text(record.get(schema.brand)))
        cols["categories"].append(_flatten_categories(record.get(schema.categories)))
        cols["price"].append(price)
        cols["image_url"].append(str(image).strip() if image else None)
        parsed.lines.append(number)
    return parsed
