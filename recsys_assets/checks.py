"""Turn the core's ``CheckOutcome`` into Dagster asset check results."""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from recsys_assets.core.quality import CheckOutcome


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
