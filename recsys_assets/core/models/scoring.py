"""What a trained model is to evaluation and serving, whatever its kind: a scorer of every item
for a batch of users, given the train histories and a use of order (``recency.py``).

* ``embedding`` models (popularity as 1-d vectors, MF, LightGCN, the GAT) score by dot
  product of user and item vectors; the history readout adds to the user's vector; a sequence
  model's user vectors are its ``encoder``'s reading of the history it is given (SASRec);
* ``item_item`` models (EASE, ItemKNN) score the weighted history times their sparse
  neighbour lists (``item_item.py``);
* a ``ranker`` (``ranker/``) orders other models' candidates: its fit scores each split's
  candidates (validation out of fold), and the evaluation reads those scores.

``choose_order`` picks, per model, the use of order (and the model's own grid: EASE's lambda,
ItemKNN's k and shrinkage) with the best validation NDCG@20.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from recsys_assets.core.io.codecs import read_npy, read_npz
from recsys_assets.core.io.sparse import Csr, csr_from_arrays
from recsys_assets.core.io.storage import read_bytes
from recsys_assets.core.models import registry
from recsys_assets.core.models.item_item import item_item_scorer, scoring_matrix
from recsys_assets.core.models.metrics import Score, dot_scorer, sample_rows, validation_ndcg
from recsys_assets.core.models.ranker.scores import scores_from_arrays, sparse_scorer
from recsys_assets.core.models.recency import (
    ORDER_FREE,
    Choice,
    Order,
    choose,
    history_matrix,
    order_grid,
    readout,
)
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.settings.models import OrderConfig

Kind = Literal["embedding", "item_item", "ranker"]


@dataclass
class Scorable:
    """A trained model's parameters: user and item vectors, or item-item neighbour lists."""

    users: np.ndarray | None = None
    items: np.ndarray | None = None
    neighbours: sp.csr_matrix | None = None
    #: Embedding models trained on cosine scores: the readout keeps user vectors unit length.
    unit: bool = False
    #: The last column is an item bias (users hold 1 there), untouched by the readout.
    bias_column: bool = False
    #: Whether order may apply (popularity ignores the user entirely).
    personal: bool = True
    #: A sequence model's encoder: the user vectors for a history (``users`` holds the train
    #: history's); the order is its own, so no readout applies.
    encoder: Callable[[Csr], np.ndarray] | None = field(default=None, repr=False, compare=False)
    #: A ranker's scores of each split's candidates (``"val"``, ``"test"``; users x items, every
    #: candidate stored explicitly), made by its fit.
    split_scores: dict[str, sp.csr_matrix] | None = field(default=None, repr=False, compare=False)
    _scoring: sp.csr_matrix | np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def kind(self) -> Kind:
        if self.split_scores is not None:
            return "ranker"
        return "item_item" if self.neighbours is not None else "embedding"

    def split_scorers(self) -> dict[str, Score] | None:
        """A ranker's scores of each split as scorers (``evaluation.evaluate_per_user``)."""
        if self.split_scores is None:
            return None
        return {split: sparse_scorer(scores) for split, scores in self.split_scores.items()}

    def check(self, n_users: int, n_items: int, source: str) -> None:
        """Named error when the model does not fit the training data's nodes."""
        if self.split_scores is not None:
            for split, scores in self.split_scores.items():
                if scores.shape != (n_users, n_items):
                    raise ValueError(
                        f"{source}: {split} scores of shape {list(scores.shape)} for {n_users} users x "
                        f"{n_items} items; rematerialize the model"
                    )
            return
        if self.neighbours is not None:
            if self.neighbours.shape != (n_items, n_items):
                raise ValueError(
                    f"{source}: neighbour lists of shape {list(self.neighbours.shape)} for {n_items} items; "
                    "rematerialize the model"
                )
            return
        if self.users is None or self.items is None:
            raise ValueError(f"{source}: neither vectors nor neighbour lists")
        if self.users.shape[0] != n_users or self.items.shape[0] != n_items:
            raise ValueError(
                f"{source}: model has {self.users.shape[0]} users x {self.items.shape[0]} items; "
                f"the data has {n_users} x {n_items}; rematerialize the model"
            )

    def user_vectors(self, train: Csr, n_items: int, order: Order) -> np.ndarray:
        """Embedding models: the user vectors with ``order``'s readout applied."""
        if self.users is None or self.items is None:
            raise ValueError("an item-item model has no user vectors")
        if self.encoder is not None:
            return self.encoder(train)
        if order.readout == 0.0:
            return self.users
        history = history_matrix(train, n_items, order)
        if not self.bias_column:
            return readout(self.users, self.items, history, order.readout, self.unit)
        # score = u . i + b_i as [u, 1] . [i, b_i]: the readout moves u and leaves the 1.
        read = readout(self.users[:, :-1], self.items[:, :-1], history, order.readout, self.unit)
        return np.concatenate([read, self.users[:, -1:]], axis=1)

    def scorer(self, train: Csr, n_items: int, order: Order = ORDER_FREE) -> Score:
        if self.split_scores is not None:
            raise ValueError("a ranker scores the candidates of its own splits only (split_scorers)")
        if self.neighbours is not None:
            if self._scoring is None:  # made once: every use of order tried multiplies it
                self._scoring = scoring_matrix(self.neighbours)
            return item_item_scorer(history_matrix(train, n_items, order), self._scoring)
        assert self.items is not None
        return dot_scorer(self.user_vectors(train, n_items, order), self.items)

    def scoring(self, n_items: int, order: Order = ORDER_FREE) -> Callable[[Csr], Score]:
        """``scorer`` for whichever history it is given (``evaluation.evaluate``: train when
        validating, train and validation when testing)."""
        return lambda history: self.scorer(history, n_items, order)


