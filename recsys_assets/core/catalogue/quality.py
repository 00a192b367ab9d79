"""Data-quality rules over staged frames, evaluated with Great Expectations 1.x.

Each rule returns a ``CheckOutcome`` (passed, a message naming the problem, the observed
value, the threshold, and up to ``MAX_OFFENDING`` offending rows), which the Dagster layer
turns into an asset check result. GX runs in an ephemeral context, imported lazily: the
import alone takes seconds and most processes never validate anything.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd

from recsys_assets.core.outcomes import MAX_OFFENDING, CheckOutcome

if TYPE_CHECKING:
    from great_expectations.core import ExpectationValidationResult
    from great_expectations.expectations import Expectation


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("staged_frames")
    return source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")


def batch_of(frame: pd.DataFrame) -> Any:
    return _batch_definition().get_batch(batch_parameters={"dataframe": frame})


def validate(frame: pd.DataFrame, expectation: Expectation) -> ExpectationValidationResult:
    """Run one expectation on ``frame``; the result lists every unexpected index."""
    return batch_of(frame).validate(expectation, result_format={"result_format": "COMPLETE"})


def validate_all(frame: pd.DataFrame, expectations: list[Expectation]) -> list[ExpectationValidationResult]:
    """Run several expectations on ``frame`` as one suite, results in the same order.

    One suite is one validation: GX hashes the whole frame once per validation, which on a
    window of half a million rows costs more than most expectations themselves.
    """
    import great_expectations as gx

    batch = batch_of(frame)  # (first: a suite needs the context that makes the batch)
    suite = gx.ExpectationSuite(name="rules")
    for position, expectation in enumerate(expectations):
        expectation.meta = {**(expectation.meta or {}), "position": position}
        suite.add_expectation(expectation)
    found = batch.validate(suite, result_format={"result_format": "COMPLETE"}).results
    return sorted(found, key=lambda result: result.expectation_config.meta["position"])


def _offending(frame: pd.DataFrame, index: list[Any] | pd.Index) -> pd.DataFrame:
    return frame.loc[list(index)[:MAX_OFFENDING]]


def outcome_of(frame: pd.DataFrame, result: ExpectationValidationResult, what: str) -> CheckOutcome:
    """The verdict of one expectation's result on ``frame``."""
    bad = int(result.result.get("unexpected_count") or 0)
    index = result.result.get("unexpected_index_list") or []
    if result.success:
        return CheckOutcome(True, f"all {len(frame):,} rows: {what}", 0, 0)
    # GX reports nothing unexpected when the check itself errored: surface that as a failure.
    if bad == 0:
        raise RuntimeError(
            f"Great Expectations could not evaluate {result.expectation_config}: {result.exception_info}"
        )
    return CheckOutcome(
        False, f"{bad:,} of {len(frame):,} rows violate: {what}", bad, 0, _offending(frame, index)
    )


def _gx_outcome(frame: pd.DataFrame, expectation: Expectation, what: str) -> CheckOutcome:
    return outcome_of(frame, validate(frame, expectation), what)


def null_expectations(columns: list[str]) -> list[Expectation]:
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def no_nulls(
    frame: pd.DataFrame, columns: list[str], results: list[ExpectationValidationResult]
) -> CheckOutcome:
    """One verdict from the not-null results of ``columns``."""
    outcomes = [outcome_of(frame, r, f"{c} is not null") for c, r in zip(columns, results, strict=True)]
    failed = [o for o in outcomes if not o.passed]
    if not failed:
        return CheckOutcome(True, f"no nulls in {', '.join(columns)} ({len(frame):,} rows)", 0, 0)
    return CheckOutcome(
        False,
        "; ".join(o.message for o in failed),
        sum(o.observed for o in failed),
        0,
        pd.concat([o.offending for o in failed]).head(MAX_OFFENDING),
    )


def not_null(frame: pd.DataFrame, columns: list[str]) -> CheckOutcome:
    return no_nulls(frame, columns, validate_all(frame, null_expectations(columns)))


