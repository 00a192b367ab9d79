"""The three public Amazon dump formats, as the synthetic generator writes them.

Records are built once in the 2014 shape and rendered here in the shape of each release,
with the field names, types and quirks of the real files (see the README's input formats).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class DumpFormat:
    reviews_file: str
    metadata_file: str
    user: str
    item: str
    rating: str
    #: The metadata's id field.
    meta_item: str


FORMATS = {
    "2014": DumpFormat("reviews_Electronics_5.json.gz", "meta_Electronics.json.gz",
                       "reviewerID", "asin", "overall", "asin"),
    "2018": DumpFormat("Electronics_5.json.gz", "meta_Electronics.json.gz",
                       "reviewerID", "asin", "overall", "asin"),
    "2023": DumpFormat("Electronics.jsonl.gz", "meta_Electronics.jsonl.gz",
                       "user_id", "parent_asin", "rating", "parent_asin"),
}  # fmt: skip


def review_record(
    fmt: str, user: str, asin: str, rating: float, ts: int, text: str, summary: str
) -> dict[str, Any]:
    if fmt == "2023":
        return {
            "rating": rating,
            "title": summary,
            "text": text,
            "images": [],
            "asin": asin,
            "parent_asin": asin,
            "user_id": user,
            "timestamp": ts * 1000 + ts * 7919 % 1000,  # milliseconds, as in the real file
            "helpful_vote": 0,
            "verified_purchase": True,
        }
    record: dict[str, Any] = {
        "reviewerID": user,
        "asin": asin,
        "reviewerName": f"Reviewer {user[-4:]}",
        "reviewText": text,
        "overall": rating,
        "summary": summary,
        "unixReviewTime": int(ts),
        "reviewTime": time.strftime("%m %d, %Y", time.gmtime(ts)),
    }
    if fmt == "2014":
        record["helpful"] = [0, 0]
    else:
        record["verified"] = True
    return record


def review_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def metadata_record(record: dict[str, Any], fmt: str) -> dict[str, Any]:
    """A 2014-shaped metadata record in the shape of ``fmt``."""
    if fmt == "2014":
        return record
    path = record["categories"][0]
    url = record.get("imUrl")
    description = [record["description"]] if "description" in record else []
    price = record.get("price")
    related = record.get("related", {}).get("also_bought", [])
    if fmt == "2018":
        return {
            "category": list(path),
            "description": description,
            "title": record.get("title", ""),
            "also_buy": related,
            "brand": record["brand"],
            "price": f"${price:,.2f}" if isinstance(price, float) else price if price else "",
            "imageURL": [url] if url else [],
            "imageURLHighRes": [url] if url else [],
            "asin": record["asin"],
        }
    return {
        "main_category": "All Electronics",
        "title": record.get("title", ""),
        "features": [],
        "description": description,
        "price": price,
        "images": [{"thumb": url, "large": url, "variant": "MAIN", "hi_res": None}] if url else [],
        "videos": [],
        "store": record["brand"],
        "categories": list(path),
        "details": {"Sales rank": record["salesRank"]["Electronics"]},
        "parent_asin": record["asin"],
        "bought_together": None,
    }


def metadata_line(record: dict[str, Any], fmt: str) -> bytes:
    """One metadata line: ``repr`` of a dict is exactly the 2014 Python-literal syntax."""
    if fmt == "2014":
        return repr(record).encode("utf-8")
    return orjson.dumps(metadata_record(record, fmt))
