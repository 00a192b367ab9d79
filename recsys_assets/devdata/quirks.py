"""The quirks of real Amazon dumps, planted into the synthetic files with known counts.

Every quirk is an *extra* line on top of the clean records (or, for prices, a value that
staging stores as null), so the clean counts of a preset hold after staging and each quirk's
count is exactly what staging must report: duplicate reviews collapse, repeated metadata lines
merge, wrong-typed records are quarantined, blank lines are counted. Quirks draw from their
own random stream, so a preset's clean records are the same with or without them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys_assets.devdata.formats import FORMATS

#: ``repr`` of this float is replaced by ``1e400`` in 2014 lines: Python reads that as ``inf``.
_HUGE = 1.5e300
#: A price string whose digits overflow a float (2018/2023 JSON cannot hold ``inf`` itself).
HUGE_PRICE_TEXT = "$" + "9" * 400


@dataclass(frozen=True)
class QuirkCounts:
    """How many of each quirk a preset plants (its shares times its sizes, rounded)."""

    duplicate_reviews: int
    duplicate_rating_changes: int
    repeated_item_lines: int
    conflicting_item_lines: int
    wrong_type_reviews: int
    wrong_type_items: int
    blank_lines: int
    #: Later reviews of an item the same user reviewed before (kept by staging; the split
    #: collapses each into its pair's first row).
    re_reviews: int = 0

    @classmethod
    def of(cls, preset: Any) -> QuirkCounts:
        duplicates = round(preset.duplicate_review_share * preset.n_reviews)
        repeated = min(round(preset.repeated_item_share * preset.n_items), preset.n_items // 2)
        return cls(
            duplicate_reviews=min(duplicates, preset.n_reviews),
            duplicate_rating_changes=round(preset.duplicate_rating_change_share * duplicates),
            repeated_item_lines=repeated,
            conflicting_item_lines=round(preset.conflicting_item_share * repeated),
            wrong_type_reviews=min(round(preset.wrong_type_review_share * preset.n_reviews), preset.n_months),
            wrong_type_items=min(round(preset.wrong_type_item_share * preset.n_items), preset.n_items // 4),
            blank_lines=min(preset.blank_lines, preset.n_items, preset.n_reviews),
            re_reviews=min(round(preset.re_review_share * preset.n_reviews), preset.n_reviews // 2),
        )

    def expected_staging(self, n_items: int, n_reviews: int) -> dict[str, int]:
        """What staging must report for these quirks."""
        return {
            "review_records": n_reviews + self.duplicate_reviews + self.wrong_type_reviews + self.re_reviews,
            "review_rows": n_reviews + self.re_reviews,
            "duplicate_reviews": self.duplicate_reviews,
            "duplicates_with_other_rating": self.duplicate_rating_changes,
            "invalid_reviews": self.wrong_type_reviews,
            "review_blank_lines": self.blank_lines,
            "metadata_records": n_items + self.repeated_item_lines + self.wrong_type_items,
            "repeated_item_lines": self.repeated_item_lines,
            "items_with_conflicting_title": self.conflicting_item_lines,
            "invalid_items": self.wrong_type_items,
            "prices_not_finite": self.wrong_type_items,
            "metadata_blank_lines": self.blank_lines,
        }


@dataclass
class ReviewQuirks:
    """Extra review lines to write after given review indices."""

    #: source index -> positions after which a copy of it is written, with the rating to use
    #: (``None``: unchanged).
    copies: dict[int, list[tuple[int, float | None]]] = field(default_factory=dict)
    #: source index -> the wrong-typed variant of it to write right after it.
    wrong_typed: dict[int, int] = field(default_factory=dict)
    blank_after: set[int] = field(default_factory=set)
    #: source index -> (the later time of its re-review, whether its rating changes).
    re_reviews: dict[int, tuple[int, bool]] = field(default_factory=dict)


#: A re-review comes 1 to 180 days after the first review, inside the dump's span.
RE_REVIEW_DAYS = (1, 180)
DAY = 86_400


def plan_review_quirks(
    n_reviews: int,
    months: np.ndarray,
    counts: QuirkCounts,
    rng: np.random.Generator,
    ts: np.ndarray | None = None,
    end: int = 0,
) -> ReviewQuirks:
    plan = ReviewQuirks()
    n_dup = counts.duplicate_reviews
    sources = rng.choice(n_reviews, size=n_dup, replace=False)
    # Half the copies follow their source, half land anywhere later (another parser block).
    offsets = np.where(
        np.arange(n_dup) % 2 == 0, 0, (rng.random(n_dup) * (n_reviews - sources)).astype(np.int64)
    )
    for k, (source, offset) in enumerate(zip(sources.tolist(), offsets.tolist(), strict=True)):
        changed = k < counts.duplicate_rating_changes
        plan.copies.setdefault(source, []).append((source + offset, -1.0 if changed else None))
    # One wrong-typed record in each of the busiest months, so no month's invalid share grows
    # by more than one record.
    per_month = np.bincount(months)
    for k, month in enumerate(np.argsort(-per_month, kind="stable")[: counts.wrong_type_reviews]):
        plan.wrong_typed[int(np.flatnonzero(months == month)[0])] = k
    plan.blank_after = set(rng.choice(n_reviews, size=counts.blank_lines, replace=False).tolist())
    if counts.re_reviews:
        if ts is None:
            raise ValueError("re-reviews need the reviews' times and the dump's end")
        # Sources at least two days before the end, so the re-review is later and still inside.
        eligible = np.flatnonzero(ts < end - 2 * DAY)
        sources = rng.choice(eligible, size=counts.re_reviews, replace=False)
        # Uniform between a day later and 180 days later or the end, whichever comes first.
        longest = np.minimum(RE_REVIEW_DAYS[1] * DAY, end - 1 - ts[sources])
        later = (
            ts[sources]
            + RE_REVIEW_DAYS[0] * DAY
            + (rng.random(len(sources)) * (longest - DAY)).astype(np.int64)
        )
        for k, (source, when) in enumerate(zip(sources.tolist(), later.tolist(), strict=True)):
            plan.re_reviews[source] = (int(when), k % 2 == 1)
    return plan


def wrong_typed_review(record: dict[str, Any], fmt: str, kind: int) -> dict[str, Any]:
    """A copy of ``record`` with one field of a type staging must reject."""
    keys = FORMATS[fmt]
    bad = dict(record)
    match kind % 4:
        case 0:
            bad[keys.user] = [record[keys.user]]
        case 1:
            bad[keys.item] = {"id": record[keys.item]}
        case 2:
            bad[keys.rating] = str(int(record[keys.rating]))
        case _:
            bad[keys.item] = 12.5
    return bad


def changed_rating(rating: float) -> float:
    return float(1 + int(rating) % 5)


def plant_metadata_quirks(
    records: list[dict[str, Any]], fmt: str, counts: QuirkCounts, rng: np.random.Generator
) -> list[dict[str, Any] | None]:
    """The metadata lines to write, as 2014-shaped records; ``None`` is a blank line."""
    n = len(records)
    n_repeat, n_price = counts.repeated_item_lines, counts.wrong_type_items
    picked = rng.choice(n, size=n_repeat + n_price, replace=False)
    repeated, priced = picked[:n_repeat], picked[n_repeat:]
    # Conflicting copies need a title to disagree with: take them from titled items first.
    titled = [int(i) for i in repeated if "title" in records[i]]
    conflicting = set(titled[: counts.conflicting_item_lines])
    if len(conflicting) < counts.conflicting_item_lines:
        raise ValueError("not enough titled items to plant conflicting metadata lines")
    after: dict[int, list[dict[str, Any] | None]] = defaultdict(list)
    for k, source in enumerate(int(i) for i in repeated):
        target = source + int(rng.integers(0, n - source))
        copy = dict(records[source])
        if source in conflicting:
            copy["title"] = f"{copy['title']} (Renewed)"
        elif k % 2:
            copy.pop("description", None)  # less complete: merging keeps the description
        after[target].append(copy)
    for k in range(n_price):
        source = int(rng.integers(0, n))
        bad = dict(records[source])
        bad["asin"] = [bad["asin"]] if k % 2 == 0 else True
        after[source].append(bad)
    for i in rng.choice(n, size=counts.blank_lines, replace=False).tolist():
        after[i].append(None)
    huge = {"price": _HUGE if fmt == "2014" else HUGE_PRICE_TEXT}
    lines: list[dict[str, Any] | None] = []
    for i in priced.tolist():
        records[i] = {**records[i], **huge}
    for i, record in enumerate(records):
        lines.append(record)
        lines.extend(after.get(i, []))
    return lines


def render_huge_price(line: bytes) -> bytes:
    return line.replace(repr(_HUGE).encode(), b"1e400")
