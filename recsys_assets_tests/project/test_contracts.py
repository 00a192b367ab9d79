"""The asset -> job boundary: every contract names a job module that takes exactly that params
type, every asset that runs a job declares that job's checks, and params round-trip through the
Pipes extras (JSON) unchanged."""

from __future__ import annotations

import importlib
import inspect
import json
import typing

import pytest

from recsys_assets.core.models import registry
from recsys_assets.definitions import defs
from recsys_assets.pipes import contracts
from recsys_assets.pipes.pipes_io import validate_params
from recsys_assets.settings.models import GATConfig


@pytest.mark.parametrize("contract", contracts.CONTRACTS, ids=lambda c: c.__name__)
def test_each_contract_names_a_module_that_runs_it(contract: type[contracts.JobParams]) -> None:
    module = importlib.import_module(contract.module)
    params_type = typing.get_type_hints(module.run)[next(iter(inspect.signature(module.run).parameters))]
    # The training job takes any registered model's params (each a ``TrainParams``).
    assert issubclass(contract, params_type), (contract, params_type)


def test_assets_declare_the_checks_their_jobs_report() -> None:
    graph = defs.resolve_asset_graph()
    declared = {key.name for key in graph.asset_check_keys}
    expected = {
        "item_text_embeddings": contracts.TextEmbeddingParams,
        "item_image_embeddings": contracts.ImageEmbeddingParams,
        "item_fused_embeddings": contracts.FusionParams,
        **{f"{m}_model": contracts.TrainParams for m in registry.BY_NAME},
        "eval_report": contracts.EvaluateParams,
    }
    for asset, contract in expected.items():
        assert {f"{asset}_{suffix}" for suffix in contract.checks} <= declared, asset


def test_params_round_trip_through_json_and_name_bad_fields() -> None:
    params = contracts.TRAIN_CONTRACTS["gat"](
        asset="gat_model",
        model="gat",
        data=contracts.TrainingInputs(splits_uri="s.parquet", node_maps_uri="n.json"),
        output=contracts.ModelFiles(
            users_uri="u.npy",
            items_uri="i.npy",
            neighbours_uri="w.npz",
            meta_uri="m.json",
            trained_on_uri="t.npy",
            checkpoint_uri="g.pt",
        ),
        config=GATConfig(heads=4, fanouts=(5, 3)),
        inputs=contracts.ContentInputs(
            features="txt", features_uri="t.npy", ui_edges_uri="e.npz", ii_edges_uri="k.npz"
        ),
    )
    extras = json.loads(json.dumps(params.to_dict()))  # what Pipes carries
    again = validate_params(contracts.TRAIN_PARAMS, extras)
    assert again == params and again.config.fanouts == (5, 3)
    with pytest.raises(
        ValueError, match=r"invalid job params: gat\.config\.heads: Input should be a valid integer"
    ):
        validate_params(contracts.TRAIN_PARAMS, {**extras, "config": {**extras["config"], "heads": "many"}})
    with pytest.raises(
        ValueError, match=r"invalid job params: gat\.inputs\.features: Input should be 'fused' or 'txt'"
    ):
        validate_params(contracts.TRAIN_PARAMS, {**extras, "inputs": {**extras["inputs"], "features": "img"}})
    with pytest.raises(
        ValueError, match=r"invalid job params: .*Input tag 'svd' found using 'model' does not match"
    ):
        validate_params(contracts.TRAIN_PARAMS, {**extras, "model": "svd"})
