"""Every model the platform trains, declared once.

A ``ModelSpec`` says what a model is (its kind, its settings section, whether it serves, how
it trains, its search space), and everything else is derived from this list: the training
job's params union and its dispatch (``jobs/contracts.py``, ``jobs/train_model.py``), the
``<name>_model`` assets and their leakage checks, what ``eval_report`` evaluates, the search's
partitions, the tie-break by serving cost, and the tables of the docs. Adding a model is one
module with its ``fit`` and one entry here (ARCHITECTURE.md's recipe);
``recsys_assets_tests/models/test_registry.py`` fails on an entry that is incomplete.

This module stays light (the settings and the standard library): the Dagster side and the job
contracts import it, and a model's code is imported only when it trains or is loaded, from the
``module:function`` paths its entry names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from recsys_assets.settings.base import Section
from recsys_assets.settings.models import ModelSettings

#: ``embedding``: a user vector and item vectors scored by dot product (a sequence model's user
#: vector is its encoding of the history); ``item_item``: neighbour lists times the user's
#: weighted history; ``ranker``: orders other models' candidates.
Kind = Literal["embedding", "item_item", "ranker"]


@dataclass(frozen=True)
class ModelSpec:
    """One model: what it is and where its code lives."""

    #: The model's name: ``<name>_model`` is its asset, ``models/<name>/`` its files.
    name: str
    #: The asset's description in the UI (the files it writes are appended).
    description: str
    #: ``module:function`` of its ``fit(data, config, fitting) -> Trained`` (``training.py``).
    fit: str
    kind: Kind = "embedding"
    #: The field of ``ModelSettings`` holding its settings section; None: it has no settings.
    settings: str | None = None
    #: Trained epoch by epoch from a random start: early-stopped on validation, trained with
    #: ``models.seeds`` seeds, and its search trials report a validation curve to prune on.
    epochs: bool = False
    #: ``module:function`` of its search space (``space(trial) -> overrides of its section``);
    #: None: not tunable.
    search: str | None = None
    #: Whether it may serve (the blend, a peer for the ranker, is evaluated only).
    servable: bool = True
    #: Reads the items' content and the graph (the item features, user-item and item-item edges).
    content: bool = False
    #: Trains on the GPU profile (a Vertex AI L4 in ``gcp``) and in the GPU pool.
    gpu: bool = False
    #: Its place from the cheapest to serve (0) to the costliest: a tie on validation goes to
    #: the cheaper model.
    serving_cost: int = 0
    #: ``module:function`` loading, from its checkpoint's bytes, the encoder that turns a history
    #: into user vectors (sequence models: validation encodes the train history, test the train
    #: and validation history); None: its user vectors are fixed.
    encoder: str | None = None

    @property
    def asset(self) -> str:
        return f"{self.name}_model"

    @property
    def tunable(self) -> bool:
        return self.search is not None

    @property
    def config_class(self) -> type[Section] | None:
        """Its settings section's class."""
        if self.settings is None:
            return None
        annotation = ModelSettings.model_fields[self.settings].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, Section)):
            raise TypeError(f"models.{self.settings}: {annotation} is not a settings section")
        return annotation

    def config(self, models: ModelSettings) -> Section | None:
        """Its settings section in ``models``."""
        return None if self.settings is None else getattr(models, self.settings)

    def fit_function(self) -> Callable[..., Any]:
        return resolve(self.fit)

    def search_space(self) -> Callable[..., dict[str, Any]]:
        if self.search is None:
            raise ValueError(f"model {self.name!r} has no search space; tunable: {list(TUNABLE)}")
        return resolve(self.search)

    def encoder_loader(self) -> Callable[[bytes], Any] | None:
        return None if self.encoder is None else resolve(self.encoder)


def resolve(path: str) -> Callable[..., Any]:
    """The function at ``module:function``."""
    module, _, name = path.partition(":")
    function = getattr(importlib.import_module(module), name, None)
    if not callable(function):
        raise ValueError(f"{path}: no function {name!r} in {module}")
    return function


