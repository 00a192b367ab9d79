"""The experiment report: per experiment and arm, from the experiment's first logged request to
the end of a day, click-through, latency and coverage, and the tests that decide it.

Metrics (one warehouse row each, ``experiment_metrics``):

- ``requests``: requests the arm answered (shadow rows are never shown and count apart);
- ``ctr``: the share of those requests with at least one click or purchase (a 95% normal
  interval, fixed-horizon, for reading only);
- ``latency_ms``: the mean time to answer, with a 95% normal interval;
- ``coverage``: distinct items served / catalogue size;
- ``ctr_difference`` (each treatment against the control, A/B): ``ctr_t - ctr_c`` with the
  always-valid p-value and interval of the mSPRT over one look per day
  (``sequential.py``); decided once both arms served ``min_requests``;
- ``preference`` (interleaving): the treatment's share of the requests whose clicks favoured
  one arm (ties half) minus 1/2, with the sign test, decided at its stated sample size;
- ``shadow_agreement`` (a shadow version): the mean share of a served list the shadow's list
  for the same request also holds, with a 95% interval;
- ``replay_recall`` (a shadow version): the candidate replayed on logged feedback: of the
  clicks and purchases on shadowed requests, the share whose item the shadow's list holds
  (95% interval; the mean reciprocal rank in ``details``). Clicks only happen on what was
  shown, so this replay favours a candidate that agrees with the served model: it screens a
  candidate before it takes traffic (a low value on many clicks is a warning), and an A/B test
  decides.

The shadow arm's requests and latency are reported like an arm's, but not its click-through:
it is never shown, so the clicks joined to its requests are the served list's.

A decision is ``stop`` (the treatment is significantly worse), ``promote`` (significantly
better) or ``continue``. The SQL runs unchanged on DuckDB and BigQuery but for the day of a
timestamp (``DAY``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys_assets.core.experiments.assignment import CONTROL, INTERLEAVED, SHADOW, TREATMENT
from recsys_assets.core.experiments.sequential import Counts, always_valid, sign_test, sign_test_sample_size
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.plots import png, pyplot
from recsys_assets.core.warehouse.clients import Warehouse
from recsys_assets.core.warehouse.tables import EXPERIMENT_METRICS
from recsys_assets.settings.monitoring import ExperimentConfig

Z95 = 1.959964
#: A request's day (UTC), by dialect.
DAY = {"duckdb": "CAST(timezone('UTC', r.ts) AS DATE)", "bigquery": "DATE(r.ts)"}
CLICKS = (
    "SELECT DISTINCT request_id, item_id FROM {feedback_events} "
    "WHERE experiment = @experiment AND event IN ('click', 'purchase') AND ts < @end"
)
EXPERIMENTS_SQL = (
    "SELECT DISTINCT experiment FROM {recommendation_requests} "
    "WHERE experiment IS NOT NULL AND ts >= @start AND ts < @end"
)
ARM_DAYS_SQL = (
    "SELECT r.arm AS arm, DAY_OF_TS AS day, COUNT(*) AS requests, "
    "SUM(CASE WHEN c.request_id IS NULL THEN 0 ELSE 1 END) AS clicked, "
    "SUM(r.latency_ms) AS latency_sum, SUM(r.latency_ms * r.latency_ms) AS latency_squares "
    "FROM {recommendation_requests} AS r LEFT JOIN (SELECT DISTINCT request_id FROM ("
    + CLICKS
    + ") AS f) AS c ON c.request_id = r.request_id "
    "WHERE r.experiment = @experiment AND r.ts < @end GROUP BY r.arm, day"
)
COVERAGE_SQL = (
    "SELECT r.arm AS arm, COUNT(DISTINCT item) AS items FROM {recommendation_requests} AS r, "
    "UNNEST(r.items) AS item WHERE r.experiment = @experiment AND r.ts < @end GROUP BY r.arm"
)
#: Interleaving: each click on an interleaved request, with the request's items and teams (the
#: clicked item's team is found in Python: the BigQuery emulator's UNNEST offsets are off by one).
CLICKED_SQL = (
    "SELECT r.request_id AS request_id, r.items AS items, r.teams AS teams, c.item_id AS item_id "
    "FROM {recommendation_requests} AS r JOIN (" + CLICKS + ") AS c ON c.request_id = r.request_id "
    "WHERE r.experiment = @experiment AND r.arm = 'interleaved' AND r.ts < @end"
)


#: Each shadowed request: the shadow's list and the list served for the same request.
SHADOW_SQL = (
    "SELECT s.request_id AS request_id, s.items AS shadow_items, r.items AS served_items "
    "FROM {recommendation_requests} AS s JOIN {recommendation_requests} AS r ON r.request_id = s.request_id "
    "WHERE s.experiment = @experiment AND s.arm = 'shadow' AND r.arm <> 'shadow' AND s.ts < @end"
)


def credits(clicked: pd.DataFrame) -> pd.DataFrame:
    """(request, team) for every click on an item of an interleaved list."""
    rows = []
    for r in clicked.itertuples():
        items, teams = list(r.items), list(r.teams)
        if r.item_id in items:
            rows.append((r.request_id, teams[items.index(r.item_id)]))
    return pd.DataFrame(rows, columns=["request_id", "team"])


@dataclass
class Arm:
    name: str
    #: Cumulative (requests, clicked requests) at the end of each day, in order.
    looks: list[tuple[dt.date, Counts]]
    latency_sum: float
    latency_squares: float
    items: int

    @property
    def total(self) -> Counts:
        return self.looks[-1][1] if self.looks else Counts(0, 0)


def _arms(frame: pd.DataFrame, coverage: dict[str, int]) -> dict[str, Arm]:
    arms: dict[str, Arm] = {}
    for name, rows in frame.sort_values("day").groupby("arm", sort=True):
        requests, clicked = np.cumsum(rows["requests"].to_numpy()), np.cumsum(rows["clicked"].to_numpy())
        looks = [
            (pd.Timestamp(day).date(), Counts(int(n), int(c)))
            for day, n, c in zip(rows["day"], requests, clicked, strict=True)
        ]
        arms[str(name)] = Arm(
            str(name), looks, float(rows["latency_sum"].sum()), float(rows["latency_squares"].sum()),
            coverage.get(str(name), 0),
        )  # fmt: skip
    return arms


def _aligned(control: Arm, treatment: Arm) -> list[tuple[Counts, Counts]]:
    """Both arms' cumulative counts at the end of every day either has data."""
    days = sorted({d for d, _ in control.looks} | {d for d, _ in treatment.looks})

    def at(arm: Arm, day: dt.date) -> Counts:
        found = [c for d, c in arm.looks if d <= day]
        return found[-1] if found else Counts(0, 0)

    return [(at(control, day), at(treatment, day)) for day in days]


