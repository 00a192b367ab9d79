"""The core's ``CheckOutcome`` as a Dagster asset check result."""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from recsys_assets.core.outcomes import CheckOutcome
from recsys_assets.io_manager import metadata_values


def check_result(
    asset: str,
    name: str,
    outcome: CheckOutcome,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
) -> AssetCheckResult:
    metadata: dict[str, MetadataValue] = {
        "observed": MetadataValue.float(float(outcome.observed)),
        "threshold": (
            MetadataValue.text(outcome.threshold)
            if isinstance(outcome.threshold, str)
            else MetadataValue.float(float(outcome.threshold))
        ),
        "message": MetadataValue.text(outcome.message),
        **metadata_values(outcome.metadata),
    }
    if len(outcome.offending):
        metadata["offending_rows"] = MetadataValue.md(outcome.offending.astype(str).to_markdown(index=False))
    return AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=outcome.passed,
        severity=severity,
        description=outcome.message,
        metadata=metadata,
    )
