"""The ranker as the API runs it (``core/ranking/online.py``, from the files a serving version
holds) against the ranker as training and evaluation run it: the same candidates, the same
features and the same scores for every validation user, through vectors, neighbour lists,
content and the cold-items source."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.ranker.fit import retrievers
from recsys_assets.core.models.ranker.two_stage import split_candidates
from recsys_assets.core.ranking.online import load_online_ranker
from recsys_assets_tests.models.ranker_data import CONFIG, trained_ranker


def test_the_api_ranks_each_user_as_the_ranker_was_trained_to() -> None:
    data, inputs, files = trained_ranker(0)
    online = load_online_ranker(files, Csr(data.train.indptr, data.train.indices), data.n_users, "v1")
    assert [s.name for s in online.sources] == ["taste", "noise", "knn", "fused_knn", "cold_content"]
    assert {s.name: s.neighbours is not None for s in online.sources}["knn"]
    # Served, now is the day of the last known interaction, for everyone.
    assert inputs.timeline is not None
    assert np.all(online.known is not None and online.known.now == np.nanmax(inputs.timeline.val.item_days))

    # Offline, validation reads the train history at each user's first validation time: so does
    # the online ranker given the same now.
    found, space = retrievers(inputs, CONFIG, data)
    offline = split_candidates([r.source(dict(space.content), data.n_items) for r in found], space, data,
                               "val", CONFIG.per_source, inputs.timeline)  # fmt: skip
    online.known = inputs.timeline.val
    booster_scores = online.booster.predict(offline.x)
    checked = 0
    for user in np.unique(offline.users):
        rows = np.flatnonzero(offline.users == user)
        ranked = online.rank(int(user))
        assert sorted(ranked.items.tolist()) == sorted(offline.items[rows].tolist())
        by_item = {int(i): r for i, r in zip(offline.items[rows], rows, strict=True)}
        order = [by_item[int(i)] for i in ranked.items]
        np.testing.assert_allclose(ranked.x, offline.x[order], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ranked.scores, booster_scores[order], rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(ranked.scores) <= 0)
        for item, sources in zip(ranked.items, ranked.sources(range(len(ranked.items))), strict=True):
            row = by_item[int(item)]
            assert sources == [s for s in offline.proposed if offline.proposed[s][row]]
        checked += 1
    assert checked == len(np.unique(offline.users)) > 100


def test_the_api_excludes_what_the_request_excludes_and_explains_its_order() -> None:
    data, _, files = trained_ranker(1)
    online = load_online_ranker(files, Csr(data.train.indptr, data.train.indices), data.n_users, "v1")
    first = online.rank(7)
    assert not set(first.items.tolist()) & set(data.train.row(7).tolist())
    dropped = {int(first.items[0]), int(first.items[1])}
    again = online.rank(7, dropped)
    assert not dropped & set(again.items.tolist())
    reasons = online.explain(first.x[:5])
    assert len(reasons) == 5
    names = set(online.space.names)
    for reason in reasons:
        assert reason
        assert all(name in names and contribution > 0 for name, contribution in reason)


def test_a_version_whose_ranker_files_disagree_is_refused_with_the_file_named() -> None:
    data, _, files = trained_ranker(0)
    history = Csr(data.train.indptr, data.train.indices)
    with pytest.raises(ValueError, match=r"v1: ranker.npz: taste's vectors do not fit 119 users x 40 items"):
        load_online_ranker(files, Csr(data.train.indptr[:-1], data.train.indices), data.n_users - 1, "v1")
    with pytest.raises(ValueError, match=r"v1: ranker.txt is not a LightGBM model"):
        load_online_ranker({**files, "ranker.txt": b"not a model"}, history, data.n_users, "v1")
