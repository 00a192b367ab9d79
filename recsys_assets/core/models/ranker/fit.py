"""The ranker as a registered model: ``fit(data, config, fitting)`` like every other, reading the
trained retrievers and the content from ``fitting.ranker``."""

from __future__ import annotations

import numpy as np

from recsys_assets.core.models.ranker.two_stage import cold_items, content_source, fit_two_stage, model_source
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.registry import BY_NAME
from recsys_assets.core.models.scoring import Scorable
from recsys_assets.core.models.training import Fitting, Trained
from recsys_assets.core.models.training_data import COLD_START_MAX_TRAIN, TrainingData
from recsys_assets.core.ranking.features import FeatureSpace, unit_rows
from recsys_assets.settings.models import RankerConfig

#: The retriever that proposes the items with few or no train interactions, by content.
COLD_SOURCE = "cold_content"


def fit(data: TrainingData, config: RankerConfig, fitting: Fitting) -> Trained:
    """Candidates from every retriever (``config.sources``, or every model given) and content
    space, features, and a LambdaRank learnt from validation (``two_stage.py``)."""
    inputs = fitting.ranker
    if inputs is None:
        raise ValueError("ranker: needs the trained models and the content vectors (Fitting.ranker)")
    names = list(config.sources or inputs.models)
    missing = [name for name in names if name not in inputs.models]
    if missing:
        raise ValueError(f"ranker: source model(s) {missing} not given; given: {sorted(inputs.models)}")
    sources = [model_source(name, *inputs.models[name], data.n_items) for name in names]
    absent = [space for space in config.content if space not in inputs.content]
    if absent:
        raise ValueError(f"ranker: content space(s) {absent} not given; given: {sorted(inputs.content)}")
    unit: dict[str, np.ndarray] = {space: unit_rows(inputs.content[space]) for space in config.content}
    order = Order(config.content_decay)
    sources += [content_source(f"{space}_knn", unit[space], order) for space in config.content]
    if config.content:
        sources.append(content_source(COLD_SOURCE, unit[config.content[0]], order, cold_items(data)))
    # The models that read content (the GAT) give cold items a score from it; the others cannot.
    from_interactions = tuple(name for name in names if name not in BY_NAME or not BY_NAME[name].content)
    space = FeatureSpace(
        tuple(source.name for source in sources), unit, config.recent_items, config.recent_decay,
        config.window_days, times=inputs.timeline is not None, interaction_sources=from_interactions,
        mask_cold=COLD_START_MAX_TRAIN if config.cold_dropout > 0 else None,
    )  # fmt: skip
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