def load_scorable(users_uri: str, items_uri: str, neighbours_uri: str, meta: dict[str, Any]) -> Scorable:
    """A trained model from its files, as its ``meta.json`` describes it (a sequence model's
    encoder from its checkpoint, by its registered loader)."""
    if meta.get("kind") == "item_item":
        return Scorable(neighbours=csr_from_arrays(read_npz(neighbours_uri), neighbours_uri))
    if meta.get("kind") == "ranker":
        return Scorable(split_scores=scores_from_arrays(read_npz(meta["scores_uri"]), meta["scores_uri"]))
    encoder = None
    if meta.get("encoder"):
        loader = registry.spec(meta["model"]).encoder_loader()
        if loader is None:
            raise ValueError(f"{meta['model']}: its meta names an encoder but its registry entry has none")
        encoder = loader(read_bytes(meta["checkpoint_uri"]))
    return Scorable(
        read_npy(users_uri),
        read_npy(items_uri),
        unit=bool(meta.get("unit", False)),
        bias_column=bool(meta.get("bias_column", False)),
        personal=bool(meta.get("personal", True)),
        encoder=encoder,
    )


def grid_for(model: Scorable, config: OrderConfig) -> list[Order]:
    if not model.personal or model.encoder is not None:
        return [ORDER_FREE]
    readouts = config.readout if model.kind == "embedding" else (0.0,)
    return order_grid(config.decays, config.floors, readouts)


def choose_order(
    candidates: Sequence[tuple[dict[str, float], Scorable]],
    data: TrainingData,
    config: OrderConfig,
    progress: Callable[[str], None] | None = None,
    extra: Sequence[Order] = (),
) -> tuple[Scorable, Choice]:
    """The candidate and use of order with the best validation NDCG@20 (on a fixed sample of
    ``config.val_users`` validation users), and the table of every combination tried;
    ``extra``: uses of order tried besides the grid (the one a model trained with)."""
    if not candidates:
        raise ValueError("no fitted candidate to choose from")
    val = sample_rows(data.val, config.val_users, config.seed)

    def validate(index: int, order: Order) -> float:
        score = candidates[index][1].scorer(data.train, data.n_items, order)
        return validation_ndcg(score, data.train, val, data.n_items)

    grid = list(dict.fromkeys([*grid_for(candidates[0][1], config), *extra]))
    choice = choose([params for params, _ in candidates], grid, validate, progress)
    chosen = next(model for params, model in candidates if params == choice.best.params)
    return chosen, choice