def _row(experiment: str, arm: str, metric: str, value: float | None, **extra: Any) -> dict[str, Any]:
    details = extra.pop("details", {})
    return {"experiment": experiment, "arm": arm, "metric_name": metric, "value": value,
            "ci_low": extra.get("ci_low"), "ci_high": extra.get("ci_high"), "p_value": extra.get("p_value"),
            "decision": extra.get("decision"), "details": json.dumps(details)}  # fmt: skip


def _arm_rows(experiment: str, arm: Arm, catalogue: int) -> list[dict[str, Any]]:
    total = arm.total
    rows = [_row(experiment, arm.name, "requests", float(total.n), details={"clicked": total.clicks})]
    if total.n:
        if arm.name != SHADOW:  # never shown: its requests' clicks are the served list's
            half = Z95 * math.sqrt(total.rate * (1 - total.rate) / total.n)
            counts = {"requests": total.n, "clicked": total.clicks}
            rows.append(_row(experiment, arm.name, "ctr", total.rate, ci_low=total.rate - half,
                             ci_high=total.rate + half, details=counts))  # fmt: skip
        mean = arm.latency_sum / total.n
        variance = max(arm.latency_squares / total.n - mean * mean, 0.0)
        half = Z95 * math.sqrt(variance / total.n)
        rows.append(_row(experiment, arm.name, "latency_ms", mean, ci_low=mean - half, ci_high=mean + half))
    rows.append(_row(experiment, arm.name, "coverage", arm.items / catalogue if catalogue else None,
                     details={"served_items": arm.items, "catalogue": catalogue}))  # fmt: skip
    return rows


