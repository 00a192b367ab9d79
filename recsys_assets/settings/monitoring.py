"""Drift monitoring: the metrics and their default thresholds, and when drift asks for a retrain."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import ValidationInfo, field_validator

from recsys_assets.settings.base import Section, section, setting


@dataclass(frozen=True)
class Metric:
    """A drift metric (formulas in ``core/monitoring/drift.py``), its default threshold, and
    the smallest sample it is read on."""

    name: str
    #: Breach when the value is above (``max``) or below (``min``) the threshold.
    threshold: float
    direction: Literal["max", "min"] = "max"
    description: str = ""
    #: What the metric is computed over (a count in its row's details) and the least of it the
    #: value means anything on: below it the status is ``no_data``, never ``breach``. A PSI over
    #: two clicks is noise (one day with 2 feedback events read 7.6 and 11.1, both "breaches").
    sample: str = "interactions"
    min_sample: int = 200


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "category_psi",
            0.25,
            description="PSI of the items' leaf-category shares, the day's interactions vs training",
        ),
        Metric(
            "popularity_psi",
            0.25,
            description="PSI over popularity bins: training items cut into ten bins of a tenth of the "
            "training interactions each, plus a bin for unseen items",
        ),
        Metric("unseen_item_share", 0.3, description="share of interactions on items unseen in training"),
        Metric("unseen_user_share", 0.8, description="share of interactions from users unseen in training"),
        Metric(
            "centroid_distance",
            0.5,
            description="mean `1 - cos` of new items' text embeddings to the trained items' normalised "
            "centroid",
            sample="new_items",
            min_sample=30,
        ),
        Metric(
            "nn_similarity_ks",
            0.3,
            description="two-sample KS statistic: new items' similarity to their nearest trained item vs "
            "trained items' to their nearest other (2,000 sampled a side)",
            sample="new_items",
            min_sample=30,
        ),
        Metric(
            "fallback_rate",
            0.5,
            description="requests answered by popularity / requests",
            sample="requests",
            min_sample=100,
        ),
        Metric("catalogue_coverage", 0.01, "min", "distinct served items / catalogue size", "requests", 100),
        Metric("ctr", 0.0, "min", "clicks / impressions", "impressions", 200),
        Metric("ctr_change", -0.3, "min", "CTR over the trailing 7 days' CTR, minus 1", "impressions", 200),
        Metric(
            "score_psi",
            0.25,
            description="PSI of each request's top score, the day vs the trailing 7 days (on the trailing "
            "deciles)",
            sample="requests",
            min_sample=100,
        ),
    )
}


class ExperimentConfig(Section):
    """Online experiments' statistics and what the experiment sensor does with them
    (``core/experiments/sequential.py``, the ``experiment_report`` asset)."""

    alpha: float = setting(0.05, "Error rate of every test: A/B (always valid) and interleaving.", gt=0, lt=1)
    tau: float = setting(
        0.02, "The A/B test's mixing scale: the size of click-through difference it is most sensitive to.",
        gt=0,
    )  # fmt: skip
    min_requests: int = setting(
        1000, "Requests each arm must have served before the report decides anything.", ge=1
    )
    preference: float = setting(
        0.05, "Interleaving: the smallest preference (share of decided requests minus 1/2) to detect.",
        gt=0, lt=0.5,
    )  # fmt: skip
    power: float = setting(0.8, "Interleaving: the power to detect it (sets the sample size).", gt=0, lt=1)
    auto_promote: bool = setting(
        False, "The experiment sensor promotes a significantly better treatment (off: it proposes it).",
        env="RECSYS_AUTO_PROMOTE",
    )  # fmt: skip


class MonitoringSettings(Section):
    drift_start: str = setting(
        "2026-01-01", "First day (`YYYY-MM-DD`) of the `drift_metrics` partitions.", env="RECSYS_DRIFT_START",
        pattern=r"^\d{4}-\d{2}-\d{2}$",
    )  # fmt: skip
    thresholds: dict[str, float] = setting(
        default_factory=dict,
        description='Per-metric threshold overrides, a JSON object (e.g. `{"category_psi": 0.1}`).',
        env="RECSYS_DRIFT_THRESHOLDS",
    )
    min_samples: dict[str, int] = setting(
        default_factory=dict,
        description='Per-metric minimum sample overrides, a JSON object (e.g. `{"category_psi": 50}`): below '
        "it a metric reads `no_data`, never `breach`.",
        env="RECSYS_DRIFT_MIN_SAMPLES",
    )
    retrain_min_interval_h: float = setting(
        24.0, "Fewest hours between two retrains the drift sensor requests.",
        env="RECSYS_RETRAIN_MIN_INTERVAL_H", ge=0,
    )  # fmt: skip
    experiments: ExperimentConfig = section(ExperimentConfig, "Online experiments.")
    automation: Literal["auto", "on", "off"] = setting(
        "auto", "The drift schedule and sensor: `auto` (on in gcp, off locally), `on` or `off`.",
        env="RECSYS_DRIFT_AUTOMATION",
    )  # fmt: skip

    @field_validator("thresholds", "min_samples")
    @classmethod
    def _known_metrics(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        unknown = sorted(set(value) - set(METRICS))
        if unknown:
            raise ValueError(f"{info.field_name} for unknown metrics {unknown}; known: {sorted(METRICS)}")
        return value

    def metrics(self) -> dict[str, Metric]:
        """The metrics with the overridden thresholds and minimum samples applied."""
        return {
            name: replace(m, threshold=self.thresholds.get(name, m.threshold),
                          min_sample=self.min_samples.get(name, m.min_sample))
            for name, m in METRICS.items()
        }  # fmt: skip
