"""Data-quality rules over staged frames, evaluated with Great Expectations 1.x.

Each rule returns a ``CheckOutcome`` (passed, a message naming the problem, the observed
value, the threshold, and up to ``MAX_OFFENDING`` offending rows), which the Dagster layer
turns into an asset check result. GX runs in an ephemeral context, imported lazily: the
import alone takes seconds and most processes never validate anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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


@dataclass
class Rule:
    """One expectation, the words its verdict uses, and the threshold it reports."""

    expectation: Expectation
    what: str
    threshold: float | str = 0


def rule_not_null(column: str) -> Rule:
    import great_expectations.expectations as gxe

    return Rule(gxe.ExpectColumnValuesToNotBeNull(column=column), f"{column} is not null")


def rule_unique(column: str) -> Rule:
    import great_expectations.expectations as gxe

    return Rule(gxe.ExpectColumnValuesToBeUnique(column=column), f"{column} is unique")


def rule_compound_unique(columns: list[str]) -> Rule:
    import great_expectations.expectations as gxe

    what = f"({', '.join(columns)}) is unique"
    return Rule(gxe.ExpectCompoundColumnsToBeUnique(column_list=columns), what)


def rule_between(column: str, low: float, high: float) -> Rule:
    import great_expectations.expectations as gxe

    expectation = gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)
    return Rule(expectation, f"{column} in [{low:g}, {high:g}]", f"[{low:g}, {high:g}]")


def rule_equal(left: str, right: str, what: str) -> Rule:
    import great_expectations.expectations as gxe

    return Rule(gxe.ExpectColumnPairValuesToBeEqual(column_A=left, column_B=right), what)


def check_rules(frame: pd.DataFrame, rules: list[Rule]) -> list[CheckOutcome]:
    """Every rule's verdict on ``frame``, validated by GX as one suite, in the rules' order.

    One suite is one validation: GX hashes the whole frame once per validation, which on a
    window of half a million rows costs more than most expectations themselves.
    """
    import great_expectations as gx

    # The batch first: a suite needs the context that makes it.
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    suite = gx.ExpectationSuite(name="rules")
    for position, rule in enumerate(rules):
        rule.expectation.meta = {**(rule.expectation.meta or {}), "position": position}
        suite.add_expectation(rule.expectation)
    found = batch.validate(suite, result_format={"result_format": "COMPLETE"}).results
    results = sorted(found, key=lambda result: result.expectation_config.meta["position"])
    return [_outcome(frame, result, rule) for rule, result in zip(rules, results, strict=True)]


def _offending(frame: pd.DataFrame, index: list[Any] | pd.Index) -> pd.DataFrame:
    return frame.loc[list(index)[:MAX_OFFENDING]]


def _outcome(frame: pd.DataFrame, result: ExpectationValidationResult, rule: Rule) -> CheckOutcome:
    bad = int(result.result.get("unexpected_count") or 0)
    index = result.result.get("unexpected_index_list") or []
    if result.success:
        return CheckOutcome(True, f"all {len(frame):,} rows: {rule.what}", 0, rule.threshold)
    # GX reports nothing unexpected when the check itself errored: surface that as a failure.
    if bad == 0:
        raise RuntimeError(
            f"Great Expectations could not evaluate {result.expectation_config}: {result.exception_info}"
        )
    return CheckOutcome(
        False, f"{bad:,} of {len(frame):,} rows violate: {rule.what}", bad, rule.threshold,
        _offending(frame, index),
    )  # fmt: skip


def no_nulls(frame: pd.DataFrame, columns: list[str], outcomes: list[CheckOutcome]) -> CheckOutcome:
    """One verdict from the not-null outcomes of ``columns``."""
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
    return no_nulls(frame, columns, check_rules(frame, [rule_not_null(c) for c in columns]))


def unique(frame: pd.DataFrame, column: str) -> CheckOutcome:
    return check_rules(frame, [rule_unique(column)])[0]


def between(frame: pd.DataFrame, column: str, low: float, high: float) -> CheckOutcome:
    return check_rules(frame, [rule_between(column, low, high)])[0]


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
