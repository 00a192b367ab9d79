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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args

import orjson
import pyarrow as pa

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
TS_OUT_OF_RANGE = "ts_out_of_range"
#: Not invalid: a review repeating an earlier one (same user, item and time), or a metadata
#: line repeating an earlier item. Kept in the quarantine with the line of the record kept,
#: and left out of the quarantine rates.
DUPLICATE = "duplicate"
REPEATED_ITEM = "repeated_item"
NOT_INVALID = (DUPLICATE, REPEATED_ITEM)


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

#: Good review rows as the parser hands them on: ``line`` is the record's line in the file.
REVIEW_SCHEMA = pa.schema(
    [("user_id", pa.string()), ("item_id", pa.string()), ("rating", pa.float64()), ("ts", pa.int64()),
     ("line", pa.int64())]
)  # fmt: skip
ITEM_SCHEMA = pa.schema(
    [("item_id", pa.string()), ("title", pa.string()), ("description", pa.string()), ("brand", pa.string()),
     ("categories", pa.list_(pa.string())), ("price", pa.float64()), ("image_url", pa.string()),
     ("line", pa.int64())]
)  # fmt: skip


@dataclass
class ParsedBlock:
    """The good records of one block as an Arrow table, and the records quarantined from it."""

    table: pa.Table
    quarantine_lines: list[int] = field(default_factory=list)
    quarantine_codes: list[str] = field(default_factory=list)
    quarantine_reasons: list[str] = field(default_factory=list)
    quarantine_records: list[str] = field(default_factory=list)
    #: Epoch seconds of each quarantined review whose timestamp was readable, else -1;
    #: it lets a bad record be charged to its own month.
    quarantine_ts: list[int] = field(default_factory=list)
    #: Lines holding only whitespace: counted, never records.
    blank_lines: int = 0
    #: Optional fields present but unusable (a price of ``inf``, a title that is a dict),
    #: stored as null and counted here by ``"field: what"``.
    nulled: Counter[str] = field(default_factory=Counter)

    def quarantine(self, line: int, code: str, reason: str, raw: bytes, ts: int = -1) -> None:
        self.quarantine_lines.append(line)
        self.quarantine_codes.append(code)
        self.quarantine_ts.append(ts)
        self.quarantine_reasons.append(reason)
        self.quarantine_records.append(raw[:QUARANTINE_SNIPPET_CHARS].decode("utf-8", errors="replace"))

    @property
    def records(self) -> int:
        return self.table.num_rows + len(self.quarantine_lines)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown Amazon dump format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def iter_block_lines(start_line: int, block: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The non-blank lines of a block with their 1-based numbers, and how many were blank."""
    out = []
    blank = 0
    for offset, raw in enumerate(block.split(b"\n")):
        line = raw.rstrip(b"\r")
        if line.strip():
            out.append((start_line + offset, line))
        else:
            blank += 1
    # A block ends on "\n", so its split ends with one empty piece that is no line at all.
    return out, blank - block.endswith(b"\n")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a fractional number" if math.isfinite(value) else "a non-finite number"
    return {"list": "a list", "dict": "a dict", "tuple": "a tuple", "set": "a set"}.get(
        type(value).__name__, f"a {type(value).__name__}"
    )


def as_id(value: Any) -> str | None:
    """An id as stored: strings as they are, integers (and integral floats) in decimal.

    Returns ``None`` for anything else (a list, dict, bool or fractional number), which the
    caller quarantines: ``str(['X'])`` would make up an id no other file knows.
    """
    kind = type(value)
    if kind is str:
        return value.strip()
    if kind is int:
        return str(value)
    if kind is float and math.isfinite(value) and value == int(value):
        return str(int(value))
    return None


_ADDRESS = re.compile(r"<(?:ast\.)?(\w+) object at 0x[0-9a-fA-F]+>")


def error_reason(exc: BaseException) -> str:
    """``Type: message`` without memory addresses (``<ast.Call object at 0x...>`` -> ``Call``)."""
    message = _ADDRESS.sub(r"\1", str(exc))
    return f"{type(exc).__name__}: {message}"


def parse_reviews_block(fmt: str, start_line: int, block: bytes) -> ParsedBlock:
    """Parse review lines into ``user_id, item_id, rating, ts`` (ts in epoch seconds) and ``line``.

    A record is quarantined when it is not a JSON object, lacks a required field, or a
    field has the wrong type: ids must be strings or integers, the rating a finite number,
    the timestamp a finite epoch number. Out-of-range values (a rating of 7) are *kept*:
    range rules belong to the data-quality checks, which report them with the offending rows.
    """
    schema = REVIEW_SCHEMAS[check_format(fmt)]
    lines, blank = iter_block_lines(start_line, block)
    users: list[str] = []
    items: list[str] = []
    ratings: list[float] = []
    stamps: list[int] = []
    good: list[int] = []
    parsed = ParsedBlock(table=pa.table({}), blank_lines=blank)
    limit = MAX_EPOCH_SECONDS * schema.ts_per_second
    for number, raw in lines:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            parsed.quarantine(number, INVALID, f"invalid JSON: {exc}", raw)
            continue
        if type(record) is not dict:
            parsed.quarantine(number, INVALID, f"expected a JSON object, got {type(record).__name__}", raw)
            continue
        user, item = record.get(schema.user), record.get(schema.item)
        rating: Any = record.get(schema.rating)
        ts: Any = record.get(schema.ts)
        kind = type(ts)
        ts_ok = (kind is int or (kind is float and math.isfinite(ts))) and -limit < ts < limit
        seconds = int(ts) // schema.ts_per_second if ts_ok else -1
        user_id, item_id = as_id(user), as_id(item)
        if not user_id or not item_id or rating is None or rating == "" or ts is None or ts == "":
            # (``==`` with a str is safe for any JSON value; only membership tests hash.)
            problem = _review_problem(schema, user, item, rating, ts, user_id, item_id)
            parsed.quarantine(number, problem[0], problem[1], raw, seconds)
            continue
        kind = type(rating)
        if not (kind is float or kind is int) or not math.isfinite(rating):
            reason = f"{schema.rating} is not a finite number: {_describe(rating)}"
            parsed.quarantine(number, WRONG_TYPE, reason, raw, seconds)
            continue
        if not ts_ok:
            reason = f"{schema.ts} is not an epoch timestamp: {_describe(ts)}"
            parsed.quarantine(number, WRONG_TYPE, reason, raw)
            continue
        users.append(user_id)
        items.append(item_id)
        ratings.append(rating)
        stamps.append(seconds)
        good.append(number)
    parsed.table = pa.Table.from_arrays(
        [pa.array(users, pa.string()), pa.array(items, pa.string()), pa.array(ratings, pa.float64()),
         pa.array(stamps, pa.int64()), pa.array(good, pa.int64())],
        schema=REVIEW_SCHEMA,
    )  # fmt: skip
    return parsed


def _review_problem(
    schema: ReviewSchema, user: Any, item: Any, rating: Any, ts: Any, user_id: str | None, item_id: str | None
) -> tuple[str, str]:
    """Why a review lacks an id, rating or timestamp: missing fields first, then wrong types."""
    present = ((schema.user, user), (schema.item, item), (schema.rating, rating), (schema.ts, ts))
    missing = [
        name for name, value in present if value is None or (isinstance(value, str) and not value.strip())
    ]
    missing += [name for name, value, id_ in ((schema.user, user, user_id), (schema.item, item, item_id))
                if id_ == "" and name not in missing]  # fmt: skip
    if missing:
        return MISSING, f"missing field: {', '.join(missing)}"
    name, value = (schema.user, user) if user_id is None else (schema.item, item)
    return WRONG_TYPE, wrong_id(name, value)


def wrong_id(name: str, value: Any) -> str:
    return f"{name} is {_type_name(value)} ({_describe(value)}), expected a string or an integer"


_PRICE = re.compile(r"\$?\s*([0-9][0-9,]*(?:\.[0-9]+)?)")


def parse_price(value: Any) -> tuple[float | None, str | None]:
    """Return ``(price, problem)``: 2014/2023 give floats, 2018 strings like ``"$9.99"``.

    A range ``"$9.99 - $15.99"`` yields its lower bound. A present value that holds no
    finite price gives ``(None, why)`` so the caller can count it.
    """
    if value is None or value == "":
        return None, None
    if isinstance(value, bool):
        return None, "a boolean"
    if isinstance(value, int | float):
        price = float(value)
    else:
        match = _PRICE.search(str(value))
        if match is None:
            return None, "no price in the text"
        price = float(match.group(1).replace(",", ""))
    return (price, None) if math.isfinite(price) else (None, "not a finite number")


def _flatten_categories(value: Any) -> list[str]:
    """2014 gives a list of category paths, 2018/2023 a flat list; keep first-seen order."""
    seen: dict[str, None] = {}
    _collect(value, seen)
    return list(seen)


def _collect(value: Any, seen: dict[str, None]) -> None:
    if type(value) is list:
        for entry in value:
            _collect(entry, seen)
    elif type(value) is str or (isinstance(value, int | float) and not isinstance(value, bool)):
        text = clean_text(value)
        if text:
            seen[text] = None


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


def _text(parsed: ParsedBlock, name: str, value: Any) -> str | None:
    """A text field cleaned; one of the wrong type (a dict, a boolean) is null and counted."""
    if value is None or type(value) is str:  # the common case, first
        return clean_text(value)
    if isinstance(value, dict | bool):
        parsed.nulled[f"{name}: {_type_name(value)}"] += 1
        return None
    return clean_text(value)


def parse_metadata_block(fmt: str, start_line: int, block: bytes) -> ParsedBlock:
    """Parse metadata lines into the ``items`` columns and ``line``.

    A record without a usable id (missing, or a list, dict, bool or fractional number) is
    quarantined; an optional field of the wrong type is stored as null and counted.
    """
    schema = METADATA_SCHEMAS[check_format(fmt)]
    lines, blank = iter_block_lines(start_line, block)
    parsed = ParsedBlock(table=pa.table({}), blank_lines=blank)
    cols: dict[str, list[Any]] = {name: [] for name in ITEM_SCHEMA.names}
    kind = "Python dict literal" if fmt == "2014" else "JSON object"
    for number, raw in lines:
        try:
            record = schema.loads(raw)
        except _LITERAL_ERRORS as exc:
            parsed.quarantine(number, INVALID, f"not a valid {kind}: {error_reason(exc)}", raw)
            continue
        if not isinstance(record, dict):
            parsed.quarantine(number, INVALID, f"expected a {kind}, got {type(record).__name__}", raw)
            continue
        raw_id = record.get(schema.item)
        item = as_id(raw_id)
        if raw_id is None or item == "":
            parsed.quarantine(number, MISSING, f"missing field: {schema.item}", raw)
            continue
        if item is None:
            parsed.quarantine(number, WRONG_TYPE, wrong_id(schema.item, raw_id), raw)
            continue
        price, problem = parse_price(record.get("price"))
        if problem:
            parsed.nulled[f"price: {problem}"] += 1
        image = schema.image(record)
        if image is not None and not isinstance(image, str):
            parsed.nulled[f"image: {_type_name(image)}"] += 1
            image = None
        cols["item_id"].append(item)
        # Strings (the common case) go straight to clean_text; other types through _text.
        title, description, brand = record.get("title"), record.get("description"), record.get(schema.brand)
        cols["title"].append(clean_text(title) if type(title) is str else _text(parsed, "title", title))
        cols["description"].append(
            clean_text(description) if type(description) is str else _text(parsed, "description", description)
        )
        cols["brand"].append(clean_text(brand) if type(brand) is str else _text(parsed, schema.brand, brand))
        cols["categories"].append(_flatten_categories(record.get(schema.categories)))
        cols["price"].append(price)
        cols["image_url"].append(image.strip() or None if image else None)
        cols["line"].append(number)
    parsed.table = pa.Table.from_pydict(cols, schema=ITEM_SCHEMA)
    return parsed
