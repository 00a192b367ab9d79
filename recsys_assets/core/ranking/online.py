"""Ranking one user online, from a served version: every retriever's scores of the catalogue,
the candidates and their features (``candidates.py``, ``features.py``: the code training and
evaluation use), and the LightGBM ranker's order of them.

A served retriever is either vectors (``users`` x ``items``, the user's already read from their
history as the model reads it: GAT and SASRec user vectors, the content sources' weighted mean
of the history's content vectors, popularity's counts) or neighbour lists with the weights the
retriever's use of order gives each history item (EASE, ItemKNN). The arrays are written at
export (``core/models/ranker/export.py``) from the same history the version serves, so the
API needs neither torch nor the models' code.

The time features read the interactions the version knows, at the version's ``now``: the day
of the last of them (requests have no other clock the history shares).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_assets.core.io.sparse import Csr, csr_from_arrays, dense_enough
from recsys_assets.core.ranking.candidates import CandidateBatch, candidate_batch
from recsys_assets.core.ranking.features import FeatureSpace, features
from recsys_assets.core.ranking.known import Known

#: The ranker's files in a serving version: its settings and feature space, its arrays, the
#: LightGBM model as text.
RANKER_FILES = ("ranker.json", "ranker.npz", "ranker.txt")


@dataclass(frozen=True)
class OnlineSource:
    """One retriever as served: vectors, or neighbour lists and history weights."""

    name: str
    #: What its scores are made of (the arrays' names): sources that share them score once (a
    #: content space's kNN and the cold items' source).
    key: str
    users: np.ndarray | None = None
    items: np.ndarray | None = None
    neighbours: sp.csr_matrix | np.ndarray | None = None
    #: One weight per history entry (``history.indices``), the retriever's use of order.
    weights: np.ndarray | None = None
    #: The items it may propose (None: any).
    only: np.ndarray | None = None

    def score(self, user: int, history: Csr, n_items: int) -> np.ndarray:
        """Its score of every item for ``user``, as the trained model scores them."""
        if self.neighbours is not None:
            assert self.weights is not None
            span = slice(history.indptr[user], history.indptr[user + 1])
            rows = history.indices[span]
            if isinstance(self.neighbours, np.ndarray):  # dense enough: the history's rows, weighted
                return np.asarray(self.weights[span] @ self.neighbours[rows], dtype=np.float32)
            row = sp.csr_matrix(
                (self.weights[span], rows, np.array([0, len(rows)])), shape=(1, n_items), dtype=np.float32
            )
            return np.asarray((row @ self.neighbours).todense(), dtype=np.float32).ravel()
        assert self.users is not None
        assert self.items is not None
        return np.asarray(self.items @ self.users[user], dtype=np.float32)


@dataclass
class TwoStage:
    """A user's ranked candidates: items best first, the ranker's scores, which source proposed
    each (``proposed``: candidates x ``names``), and the features behind them (explanations)."""

    items: np.ndarray
    scores: np.ndarray
    names: list[str]
    proposed: np.ndarray
    x: np.ndarray

    def sources(self, rows: Iterable[int]) -> list[list[str]]:
        """The sources that proposed each of the given candidates (rows of the ranking)."""
        return [[n for n, p in zip(self.names, self.proposed[r], strict=True) if p] for r in rows]


@dataclass
class OnlineRanker:
    space: FeatureSpace
    sources: list[OnlineSource]
    per_source: int
    history: Csr
    item_counts: np.ndarray
    known: Known | None
    booster: Any  # lightgbm.Booster

    @property
    def n_items(self) -> int:
        return len(self.item_counts)

    def candidates(self, user: int, excluded: Iterable[int] = ()) -> CandidateBatch:
        """The user's candidates: each source's top ``per_source`` items outside their history
        and ``excluded``."""
        n = self.n_items
        mask = np.zeros((1, n), dtype=bool)
        mask[0, self.history.row(user)] = True
        mask[0, list(excluded)] = True
        scored: dict[str, np.ndarray] = {}
        full = {}
        for s in self.sources:
            if s.key not in scored:
                scored[s.key] = s.score(user, self.history, n)[None, :]
            full[s.name] = scored[s.key]
        only = {s.name: s.only for s in self.sources}
        return candidate_batch(np.array([user]), full, mask, only, self.per_source)

    def rank(self, user: int, excluded: Iterable[int] = ()) -> TwoStage:
        """Every candidate of ``user``, ordered by the ranker (ties by item index)."""
        batch = self.candidates(user, excluded)
        x = features(self.space, batch, self.history, self.item_counts, self.known)
        scores = (
            np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float32) if len(x) else np.zeros(0)
        )
        order = np.lexsort((batch.items, -scores))
        names = [s.name for s in self.sources]
        proposed = np.column_stack([batch.proposed_by(name)[order] for name in names])
        return TwoStage(batch.items[order], scores[order], names, proposed, x[order])

    def explain(self, x: np.ndarray, top: int = 3) -> list[list[tuple[str, float]]]:
        """Per row of features, the ``top`` features that raised its score most (their
        contributions to the ranker's score, SHAP values by LightGBM's TreeSHAP)."""
        if not len(x):
            return []
        contrib = np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=1))[:, :-1]
        names = self.space.names
        out = []
        for row in contrib:
            best = np.argsort(-row, kind="stable")[:top]
            out.append([(names[j], round(float(row[j]), 4)) for j in best if row[j] > 0])
        return out


def load_online_ranker(data: dict[str, bytes], history: Csr, n_users: int, source: str) -> OnlineRanker:
    """The ranker from a version's ``RANKER_FILES`` and its train ``history`` (ids.json's
    nodes); a ``ValueError`` naming the file and the problem when they do not agree."""
    import lightgbm as lgb  # only versions that serve a ranker need it

    settings = json.loads(data["ranker.json"])
    with np.load(io.BytesIO(data["ranker.npz"]), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    n_items = int(settings["n_items"])
    problems = []
    place = arrays.get("history_place")
    if place is None or len(place) != len(history.indices):
        problems.append(
            f"ranker.npz: history_place does not match history.npz's {len(history.indices)} entries"
        )
    history = Csr(history.indptr, history.indices, place)
    sources = []
    for spec in settings["sources"]:
        name = spec["name"]
        only = arrays.get(f"{name}.only")
        if spec["kind"] == "neighbours":
            neighbours = csr_from_arrays(
                {k.removeprefix(f"{name}.neighbours."): v for k, v in arrays.items()
                 if k.startswith(f"{name}.neighbours.")}, f"{source}: ranker.npz {name}"
            )  # fmt: skip
            weights = arrays.get(f"{name}.weights")
            if (
                neighbours.shape != (n_items, n_items)
                or weights is None
                or len(weights) != len(history.indices)
            ):
                problems.append(f"ranker.npz: {name}'s neighbour lists or history weights do not fit")
            # Multiplied as the evaluation multiplies them: dense when dense enough.
            scoring = neighbours.toarray() if dense_enough(neighbours) else neighbours
            sources.append(OnlineSource(name, name, neighbours=scoring, weights=weights, only=only))
        else:
            users_key, items_key = spec.get("users", f"{name}.users"), spec.get("items", f"{name}.items")
            users, items = arrays.get(users_key), arrays.get(items_key)
            if users is None or items is None or users.shape[0] != n_users or items.shape[0] != n_items:
                problems.append(f"ranker.npz: {name}'s vectors do not fit {n_users} users x {n_items} items")
            sources.append(
                OnlineSource(name, f"{users_key} x {items_key}", users=users, items=items, only=only)
            )
    try:
        space = FeatureSpace.from_settings(
            settings["space"],
            {k.removeprefix("content."): v for k, v in arrays.items() if k.startswith("content.")},
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"{source}: ranker.json's feature space does not read: {error!r}") from error
    if [s.name for s in sources] != list(space.sources):
        problems.append(f"ranker.json: sources {[s.name for s in sources]} vs feature space {space.sources}")
    known = None
    if space.times:
        known = Known(
            arrays["known.item_indptr"], arrays["known.item_days"], arrays["known.user_last"],
            np.full(n_users, float(settings["now_day"])),
        )  # fmt: skip
    try:
        booster = lgb.Booster(model_str=data["ranker.txt"].decode())
    except lgb.basic.LightGBMError as error:
        raise ValueError(f"{source}: ranker.txt is not a LightGBM model: {error}") from error
    if booster.feature_name() != space.names:
        problems.append(f"ranker.txt's features {booster.num_feature()} differ from the feature space's")
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))
    item_counts = np.bincount(history.indices, minlength=n_items).astype(np.float32)
    return OnlineRanker(space, sources, int(settings["per_source"]), history, item_counts, known, booster)
