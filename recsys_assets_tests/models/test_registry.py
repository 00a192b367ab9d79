"""The model registry: every entry is complete, and everything said to derive from it does.

A model registered incompletely (a fit that does not resolve or has the wrong shape, a
settings field that is not a section, a search space that suggests settings its section
refuses, an encoder without a checkpoint to load it from) fails here by name, before any
asset runs.
"""

from __future__ import annotations

import inspect

import optuna
import pytest

from recsys_assets.core.models import registry
from recsys_assets.definitions import defs
from recsys_assets.defs.assets.leakage import LEAKAGE_CHECKS
from recsys_assets.defs.assets.models import MODEL_ASSETS, search_partitions
from recsys_assets.pipes.contracts import CONTRACTS, TRAIN_CONTRACTS, TRAIN_PARAMS
from recsys_assets.settings.models import ModelSettings

SPECS = registry.MODELS


def test_the_registry_lists_every_model_once() -> None:
    names = [spec.name for spec in SPECS]
    assert names == ["popularity", "itemknn", "ease", "mf", "lightgcn", "gat", "sasrec", "blend", "ranker"]
    assert [spec.name for spec in registry.RETRIEVERS] == names[:-2]
    assert len(set(names)) == len(names)
    # Serving costs order the models strictly: a tie on validation always has a cheaper side.
    costs = [spec.serving_cost for spec in SPECS]
    assert len(set(costs)) == len(costs)
    assert registry.SERVING_COST[0] == "popularity" and registry.SERVING_COST[-1] == "ranker"
    with pytest.raises(ValueError, match=r"unknown model 'svd'; registered: \['popularity', "):
        registry.spec("svd")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_entry_is_complete(spec: registry.ModelSpec) -> None:
    fit = spec.fit_function()
    assert list(inspect.signature(fit).parameters)[:3] == ["data", "config", "fitting"], spec.fit
    assert spec.description and not spec.description.endswith(".")
    if spec.settings is None:
        assert not spec.tunable and not spec.epochs
    else:
        section = spec.config_class
        assert section is not None and spec.settings in ModelSettings.model_fields
        assert isinstance(spec.config(ModelSettings()), section)
    if spec.epochs:
        # Seeds and early stopping read these from the section.
        assert spec.config_class is not None
        assert {"seed", "epochs", "patience"} <= set(spec.config_class.model_fields)
    if spec.tunable:
        assert spec.config_class is not None
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        overrides = spec.search_space()(study.ask())
        assert overrides and spec.config_class().with_changes(overrides) is not None
    if spec.encoder is not None:
        assert spec.kind == "embedding" and callable(spec.encoder_loader())
    assert spec.kind in ("embedding", "item_item", "ranker")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_everything_derived_from_an_entry_exists(spec: registry.ModelSpec) -> None:
    graph = defs.resolve_asset_graph()
    key = MODEL_ASSETS[spec.name].key
    assert key.to_user_string() == spec.asset and graph.has(key)
    node = graph.get(key)
    assert node.description == f"{spec.description}: models/{spec.name}/."
    assert ("gpu" in node.kinds) == spec.gpu and ("pytorch" in node.kinds) == spec.epochs
    assert f"{spec.asset}_vectors" in {c.name for c in graph.asset_check_keys if c.asset_key == key}
    leakage = [check for check in LEAKAGE_CHECKS if any(k.asset_key == key for k in check.check_keys)]
    assert [k.name for check in leakage for k in check.check_keys] == [f"{spec.asset}_fitted_on_train_only"]
    # A ranker learns from validation labels: its check allows validation rows, never test.
    description = next(iter(leakage[0].check_specs)).description or ""
    ranker = spec.kind == "ranker"
    assert ("train and validation rows only: no test" in description) == ranker, description
    assert ("no validation or test" in description) == (not ranker), description
    if ranker:
        retrievers = {MODEL_ASSETS[r.name].key for r in registry.RETRIEVERS}
        assert retrievers <= set(node.parent_keys)
    contract = TRAIN_CONTRACTS[spec.name]
    assert contract in CONTRACTS
    assert (spec.name in search_partitions.get_partition_keys()) == spec.tunable
    fields = contract.model_fields
    assert fields["config"].annotation is (spec.config_class or type(None))
    assert fields["inputs"].is_required() == spec.content
    assert fields["sources"].is_required() == (spec.kind == "ranker")


def test_the_training_params_union_tells_models_apart_by_name() -> None:
    common = {
        "asset": "x_model",
        "data": {"splits_uri": "s", "node_maps_uri": "n"},
        "output": {"users_uri": "u", "items_uri": "i", "neighbours_uri": "w", "meta_uri": "m",
                   "trained_on_uri": "t"},
    }  # fmt: skip
    params = TRAIN_PARAMS.validate_python({**common, "model": "ease", "config": {"l2": [10.0]}})
    assert type(params) is TRAIN_CONTRACTS["ease"] and params.config.l2 == (10.0,)
    with pytest.raises(ValueError, match=r"ease\.config\.l2"):
        TRAIN_PARAMS.validate_python({**common, "model": "ease", "config": {"l2": "big"}})
    with pytest.raises(ValueError, match=r"gat\.inputs\n  Field required"):
        TRAIN_PARAMS.validate_python({**common, "model": "gat", "config": {}})
