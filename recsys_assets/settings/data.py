"""The raw dumps, their partitioning by month, and the data-quality thresholds."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from recsys_assets.settings.base import Section, setting

RawFormat = Literal["2014", "2018", "2023"]
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


class DataSettings(Section):
    reviews_uri: str = setting(
        description="Reviews dump: local path, `file://`, `gs://` or `https://`, gzip or not.",
        env="RECSYS_RAW_REVIEWS_URI",
        default_doc="`data/raw/small/reviews_Electronics_5.json.gz` (local), "
        "`gs://$RECSYS_GCS_BUCKET/raw/reviews_Electronics_5.json.gz` (gcp)",
    )
    metadata_uri: str = setting(
        description="Item metadata dump, same choices.",
        env="RECSYS_RAW_METADATA_URI",
        default_doc="`data/raw/small/meta_Electronics.json.gz` (local), "
        "`gs://$RECSYS_GCS_BUCKET/raw/meta_Electronics.json.gz` (gcp)",
    )
    format: RawFormat = setting(
        "2014",
        "Which public Amazon dump the files follow: `2014` (McAuley; metadata as Python literals), "
        "`2018` (Ni et al.), `2023` (McAuley lab).",
        env="RECSYS_RAW_FORMAT",
    )
    # The synthetic ``small`` preset spans 2012-08 .. 2014-07, ending where the real 2014
    # Electronics file ends.
    months_start: str = setting(
        "2012-08", "First month (`YYYY-MM`) of the `interactions` partitions.", env="RECSYS_MONTHS_START",
        pattern=MONTH,
    )  # fmt: skip
    months_end: str = setting(
        "2014-08", "The month after the last `interactions` partition (`YYYY-MM`, exclusive).",
        env="RECSYS_MONTHS_END", pattern=MONTH,
    )  # fmt: skip
    max_quarantine_rate: float = setting(
        0.001,
        "Largest share of a file's records that may be invalid and quarantined (0 rejects any bad record).",
        env="RECSYS_MAX_QUARANTINE_RATE", ge=0.0, le=1.0,
    )  # fmt: skip
    duplicate_warn_share: float = setting(
        0.05,
        "Share of repeated records (duplicate reviews, repeated metadata lines) above which a "
        "warning check fails; they are collapsed or merged either way, and never stop a run.",
        env="RECSYS_DUPLICATE_WARN_SHARE", ge=0.0, le=1.0,
    )  # fmt: skip
    row_count_tolerance: float = setting(
        0.5, "Month-over-month row-count change that raises a warning.", env="RECSYS_ROW_COUNT_TOLERANCE",
        ge=0.0,
    )  # fmt: skip
    staging_engine: Literal["local", "bigquery"] = setting(
        "local",
        "Where the dumps are staged: `local` (this machine, memory flat in dump size) or `bigquery` "
        "(each dump is numbered into GCS shards, loaded, typed, deduplicated or merged and split by "
        "month in SQL by the warehouse's BigQuery; needs `RECSYS_WAREHOUSE=bigquery`).",
        env="RECSYS_STAGING_ENGINE",
    )
    parser_workers: int = setting(
        0, "Processes parsing the raw dumps; 0: one per core (at most 8).", env="RECSYS_PARSER_WORKERS", ge=0
    )

    @model_validator(mode="after")
    def _months_in_order(self) -> Self:
        if self.months_end <= self.months_start:
            raise ValueError(f"months_end {self.months_end} must come after months_start {self.months_start}")
        return self