def _decision(significant: bool, effect: float, enough: bool) -> str:
    if not (significant and enough):
        return "continue"
    return "promote" if effect > 0 else "stop"


def _ab_rows(experiment: str, arms: dict[str, Arm], config: ExperimentConfig) -> list[dict[str, Any]]:
    control = arms.get(CONTROL)
    rows = []
    for name, arm in arms.items():
        if name in (CONTROL, SHADOW, INTERLEAVED) or control is None:
            continue
        looks = _aligned(control, arm)
        result = always_valid(looks, config.alpha, config.tau)
        enough = min(control.total.n, arm.total.n) >= config.min_requests
        rows.append(_row(
            experiment, name, "ctr_difference", result.difference,
            ci_low=_finite(result.ci_low), ci_high=_finite(result.ci_high), p_value=result.p_value,
            decision=_decision(result.significant, result.difference, enough),
            details={"control": vars(control.total), "treatment": vars(arm.total), "looks": len(looks),
                     "alpha": config.alpha, "tau": config.tau, "min_requests": config.min_requests},
        ))  # fmt: skip
    return rows


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _interleave_rows(
    experiment: str, credits: pd.DataFrame, config: ExperimentConfig
) -> list[dict[str, Any]]:
    teams = sorted(set(credits["team"].dropna()) - {CONTROL})
    treatment = teams[0] if teams else TREATMENT
    per_request = credits.groupby("request_id")["team"].agg(
        treatment=lambda t: int((t == treatment).sum()), control=lambda t: int((t == CONTROL).sum())
    ) if len(credits) else pd.DataFrame(columns=["treatment", "control"])  # fmt: skip
    wins = int((per_request["treatment"] > per_request["control"]).sum())
    losses = int((per_request["treatment"] < per_request["control"]).sum())
    ties = len(per_request) - wins - losses
    needed = sign_test_sample_size(config.preference, config.alpha, config.power)
    result = sign_test(wins, losses, ties, config.alpha, needed)
    return [_row(
        experiment, treatment, "preference", result.preference, p_value=result.p_value,
        decision=_decision(result.significant, result.preference, True),
        details={"treatment_wins": wins, "control_wins": losses, "ties": ties, "needed": needed,
                 "alpha": config.alpha, "power": config.power, "min_preference": config.preference},
    )]  # fmt: skip


def _mean_interval(values: np.ndarray) -> dict[str, float | None]:
    half = Z95 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    mean = float(values.mean())
    return {"ci_low": _finite(mean - half), "ci_high": _finite(mean + half)}


def shadow_rows(experiment: str, pairs: pd.DataFrame, clicks: pd.DataFrame) -> list[dict[str, Any]]:
    """Agreement of the shadow's lists with the served ones, and the shadow replayed on the
    clicks and purchases of the shadowed requests (see the module docstring)."""
    if pairs.empty:
        return []
    shadow = {str(r.request_id): list(r.shadow_items) for r in pairs.itertuples()}
    overlap = np.array([
        len(set(s) & set(served)) / len(served) if len(served) else 0.0
        for s, served in zip(pairs["shadow_items"], pairs["served_items"], strict=True)
    ])  # fmt: skip
    rows = [_row(experiment, SHADOW, "shadow_agreement", float(overlap.mean()), **_mean_interval(overlap),
                 details={"requests": len(overlap)})]  # fmt: skip
    replayed = [
        (shadow[str(c.request_id)], str(c.item_id))
        for c in clicks.itertuples()
        if str(c.request_id) in shadow
    ]
    if replayed:
        ranks = [items.index(item) + 1 if item in items else 0 for items, item in replayed]
        found = sum(1 for r in ranks if r)
        rate = found / len(ranks)
        half = Z95 * math.sqrt(rate * (1 - rate) / len(ranks))
        rows.append(_row(experiment, SHADOW, "replay_recall", rate, ci_low=rate - half, ci_high=rate + half,
                         details={"clicks": len(ranks), "found": found,
                                  "mrr": sum(1 / r for r in ranks if r) / len(ranks)}))  # fmt: skip
    return rows


