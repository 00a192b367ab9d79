"""Leakage checks: every fitted artifact was fitted on the split's train rows and nothing else.

One blocking check per fitted asset (the fused embeddings and every model). It runs in
Dagster, apart from the job that fitted the artifact: it reads the record the artifact keeps
of its training rows (``core/leakage.py``) and the split as it is now, and fails, naming the
component, how many validation and test interactions it saw and an example, when they differ.
"""

from __future__ import annotations

from dagster import AssetCheckResult, AssetChecksDefinition, AssetsDefinition, asset_check

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.artifacts import Artifact, Artifacts
from recsys_assets.core.io.codecs import read_json, read_npy, read_parquet
from recsys_assets.core.io.storage import exists
from recsys_assets.core.leakage import ROW_COLUMNS, leak_outcome
from recsys_assets.core.models.registry import spec
from recsys_assets.core.outcomes import CheckOutcome
from recsys_assets.defs.assets.check_results import check_result
from recsys_assets.defs.assets.embeddings import item_fused_embeddings
from recsys_assets.defs.assets.models import MODEL_ASSETS
from recsys_assets.defs.environments import SettingsResource

CHECK_SUFFIX = "fitted_on_train_only"
#: A ranker learns from validation labels; only test must stay unseen.
RANKER_ROWS = ("train", "val")


def trained_on_outcome(
    component: str, meta_uri: str, artifacts: Artifacts, allowed: tuple[str, ...] = ("train",)
) -> CheckOutcome:
    """``component``'s record (``trained_on`` in its metadata file ``meta_uri``) against the
    split's ``allowed`` rows."""
    if not exists(meta_uri):
        raise FileNotFoundError(f"{meta_uri}: {component} wrote no metadata; rematerialize it")
    record = read_json(meta_uri).get("trained_on")
    if not record:
        return CheckOutcome(
            False,
            f"{component}: {meta_uri} records nothing of what it was fitted on; rematerialize it",
            0,
            "a record",
        )
    splits = read_parquet(artifacts.uri(catalogue.SPLITS), columns=[*ROW_COLUMNS, "split"])
    return leak_outcome(component, record, read_npy(record["keys_uri"]), splits, allowed)


def trained_on_check(
    asset: AssetsDefinition, meta: Artifact, allowed: tuple[str, ...] = ("train",), **fields: str
) -> AssetChecksDefinition:
    """The blocking check that ``asset`` (whose metadata file is ``meta``) saw only the rows of
    the ``allowed`` splits (train; train and validation for a ranker, which learns from it)."""
    key = asset.key.to_user_string()
    name = f"{key}_{CHECK_SUFFIX}"
    seen = (
        "train and validation rows only: no test"
        if "val" in allowed
        else "train rows only: no validation or test"
    )

    @asset_check(
        asset=asset,
        name=name,
        blocking=True,
        description=f"Fitted on the split's {seen} interaction seen "
        "(its record of (user, item, ts) rows against interaction_splits).",
    )
    def check(settings: SettingsResource) -> AssetCheckResult:
        artifacts = settings.artifacts
        outcome = trained_on_outcome(key, artifacts.uri(meta, **fields), artifacts, allowed)
        return check_result(key, name, outcome)

    return check


def rows_fitted_on(model: str) -> tuple[str, ...]:
    return RANKER_ROWS if spec(model).kind == "ranker" else ("train",)


LEAKAGE_CHECKS: list[AssetChecksDefinition] = [
    trained_on_check(item_fused_embeddings, catalogue.FUSION_CONFIG),
    *(
        trained_on_check(asset, catalogue.MODEL_META, rows_fitted_on(name), model=name)
        for name, asset in MODEL_ASSETS.items()
    ),
]
