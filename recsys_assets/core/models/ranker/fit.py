"""The ranker as a registered model: ``fit(data, config, fitting)`` like every other, reading the
trained retrievers and the content from ``fitting.ranker``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys_assets.core.models.cold_start import content_scorer
from recsys_assets.core.models.ranker.candidates import Source
from recsys_assets.core.models.ranker.inputs import RankerInputs
from recsys_assets.core.models.ranker.two_stage import cold_items, fit_two_stage
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.registry import BY_NAME
from recsys_assets.core.models.scoring import Scorable
from recsys_assets.core.models.training import Fitting, Trained
from recsys_assets.core.models.training_data import COLD_START_MAX_TRAIN, TrainingData
from recsys_assets.core.ranking.features import FeatureSpace, unit_rows
from recsys_assets.settings.models import RankerConfig

if TYPE_CHECKING:
    import optuna

#: The retriever that proposes the items with few or no train interactions, by content.
COLD_SOURCE = "cold_content"


@dataclass(frozen=True)
class Retriever:
    """One candidate source: a trained model, or a content space's unit vectors (items by cosine
    to the user's weighted mean content vector, the content-only peer), with its use of order
    and the items it may propose (None: any)."""

    name: str
    order: Order
    model: Scorable | None = None
    content: str | None = None
    only: np.ndarray | None = None

    def source(self, unit: dict[str, np.ndarray], n_items: int) -> Source:
        if self.model is not None:
            return Source(self.name, self.model.scoring(n_items, self.order), self.only)
        assert self.content is not None
        vectors = unit[self.content]
        return Source(self.name, lambda history: content_scorer(vectors, history, self.order), self.only)


def retrievers(
    inputs: RankerInputs, config: RankerConfig, data: TrainingData
) -> tuple[list[Retriever], FeatureSpace]:
    """The ranker's candidate sources (``config.sources``, or every model given, then the
    content spaces and the cold items by content) and its feature space."""
    names = list(config.sources or inputs.models)
    missing = [name for name in names if name not in inputs.models]
    if missing:
        raise ValueError(f"ranker: source model(s) {missing} not given; given: {sorted(inputs.models)}")
    absent = [space for space in config.content if space not in inputs.content]
    if absent:
        raise ValueError(f"ranker: content space(s) {absent} not given; given: {sorted(inputs.content)}")
    found = [Retriever(name, inputs.models[name][1], model=inputs.models[name][0]) for name in names]
    order = Order(config.content_decay)
    found += [Retriever(f"{space}_knn", order, content=space) for space in config.content]
    if config.content:
        found.append(Retriever(COLD_SOURCE, order, content=config.content[0], only=cold_items(data)))
    unit: dict[str, np.ndarray] = {space: unit_rows(inputs.content[space]) for space in config.content}
    # The models that read content (the GAT) give cold items a score from it; the others cannot.
    from_interactions = tuple(name for name in names if name not in BY_NAME or not BY_NAME[name].content)
    space = FeatureSpace(
        tuple(r.name for r in found), unit, config.recent_items, config.recent_decay, config.window_days,
        times=inputs.timeline is not None, interaction_sources=from_interactions,
        mask_cold=COLD_START_MAX_TRAIN if config.cold_dropout > 0 else None,
    )  # fmt: skip
    return found, space


def fit(data: TrainingData, config: RankerConfig, fitting: Fitting) -> Trained:
    """Candidates from every retriever (``retrievers``), features, and a LambdaRank learnt from
    validation (``two_stage.py``)."""
    inputs = fitting.ranker
    if inputs is None:
        raise ValueError("ranker: needs the trained models and the content vectors (Fitting.ranker)")
    found, space = retrievers(inputs, config, data)
    sources = [r.source(dict(space.content), data.n_items) for r in found]
    two = fit_two_stage(data, sources, space, inputs.timeline, config, fitting.log)
    extra = {
        "train_seconds": sum(two.seconds.values()),
        "seconds": {k: round(v, 2) for k, v in two.seconds.items()},
        "sources": [source.name for source in sources],
        "recall": two.recall,
        "chosen": {**two.cv.params, "rounds": two.cv.rounds},
        "tried": two.cv.tried,
        "importance": [[name, round(gain, 5)] for name, gain in two.importance()],
        "features": space.descriptions(),
    }
    model = Scorable(split_scores={"val": two.val_scores, "test": two.test_scores})
    checkpoint = two.booster.model_to_string().encode()
    return Trained(model, config.to_dict(), checkpoint=checkpoint, extra=extra)


def search_space(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """A search trial's overrides of ``RankerConfig``: candidates per retriever and one LightGBM
    setting (the trial's K-fold then only stops it early)."""
    return {
        "per_source": trial.suggest_categorical("per_source", [25, 50, 100]),
        "grid": [{
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 200, log=True),
        }],
    }  # fmt: skip
