"""Partitions shared by the asset graph."""

from __future__ import annotations

from dagster import MonthlyPartitionsDefinition

from resources.settings import Settings


def monthly_partitions(settings: Settings) -> MonthlyPartitionsDefinition:
    """Calendar months (UTC) of review time, keys ``YYYY-MM``, from the configured range."""
    return MonthlyPartitionsDefinition(
        start_date=settings.months_start, end_date=settings.months_end, fmt="%Y-%m"
    )


interaction_months = monthly_partitions(Settings.from_env())
