"""Each data-quality rule fails on a crafted frame, naming the problem and the rows."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys_assets.core.catalogue import quality


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u2", None, "u4"],
            "item_id": ["i1", "i2", "i3", "i1"],
            "rating": [5.0, 7.0, 1.0, 0.0],
            "ts": pd.to_datetime([1, 2, 3, 1], unit="s", utc=True),
        }
    )


def test_not_null_reports_the_null_row() -> None:
    outcome = quality.not_null(_frame(), ["user_id", "item_id"])
    assert not outcome.passed
    assert outcome.observed == 1
    assert outcome.message == "1 of 4 rows violate: user_id is not null"
    assert outcome.offending["item_id"].tolist() == ["i3"]


def test_not_null_passes_on_clean_columns() -> None:
    outcome = quality.not_null(_frame(), ["item_id"])
    assert outcome.passed and outcome.observed == 0


def test_between_lists_out_of_range_ratings() -> None:
    outcome = quality.between(_frame(), "rating", 1, 5)
    assert not outcome.passed
    assert outcome.observed == 2
    assert outcome.threshold == "[1, 5]"
    assert outcome.offending["rating"].tolist() == [7.0, 0.0]


def test_unique_and_compound_unique() -> None:
    frame = _frame()
    dup = quality.unique(frame, "item_id")
    assert not dup.passed
    assert dup.observed == 2  # GX counts every member of a duplicated group
    assert sorted(dup.offending["user_id"].tolist()) == ["u1", "u4"]

    events = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)
    outcome = quality.check_rules(events, [quality.rule_compound_unique(["user_id", "item_id", "ts"])])[0]
    assert not outcome.passed
    assert outcome.message == "2 of 5 rows violate: (user_id, item_id, ts) is unique"
    assert quality.check_rules(frame, [quality.rule_compound_unique(["user_id", "item_id", "ts"])])[0].passed


def test_columns_equal() -> None:
    frame = pd.DataFrame({"ts_month": ["2013-01", "2013-02"], "partition": ["2013-01", "2013-01"]})
    outcome = quality.check_rules(frame, [quality.rule_equal("ts_month", "partition", "ts in month")])[0]
    assert not outcome.passed
    assert outcome.offending["ts_month"].tolist() == ["2013-02"]


def test_present_in() -> None:
    outcome = quality.present_in(_frame(), "item_id", pd.Series(["i1", "i2"]), "items")
    assert not outcome.passed
    assert outcome.message == "1 of 4 rows have a item_id that is not in items"
    assert outcome.offending["item_id"].tolist() == ["i3"]


def test_offending_rows_are_capped_at_ten() -> None:
    frame = pd.DataFrame({"rating": [9.0] * 25})
    outcome = quality.between(frame, "rating", 1, 5)
    assert outcome.observed == 25
    assert len(outcome.offending) == quality.MAX_OFFENDING


def test_rate_at_most_names_reasons() -> None:
    quarantine = pd.DataFrame(
        {
            "file": ["r.gz"] * 2,
            "line": [3, 9],
            "code": ["invalid_record", "missing_field"],
            "reason": ["invalid JSON: unexpected character", "missing field: asin"],
            "record": ["{", "{}"],
        }
    )
    outcome = quality.rate_at_most(2, 100, 0.01, "month 2013-01", quarantine)
    assert not outcome.passed
    assert outcome.observed == pytest.approx(0.02)
    assert outcome.message == (
        "month 2013-01: 2 of 100 records (2.0000%), above the limit of 1.0000% "
        "[invalid_record x1, missing_field x1; first: r.gz line 3: invalid JSON: unexpected character]"
    )
    assert quality.rate_at_most(1, 100, 0.01, "m", quarantine.iloc[:1]).passed


@pytest.mark.parametrize(
    ("rows", "previous", "passed", "observed"),
    [(100, None, True, 0.0), (120, 100, True, 0.2), (40, 100, False, -0.6), (5, 0, False, float("inf"))],
)
def test_relative_change(rows: int, previous: int | None, passed: bool, observed: float) -> None:
    outcome = quality.relative_change_at_most(rows, previous, 0.5, "2013-02")
    assert outcome.passed is passed
    assert outcome.observed == pytest.approx(observed)
