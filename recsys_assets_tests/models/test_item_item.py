"""The item-item peers: ItemKNN as RecBole computes it, EASE's closed form, pruning to
neighbour lists, the catalogue cap, and the scorer over weighted histories."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_assets.core.io.sparse import Csr, csr_arrays, csr_from_arrays
from recsys_assets.core.models.item_item import ease, item_item_scorer, itemknn
from recsys_assets.core.models.recency import ORDER_FREE, history_matrix
from recsys_assets_tests.models.taste import dense


def _random_train(n_users: int, n_items: int, density: float, seed: int) -> Csr:
    rng = np.random.default_rng(seed)
    rows, items = np.nonzero(rng.random((n_users, n_items)) < density)
    return Csr.from_pairs(rows, items, n_users)


def test_itemknn_keeps_each_items_k_most_similar_by_shrunk_cosine() -> None:
    train = _random_train(60, 15, 0.3, seed=0)
    x = dense(train, 60, 15).astype(float)
    fit = itemknn(train, 15, neighbours=(3, 5), shrinks=(0.0, 4.0))
    assert [p for p, _ in fit.candidates] == [
        {"neighbours": 3.0, "shrink": 0.0}, {"neighbours": 5.0, "shrink": 0.0},
        {"neighbours": 3.0, "shrink": 4.0}, {"neighbours": 5.0, "shrink": 4.0},
    ]  # fmt: skip
    norms = np.sqrt(x.sum(0))
    for params, w in fit.candidates:
        k, shrink = int(params["neighbours"]), params["shrink"]
        similarity = (x.T @ x) / (np.outer(norms, norms) + shrink + 1e-6)
        np.fill_diagonal(similarity, 0.0)
        got = w.toarray()
        for j in range(15):
            # Column j holds the k largest similarities to j (the neighbours voting for it).
            kept = np.sort(got[:, j][got[:, j] != 0])[::-1]
            np.testing.assert_allclose(kept, np.sort(similarity[:, j])[::-1][:k], rtol=1e-5)
            # ... and each kept weight is that neighbour's own similarity.
            np.testing.assert_allclose(got[:, j][got[:, j] != 0], similarity[:, j][got[:, j] != 0], rtol=1e-5)


def test_itemknn_leaves_items_without_interactions_out() -> None:
    train = Csr.from_pairs(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), 2)
    (_, w), *_ = itemknn(train, 5, neighbours=(10,), shrinks=(0.0,)).candidates
    assert w.shape == (5, 5) and w.nnz == 2
    assert w[0, 1] == pytest.approx(1.0, abs=1e-5) and w[1, 0] == pytest.approx(1.0, abs=1e-5)


def test_ease_matches_its_closed_form_and_prunes_by_magnitude() -> None:
    train = _random_train(80, 12, 0.35, seed=1)
    x = dense(train, 80, 12).astype(float)
    exact = ease(train, 12, l2=(5.0, 50.0), max_items=100, neighbours=0)
    assert [p for p, _ in exact.candidates] == [{"l2": 5.0}, {"l2": 50.0}]
    for params, w in exact.candidates:
        p = np.linalg.inv(x.T @ x + params["l2"] * np.eye(12))
        b = -p / np.diag(p)[None, :]
        np.fill_diagonal(b, 0.0)
        np.testing.assert_allclose(w.toarray(), b, rtol=1e-4, atol=1e-6)
    # Pruned to 4 weights per row: the 4 largest in magnitude, negative ones included.
    (_, pruned), *_ = ease(train, 12, l2=(5.0,), max_items=100, neighbours=4).candidates
    full = exact.candidates[0][1].toarray()
    assert (np.diff(pruned.indptr) == 4).all()
    for i in range(12):
        top = np.sort(np.abs(full[i]))[::-1][:4]
        np.testing.assert_allclose(np.sort(np.abs(pruned.toarray()[i][pruned.toarray()[i] != 0]))[::-1], top,
                                   rtol=1e-5)  # fmt: skip
    assert (pruned.toarray() < 0).any()


def test_ease_above_its_catalogue_cap_models_the_most_interacted_items_and_says_so() -> None:
    # Item i has 10 - i interactions: items 0-2 are the three most interacted.
    rows = np.concatenate([np.arange(10 - i) for i in range(8)])
    items = np.concatenate([np.full(10 - i, i) for i in range(8)])
    fit = ease(Csr.from_pairs(rows, items, 10), 8, l2=(1.0,), max_items=3, neighbours=0)
    w = fit.candidates[0][1]
    assert set(np.unique(w.nonzero()[0])) <= {0, 1, 2} and set(np.unique(w.nonzero()[1])) <= {0, 1, 2}
    assert fit.notes["items_modelled"] == 3
    assert fit.notes["note"] == (
        "8 items have train interactions, above ease.max_items 3: EASE models the 3 most-interacted; "
        "the others score 0"
    )


def test_item_item_scorer_sums_the_weighted_votes_of_the_history() -> None:
    train = Csr.from_pairs(np.array([0, 0, 1]), np.array([0, 1, 2]), 2, values=np.array([0.0, 1.0, 1.0]))
    w = sp.csr_matrix(np.array([[0, 1, 2, 0], [3, 0, 0, 4], [0, 0, 0, 5], [0, 0, 0, 0]], dtype=np.float32))
    scores = item_item_scorer(history_matrix(train, 4, ORDER_FREE), w)(np.array([0, 1]))
    np.testing.assert_allclose(scores, [[3, 1, 2, 4], [0, 0, 0, 5]])


def test_neighbour_arrays_round_trip_and_refuse_inconsistent_ones() -> None:
    w = sp.csr_matrix(np.array([[0, 1.5], [2.5, 0]], dtype=np.float32))
    back = csr_from_arrays(csr_arrays(w), "n.npz")
    np.testing.assert_array_equal(back.toarray(), w.toarray())
    arrays = csr_arrays(w)
    with pytest.raises(ValueError, match=r"n.npz: missing array\(s\) \['shape'\]"):
        csr_from_arrays({k: v for k, v in arrays.items() if k != "shape"}, "n.npz")
    with pytest.raises(ValueError, match=r"n.npz: column indices outside 0..1"):
        csr_from_arrays({**arrays, "indices": np.array([0, 7], dtype=np.int32)}, "n.npz")
    with pytest.raises(ValueError, match=r"n.npz: non-finite values"):
        csr_from_arrays({**arrays, "data": np.array([np.nan, 1], dtype=np.float32)}, "n.npz")
