"""The core's ``CheckOutcome`` as a Dagster asset check result."""

from __future__ import annotations

from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from recsys_assets.core.markdown import Markdown
from recsys_assets.core.outcomes import CheckOutcome


def metadata_values(values: dict[str, Any]) -> dict[str, Any]:
    """Plain metadata as Dagster shows it best: markdown rendered, the rest as Dagster infers."""
    return {k: MetadataValue.md(v) if isinstance(v, Markdown) else v for k, v in values.items()}


def check_result(
    asset: str,
    name: str,
    outcome: CheckOutcome,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=outcome.passed,
        severity=severity,
        description=outcome.message,
        metadata=metadata_values({**outcome.details(), "message": outcome.message}),
    )