def unique(frame: pd.DataFrame, column: str) -> CheckOutcome:
    import great_expectations.expectations as gxe

    return _gx_outcome(frame, gxe.ExpectColumnValuesToBeUnique(column=column), f"{column} is unique")


def compound_unique(frame: pd.DataFrame, columns: list[str]) -> CheckOutcome:
    import great_expectations.expectations as gxe

    what = f"({', '.join(columns)}) is unique"
    return _gx_outcome(frame, gxe.ExpectCompoundColumnsToBeUnique(column_list=columns), what)


def between(frame: pd.DataFrame, column: str, low: float, high: float) -> CheckOutcome:
    import great_expectations.expectations as gxe

    expectation = gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)
    outcome = _gx_outcome(frame, expectation, f"{column} in [{low:g}, {high:g}]")
    outcome.threshold = f"[{low:g}, {high:g}]"
    return outcome


def columns_equal(frame: pd.DataFrame, left: str, right: str, what: str) -> CheckOutcome:
    import great_expectations.expectations as gxe

    expectation = gxe.ExpectColumnPairValuesToBeEqual(column_A=left, column_B=right)
    return _gx_outcome(frame, expectation, what)


def present_in(frame: pd.DataFrame, column: str, known: pd.Series, known_name: str) -> CheckOutcome:
    """Every value of ``frame[column]`` occurs in ``known``.

    Computed with pandas rather than GX's ``ExpectColumnValuesToBeInSet``: that expectation
    validates its value set as a pydantic field, which took 32 s for 498k item ids.
    """
    missing = ~frame[column].isin(pd.Index(known))
    bad = int(missing.sum())
    if not bad:
        return CheckOutcome(True, f"all {len(frame):,} {column} values are in {known_name}", 0, 0)
    return CheckOutcome(
        False,
        f"{bad:,} of {len(frame):,} rows have a {column} that is not in {known_name}",
        bad,
        0,
        _offending(frame, frame.index[missing]),
    )


def combine(parts: list[CheckOutcome]) -> CheckOutcome:
    """One verdict from the same rule run on several windows of rows."""
    if len(parts) == 1:
        return parts[0]
    failed = [o for o in parts if not o.passed]
    if not failed:
        return CheckOutcome(
            True, f"{parts[0].message} (and {len(parts) - 1} more window(s) passed)", 0, parts[0].threshold
        )
    return CheckOutcome(
        False,
        f"{len(failed)} of {len(parts)} windows of months fail: " + "; ".join(o.message for o in failed),
        sum(float(o.observed) for o in failed),
        failed[0].threshold,
        pd.concat([o.offending for o in failed]).head(MAX_OFFENDING),
    )


def rate_at_most(bad: int, total: int, max_rate: float, what: str, quarantine: pd.DataFrame) -> CheckOutcome:
    """Share of quarantined records; the message names the commonest reasons and a first example."""
    rate = bad / total if total else 0.0
    passed = rate <= max_rate
    verdict = "within" if passed else "above"
    detail = ""
    if len(quarantine):
        codes = ", ".join(f"{code} x{n}" for code, n in quarantine["code"].value_counts().items())
        first = quarantine.iloc[0]
        detail = f" [{codes}; first: {first['file']} line {first['line']}: {first['reason']}]"
    return CheckOutcome(
        passed,
        f"{what}: {bad:,} of {total:,} records ({rate:.4%}), {verdict} the limit of {max_rate:.4%}{detail}",
        rate,
        max_rate,
        quarantine.head(MAX_OFFENDING),
    )


def relative_change_at_most(rows: int, previous: int | None, tolerance: float, what: str) -> CheckOutcome:
    if previous is None:
        return CheckOutcome(True, f"{what}: {rows:,} rows; no previous month to compare", 0.0, tolerance)
    change = (rows - previous) / previous if previous else float("inf") if rows else 0.0
    passed = abs(change) <= tolerance
    verdict = "within" if passed else "outside"
    return CheckOutcome(
        passed,
        f"{what}: {rows:,} rows vs {previous:,} the month before ({change:+.1%}), {verdict} ±{tolerance:.0%}",
        change,
        tolerance,
    )
