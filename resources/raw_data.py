"""Where the raw Amazon dumps live, and the data-quality thresholds applied when staging them."""

from __future__ import annotations

from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field


class RawDataSource(ConfigurableResource):
    """The raw reviews and metadata dumps: local paths, ``gs://`` or ``https://`` URIs."""

    reviews_uri: str = Field(description="Reviews dump, one record a line, gzip or plain.")
    metadata_uri: str = Field(description="Item metadata dump, one record a line, gzip or plain.")
    format: Literal["2014", "2018", "2023"] = Field(
        default="2014", description="Which public Amazon dump the files follow (see README)."
    )
    workers: int = Field(default=0, description="Parser processes; 0 uses every core.")

    @property
    def parser_workers(self) -> int | None:
        return self.workers or None


class QualityPolicy(ConfigurableResource):
    """Thresholds of the data-quality checks that are not plain yes/no rules."""

    max_quarantine_rate: float = Field(
        default=0.001, description="Largest share of a file's records that may be quarantined."
    )
    row_count_tolerance: float = Field(
        default=0.5,
        description="Largest relative change of a month's rows vs the month before (warning).",
    )