_TRAINING = "recsys_assets.core.models.training"

#: Every model, in the order the report lists them. Serving costs: popularity reads nothing per
#: user; the embedding models serve the same way (one user vector, one FAISS search), so the
#: cheaper to retrain comes first; the item-item models read the user's whole history and
#: multiply it with their neighbour lists on each request (EASE keeps the most neighbours).
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "popularity",
        "Most train interactions first (ties: lower item index)",
        f"{_TRAINING}:fit_popularity",
    ),
    ModelSpec(
        "itemknn",
        "ItemKNN, cosine top-k neighbours with shrinkage chosen on validation",
        f"{_TRAINING}:fit_itemknn",
        kind="item_item",
        settings="itemknn",
        search="recsys_assets.core.models.item_item:itemknn_space",
        serving_cost=5,
    ),
    ModelSpec(
        "ease",
        "EASE, closed-form linear item-item weights, lambda chosen on validation",
        f"{_TRAINING}:fit_ease",
        kind="item_item",
        settings="ease",
        search="recsys_assets.core.models.item_item:ease_space",
        serving_cost=6,
    ),
    ModelSpec(
        "mf",
        "Matrix factorisation with BPR, early-stopped on validation NDCG@20",
        f"{_TRAINING}:fit_mf",
        settings="mf",
        epochs=True,
        search="recsys_assets.core.models.mf:search_space",
        serving_cost=1,
    ),
    ModelSpec(
        "lightgcn",
        "PyG LightGCN with BPR, early-stopped on validation NDCG@20",
        f"{_TRAINING}:fit_lightgcn",
        settings="lightgcn",
        epochs=True,
        search="recsys_assets.core.models.lightgcn:search_space",
        serving_cost=2,
    ),
    ModelSpec(
        "gat",
        "GATv2 over users, items and item-item kNN edges, items fed by content",
        f"{_TRAINING}:fit_gat",
        settings="gat",
        epochs=True,
        search="recsys_assets.core.models.gat.train:search_space",
        content=True,
        gpu=True,
        serving_cost=3,
    ),
    ModelSpec(
        "sasrec",
        "SASRec, causal self-attention over each user's items in time, early-stopped on validation NDCG@20",
        "recsys_assets.core.models.sasrec:fit",
        settings="sasrec",
        epochs=True,
        search="recsys_assets.core.models.sasrec:search_space",
        serving_cost=4,
        encoder="recsys_assets.core.models.sasrec:load_encoder",
    ),
    ModelSpec(
        "blend",
        "Per-user z-scored blend of the two models best on validation, its weight chosen on validation",
        "recsys_assets.core.models.ranker.blend:fit",
        kind="ranker",
        settings="blend",
        servable=False,
        serving_cost=7,
    ),
    ModelSpec(
        "ranker",
        "Two-stage: candidates from every model and from content, ordered by a LightGBM LambdaRank "
        "learnt from validation (settings by K-fold over users)",
        "recsys_assets.core.models.ranker.fit:fit",
        kind="ranker",
        settings="ranker",
        search="recsys_assets.core.models.ranker.fit:search_space",
        content=False,
        serving_cost=8,
    ),
)

BY_NAME: dict[str, ModelSpec] = {spec.name: spec for spec in MODELS}
#: The models a ranker (or the blend) takes candidates and scores from: every model that is not one.
RETRIEVERS: tuple[ModelSpec, ...] = tuple(spec for spec in MODELS if spec.kind != "ranker")
#: The models a search can tune: the search asset's partitions.
TUNABLE: tuple[str, ...] = tuple(spec.name for spec in MODELS if spec.tunable)
#: Model names from the cheapest to serve to the costliest (``models.evaluation.serving_cost``
#: when that is empty).
SERVING_COST: tuple[str, ...] = tuple(spec.name for spec in sorted(MODELS, key=lambda s: s.serving_cost))


def spec(name: str) -> ModelSpec:
    """The model called ``name``, or an error listing the registered ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered: {list(BY_NAME)}") from None
