"""LightGBM LambdaRank over the candidates, its settings chosen by K-fold over users.

The ranker learns from validation: each user's candidates (from retrievers fitted on train)
labelled by whether they are among the user's validation items. Users are split into ``folds``
(seeded); for each setting tried, a model per fold trains on the other folds' users and stops
early on its own fold's NDCG@20 over the candidates. The setting with the best mean fold score
wins; each user's out-of-fold score (from the model that never saw them) is the ranker's
honest validation score, and the final model trains on every user for the mean best number of
rounds. Test is never read here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np

from recsys_assets.settings.models import RankerConfig

#: Users without a positive among their candidates teach LambdaRank nothing (no pair to order).
MIN_POSITIVES = 1


@dataclass
class CrossValidated:
    """The chosen setting, the rounds the final model trains for, every setting's mean fold
    score, and each row's out-of-fold score."""

    params: dict[str, Any]
    rounds: int
    tried: list[dict[str, Any]]
    out_of_fold: np.ndarray
    booster: lgb.Booster | None = field(default=None, repr=False)


def base_params(threads: int, seed: int) -> dict[str, Any]:
    return {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [20],
        "lambdarank_truncation_level": 40,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "num_threads": threads,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


def _dataset(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, rows: np.ndarray, names: Sequence[str]
) -> lgb.Dataset:
    """The rows of the users in ``rows`` (a row mask), grouped by user (rows are user-contiguous)."""
    g = groups[rows]
    sizes = np.diff(np.flatnonzero(np.r_[True, g[1:] != g[:-1], True]))
    return lgb.Dataset(x[rows], y[rows], group=sizes, feature_name=list(names), free_raw_data=False)


def _learning_users(y: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    positives = np.bincount(groups, weights=y, minlength=n_groups)
    return positives >= MIN_POSITIVES


def cross_validate(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    names: Sequence[str],
    config: RankerConfig,
    log: Callable[[str], None] | None = None,
    x_predict: np.ndarray | None = None,
) -> CrossValidated:
    """K-fold over users (``groups``: each row's user, rows user-contiguous) for each setting of
    ``config.grid``; the final booster on every user with the chosen setting. ``x_predict``: the
    rows the out-of-fold scores are for, when training reads altered ones (cold dropout)."""
    predict_x = x if x_predict is None else x_predict
    folds, seed, max_rounds, patience = config.folds, config.seed, config.max_rounds, config.patience
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    learning = _learning_users(y, groups, n_groups)
    if learning.sum() < folds:
        raise ValueError(
            f"ranker: {int(learning.sum())} users have a validation item among their candidates; "
            f"K-fold needs at least {folds}"
        )
    fold_of = np.random.default_rng(seed).permutation(n_groups) % folds
    row_fold = fold_of[groups]
    row_learning = learning[groups]
    base = base_params(config.threads or os.cpu_count() or 1, seed)
    tried: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any], int, np.ndarray] | None = None
    for setting in config.grid:
        params = {**base, **setting}
        scores, rounds = [], []
        oof = np.zeros(len(y), dtype=np.float64)
        for f in range(folds):
            fit_rows = (row_fold != f) & row_learning
            held = row_fold == f
            train_set = _dataset(x, y, groups, fit_rows, names)
            valid_set = _dataset(x, y, groups, held & row_learning, names)
            booster = lgb.train(
                params,
                train_set,
                num_boost_round=max_rounds,
                valid_sets=[valid_set],
                callbacks=[lgb.early_stopping(patience, verbose=False)],
            )
            scores.append(float(booster.best_score["valid_0"]["ndcg@20"]))
            rounds.append(int(booster.best_iteration))
            oof[held] = booster.predict(predict_x[held], num_iteration=booster.best_iteration)
        mean, mean_rounds = float(np.mean(scores)), round(float(np.mean(rounds)))
        tried.append({**setting, "fold_ndcg@20": round(mean, 5), "rounds": mean_rounds})
        if log:
            log(f"ranker {setting}: fold NDCG@20 over candidates {mean:.4f}, {mean_rounds} rounds")
        if best is None or mean > best[0]:
            best = (mean, setting, mean_rounds, oof)
    assert best is not None
    _, setting, rounds_chosen, oof = best
    final = lgb.train(
        {**base, **setting},
        _dataset(x, y, groups, row_learning, names),
        num_boost_round=max(rounds_chosen, 1),
    )
    return CrossValidated(dict(setting), max(rounds_chosen, 1), tried, oof, final)
