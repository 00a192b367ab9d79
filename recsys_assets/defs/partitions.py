"""Partitions of the asset graph: months of reviews, days of drift metrics (from the settings)."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition, MonthlyPartitionsDefinition

from recsys_assets.settings import load_settings
from recsys_assets.settings.data import DataSettings
from recsys_assets.settings.monitoring import MonitoringSettings


def monthly_partitions(data: DataSettings) -> MonthlyPartitionsDefinition:
    """Calendar months (UTC) of review time, keys ``YYYY-MM``, from the configured range."""
    return MonthlyPartitionsDefinition(start_date=data.months_start, end_date=data.months_end, fmt="%Y-%m")


def drift_days(monitoring: MonitoringSettings) -> DailyPartitionsDefinition:
    """Days up to today: today's partition computes the day so far (on demand; the schedule
    materializes yesterday's once it is complete)."""
    return DailyPartitionsDefinition(start_date=monitoring.drift_start, timezone="UTC", end_offset=1)


interaction_months = monthly_partitions(load_settings().data)
drift_metric_days = drift_days(load_settings().monitoring)