def experiment_rows(
    warehouse: Warehouse, day: dt.date, catalogue: int, config: ExperimentConfig
) -> pd.DataFrame:
    """The report's rows for every experiment with a request on ``day``."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    start = end - dt.timedelta(days=1)
    names = warehouse.query(EXPERIMENTS_SQL, {"start": start, "end": end})["experiment"].tolist()
    rows: list[dict[str, Any]] = []
    for name in sorted(str(n) for n in names):
        params = {"experiment": name, "end": end}
        frame = warehouse.query(ARM_DAYS_SQL.replace("DAY_OF_TS", DAY[warehouse.dialect]), params)
        coverage = {str(r.arm): int(r.items) for r in warehouse.query(COVERAGE_SQL, params).itertuples()}
        arms = _arms(frame, coverage)
        for arm in arms.values():
            rows += _arm_rows(name, arm, catalogue)
        if SHADOW in arms:
            rows += shadow_rows(name, warehouse.query(SHADOW_SQL, params), warehouse.query(CLICKS, params))
        if INTERLEAVED in arms:
            rows += _interleave_rows(name, credits(warehouse.query(CLICKED_SQL, params)), config)
        else:
            rows += _ab_rows(name, arms, config)
    frame = pd.DataFrame(
        rows,
        columns=[c for c in EXPERIMENT_METRICS.column_names() if c not in ("metric_date", "computed_at")],
    )
    frame.insert(0, "metric_date", day)
    frame["computed_at"] = pd.Timestamp.now(tz="UTC")
    return frame


HISTORY_SQL = (
    "SELECT metric_date, arm, metric_name, value, ci_low, ci_high, p_value, decision "
    "FROM {experiment_metrics} "
    "WHERE experiment = @experiment AND metric_date <= @last ORDER BY metric_date"
)


def report_table(rows: pd.DataFrame) -> str:
    """One line per arm and metric: the value, its interval, and for comparisons the test."""

    def number(value: Any, digits: int = 4) -> str:
        return "" if value is None or pd.isna(value) else f"{value:.{digits}f}"

    return markdown_table(
        ["experiment", "arm", "metric", "value", "95% / always-valid interval", "p-value", "decision"],
        [
            [r.experiment, r.arm, r.metric_name, number(r.value),
             "" if pd.isna(r.ci_low) else f"[{r.ci_low:.4f}, {r.ci_high:.4f}]", number(r.p_value),
             r.decision or ""]
            for r in rows.itertuples()
        ],
    )  # fmt: skip


def history_plot(history: pd.DataFrame, experiment: str) -> bytes:
    """Each arm's click-through to date with its interval, and the comparisons' p-values, by
    day (PNG); the x-axis spans the days there are."""
    plt = pyplot()

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    ctr = history[history["metric_name"] == "ctr"]
    for arm, rows in ctr.groupby("arm", sort=True):
        days = pd.to_datetime(rows["metric_date"])
        left.plot(days, rows["value"], marker="o", markersize=3, label=str(arm))
        left.fill_between(days, rows["ci_low"].astype(float), rows["ci_high"].astype(float), alpha=0.2)
    left.set_title(f"{experiment}: click-through to date (95%)", fontsize=9)
    tests = history[history["metric_name"].isin(["ctr_difference", "preference"])]
    for (arm, metric), rows in tests.groupby(["arm", "metric_name"], sort=True):
        right.plot(pd.to_datetime(rows["metric_date"]), rows["p_value"], marker="o", markersize=3,
                   label=f"{arm} ({metric})")  # fmt: skip
    right.set_yscale("log")
    right.set_title("p-value (always valid for A/B)", fontsize=9)
    for axis, empty in ((left, ctr.empty), (right, tests.empty)):
        if empty:
            axis.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axis.transAxes)
        else:
            axis.legend(fontsize=7)
        axis.tick_params(labelsize=7)
        axis.tick_params(axis="x", rotation=45)
    return png(figure)


def decisions(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The comparisons' decisions, for the experiment sensor."""
    tests = rows[rows["decision"].notna()]
    return [
        {"experiment": r.experiment, "arm": r.arm, "metric": r.metric_name, "decision": r.decision,
         "value": float(r.value), "p_value": float(r.p_value)}
        for r in tests.itertuples()
    ]  # fmt: skip
