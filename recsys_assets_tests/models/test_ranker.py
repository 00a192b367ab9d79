"""The two-stage ranker's parts on data small enough to check by hand: candidates (union, ranks,
exclusions, restricted sources), the timeline's counts, the features, and the ranker learnt
from validation alone (changing test changes nothing it learnt)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models import training
from recsys_assets.core.models.evaluation import evaluate_per_user
from recsys_assets.core.models.ranker.candidates import Source, candidates
from recsys_assets.core.models.ranker.inputs import RankerInputs
from recsys_assets.core.models.ranker.lambdarank import cross_validate
from recsys_assets.core.models.ranker.scores import NOT_A_CANDIDATE, scores_arrays, scores_from_arrays
from recsys_assets.core.models.ranker.timeline import timeline
from recsys_assets.core.models.recency import ORDER_FREE
from recsys_assets.core.models.scoring import Scorable
from recsys_assets.core.ranking.features import FeatureSpace, content_features, latest_items, unit_rows
from recsys_assets.core.ranking.known import Known
from recsys_assets.settings.models import BlendConfig, EvaluationConfig, RankerConfig
from recsys_assets_tests.models.ranker_data import ranker_inputs, taste_data


def fixed_source(name: str, scores: np.ndarray, only: np.ndarray | None = None) -> Source:
    return Source(name, lambda _history: lambda rows: scores[rows], only)


def test_candidates_are_the_union_of_each_sources_top_n_without_the_users_own_items() -> None:
    # 2 users x 6 items; user 0 has item 0, user 1 has item 5.
    a = np.array([[9, 8, 7, 1, 0, 2], [0, 1, 2, 3, 4, 5]], dtype=np.float32)
    b = np.array([[0, 1, 2, 3, 9, 8], [5, 4, 3, 2, 1, 0]], dtype=np.float32)
    history = Csr.from_pairs(np.array([0, 1]), np.array([0, 5]), 2)
    cold = np.array([False, False, False, True, False, False])
    sources = [fixed_source("a", a), fixed_source("b", b), fixed_source("cold", b, only=cold)]
    (batch,) = candidates(sources, history, np.array([0, 1]), [history], per_source=2, n_items=6)
    found = {(int(u), int(i)) for u, i in zip(batch.user_nodes, batch.items, strict=True)}
    # a: user 0 -> 1, 2 (0 is theirs); user 1 -> 4, 3 (5 is theirs). b: user 0 -> 4, 5; user 1 -> 0, 1.
    # cold may only propose item 3 (one each).
    assert found == {(0, 1), (0, 2), (0, 4), (0, 5), (0, 3), (1, 4), (1, 3), (1, 0), (1, 1)}
    rows = {(int(u), int(i)): k for k, (u, i) in enumerate(zip(batch.user_nodes, batch.items, strict=True))}
    assert batch.ranks["a"][rows[(0, 1)]] == 1 and batch.ranks["a"][rows[(0, 2)]] == 2
    assert np.isnan(batch.ranks["a"][rows[(0, 4)]])  # b proposed it, a did not
    assert batch.scores["a"][rows[(0, 4)]] == 0.0  # but a's score is there all the same
    assert batch.ranks["cold"][rows[(0, 3)]] == 1 and batch.ranks["cold"][rows[(1, 3)]] == 1
    # z: a's score standardised over user 0's eligible items (1..5).
    eligible = a[0, 1:]
    expected = (8 - eligible.mean()) / eligible.std()
    assert batch.z["a"][rows[(0, 1)]] == pytest.approx(expected, rel=1e-5)
    assert batch.proposed_by("b").sum() == 4


def test_a_source_that_scores_the_wrong_shape_is_named() -> None:
    bad = Source("broken", lambda _h: lambda rows: np.zeros((len(rows), 3)))
    history = Csr.from_pairs(np.array([0]), np.array([0]), 1)
    with pytest.raises(ValueError, match=r"candidate source broken: scored \[1, 3\] for 1 users x 5 items"):
        next(candidates([bad], history, np.array([0]), [history], 2, 5))


def test_the_timeline_counts_each_items_interactions_in_a_window_before_now() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 5, 200), rng.integers(0, 7, 200)
    days = rng.uniform(0, 100, 200)
    now = rng.uniform(20, 120, 5)
    known = Known.of(users, items, days, now, 7)
    cand_items = rng.integers(0, 7, 50)
    start, end = rng.uniform(0, 80, 50), rng.uniform(40, 120, 50)
    counted = known.item_count_between(cand_items, start, end)
    brute = [
        ((items == i) & (days >= s) & (days < e)).sum()
        for i, s, e in zip(cand_items, start, end, strict=True)
    ]
    assert counted.tolist() == brute
    assert known.item_first(np.array([3])) == pytest.approx(days[items == 3].min())
    assert known.user_last[2] == pytest.approx(days[users == 2].max())


def test_a_users_now_is_their_first_held_out_interaction_and_test_knows_validation() -> None:
    ts = pd.to_datetime(["2020-01-01", "2020-01-05", "2020-01-09", "2020-01-03", "2020-01-04"], utc=True)
    users, items = np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 0, 1])
    split = np.array(["train", "val", "test", "train", "val"])
    line = timeline(users, items, split, pd.Series(ts), 2, 3)
    day = 86_400 * 10**9
    assert line.val.now[0] * day == pytest.approx(ts[1].value) and line.test.now[0] * day == pytest.approx(
        ts[2].value
    )
    assert np.isnan(line.test.now[1])  # user 1 has no test row
    # Item 1 is known on test (user 1's and user 0's validation rows) but not on validation.
    assert line.val.item_first(np.array([1])).tolist() == [pytest.approx(np.nan, nan_ok=True)]
    assert line.test.item_first(np.array([1]))[0] * day == pytest.approx(ts[4].value)


def test_features_read_the_users_latest_items_and_their_content() -> None:
    # User 0's history in time: items 2, 0, 1 (positions 0, 0.5, 1).
    history = Csr.from_pairs(np.array([0, 0, 0]), np.array([0, 1, 2]), 1, np.array([0.5, 1.0, 0.0]))
    assert latest_items(history, np.array([0]), 2).tolist() == [[1, 0]]
    assert latest_items(history, np.array([0]), 4).tolist() == [[1, 0, 2, -1]]
    vectors = unit_rows(np.array([[1, 0], [0, 1], [1, 1], [1, 0]], dtype=np.float32))
    scores = np.zeros((1, 4), dtype=np.float32)
    scores[0, 3] = 1
    (batch,) = candidates([fixed_source("s", scores)], history, np.array([0]), [history], 1, 4)
    assert batch.items.tolist() == [3]
    best, mean, recent = content_features(vectors, latest_items(history, np.array([0]), 3), batch, decay=1.0)
    # Item 3 = (1, 0): cosine 0 to item 1, 1 to item 0, 0.707 to item 2.
    assert best[0] == pytest.approx(1.0) and mean[0] == pytest.approx((0 + 1 + 0.70711) / 3, rel=1e-4)
    weights = np.exp(-np.arange(3.0))
    assert recent[0] == pytest.approx((weights * [0, 1, 0.70711]).sum() / weights.sum(), rel=1e-4)
    space = FeatureSpace(("s",), {"txt": vectors}, times=False)
    assert len(space.names) == len(set(space.names)) == len(space.descriptions())
    assert space.names[:3] == ["s_score", "s_z", "s_rank"] and "txt_max" in space.names


def test_lambdarank_learns_the_informative_feature_and_its_folds_hold_users_out() -> None:
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(60), 20)
    signal = rng.normal(size=len(users))
    noise = rng.normal(size=len(users))
    labels = (signal + 0.3 * rng.normal(size=len(users)) > 1.0).astype(np.float32)
    x = np.column_stack([noise, signal]).astype(np.float32)
    grid = [{"learning_rate": 0.1, "num_leaves": 4, "min_data_in_leaf": 5}]
    config = RankerConfig(grid=grid, folds=3, max_rounds=50, patience=10, threads=1, seed=0)
    cv = cross_validate(x, labels, users, ["noise", "signal"], config)
    assert cv.booster is not None and cv.tried[0]["fold_ndcg@20"] > 0.8
    gains = dict(zip(["noise", "signal"], cv.booster.feature_importance("gain"), strict=True))
    assert gains["signal"] > 5 * gains["noise"]
    # Out of fold: every row scored, by a model that did not see it (scores differ from the final model's).
    assert np.isfinite(cv.out_of_fold).all() and not np.allclose(cv.out_of_fold, cv.booster.predict(x))
    with pytest.raises(ValueError, match=r"ranker: 0 users have a validation item among their candidates"):
        cross_validate(x, np.zeros_like(labels), users, ["noise", "signal"], config)


def test_split_scores_round_trip_and_non_candidates_rank_below_candidates() -> None:
    import scipy.sparse as sp

    val = sp.csr_matrix(
        (np.array([0.0, -2.0], np.float32), (np.array([0, 1]), np.array([1, 2]))), shape=(2, 3)
    )
    model = Scorable(split_scores={"val": val, "test": val})
    back = scores_from_arrays(scores_arrays(model.split_scores or {}), "scores.npz")
    assert (back["val"] != val).nnz == 0 and back["test"].nnz == 2  # an explicit 0.0 survives
    dense = (model.split_scorers() or {})["val"](np.array([0, 1]))
    assert dense.tolist() == [
        [NOT_A_CANDIDATE, 0.0, NOT_A_CANDIDATE],
        [NOT_A_CANDIDATE, NOT_A_CANDIDATE, -2.0],
    ]
    assert model.kind == "ranker"
    with pytest.raises(ValueError, match="a ranker scores the candidates of its own splits only"):
        model.scorer(Csr.from_pairs(np.array([0]), np.array([0]), 2), 3)


def test_the_ranker_names_what_it_was_not_given() -> None:
    data = taste_data(0)
    with pytest.raises(
        ValueError, match=r"ranker: content space\(s\) \['txt'\] not given; given: \['fused'\]"
    ):
        training.train("ranker", data, RankerConfig(), training.Fitting(ranker=ranker_inputs(data)))
    with pytest.raises(ValueError, match=r"ranker: source model\(s\) \['ease'\] not given"):
        training.train(
            "ranker", data, RankerConfig(sources=("ease",)), training.Fitting(ranker=ranker_inputs(data))
        )
    with pytest.raises(ValueError, match=r"ranker: needs the trained models"):
        training.train("ranker", data, RankerConfig(), training.Fitting())


def test_the_ranker_learns_from_validation_and_never_reads_test() -> None:
    data = taste_data(0)
    config = RankerConfig(per_source=10, folds=3, max_rounds=40, patience=10, threads=1, content=("fused",),
                          grid=({"learning_rate": 0.1, "num_leaves": 4, "min_data_in_leaf": 5},))  # fmt: skip
    trained = training.train("ranker", data, config, training.Fitting(ranker=ranker_inputs(data)))
    assert trained.model.kind == "ranker" and trained.checkpoint and b"tree" in trained.checkpoint
    assert trained.extra["sources"] == ["taste", "noise", "fused_knn", "cold_content"]
    metrics, _ = evaluate_per_user(
        trained.model.scoring(data.n_items), data, split_scores=trained.model.split_scorers()
    )
    # The taste source ranks a user's group first: the ranker trusts it over noise.
    importance = dict(trained.extra["importance"])
    assert (
        importance["noise_z"] < importance["taste_z"] + importance["taste_rank"] + importance["taste_score"]
    )
    assert metrics["test"]["ndcg@20"] > 0.3 and metrics["val"]["ndcg@20"] > 0.3
    union = trained.extra["recall"][-1]
    assert union["source"] == "union" and union["recall"] == 1.0
    # Test moved elsewhere: validation scores and the model learnt are the same.
    other = taste_data(0)
    other.test = Csr.from_pairs(np.arange(data.n_users), np.full(data.n_users, 1), data.n_users)
    again = training.train("ranker", other, config, training.Fitting(ranker=ranker_inputs(other)))
    assert again.checkpoint == trained.checkpoint
    assert trained.model.split_scores is not None and again.model.split_scores is not None
    assert (again.model.split_scores["val"] != trained.model.split_scores["val"]).nnz == 0


def test_the_blend_mixes_the_two_models_best_on_validation() -> None:
    data = taste_data(0)
    inputs = ranker_inputs(data)
    rng = np.random.default_rng(9)
    worse = Scorable(
        np.eye(4, dtype=np.float32)[np.arange(data.n_users) % 4],
        np.eye(4, dtype=np.float32)[np.arange(40) % 4] + rng.normal(0, 0.8, size=(40, 4)).astype(np.float32),
    )
    inputs = RankerInputs({**inputs.models, "worse": (worse, ORDER_FREE)}, inputs.content)
    config = BlendConfig(keep=20, weights=(0.0, 0.5, 1.0))
    trained = training.train("blend", data, config, training.Fitting(ranker=inputs))
    chosen = trained.extra["chosen"]
    assert (chosen["first"], chosen["second"]) == ("taste", "worse")
    assert chosen["weight"] in (0.5, 1.0) and len(trained.extra["tried"]) == 3
    assert trained.model.split_scores is not None
    # 20 items per user with a target, on each split; none of a user's own.
    val = trained.model.split_scores["val"]
    assert val.nnz == 20 * int((data.val.lengths() > 0).sum())
    own = data.train.pairs(np.arange(data.n_users))
    assert not np.asarray(val[own[0], own[1]]).any()
    metrics, _ = evaluate_per_user(
        trained.model.scoring(40), data, split_scores=trained.model.split_scorers()
    )
    assert metrics["test"]["ndcg@20"] > 0.3
    with pytest.raises(ValueError, match=r"blend: needs two models, given \['taste'\]"):
        training.train(
            "blend",
            data,
            config,
            training.Fitting(ranker=RankerInputs({"taste": inputs.models["taste"]}, {})),
        )


def test_the_ablation_finds_the_retriever_the_ranker_cannot_do_without() -> None:
    from recsys_assets.core.models.ranker.ablation import FULL, ablate, ablation_table, default_variants

    assert default_variants(["popularity", "ease", "itemknn", "gat"]) == {
        FULL: {},
        "without the GAT": {"sources": ["popularity", "ease", "itemknn"]},
        "without EASE and ItemKNN": {"sources": ["popularity", "gat"]},
        "without content": {"content": []},
    }
    assert list(default_variants(["popularity"])) == [FULL, "without content"]
    data = taste_data(0)
    base = RankerConfig(per_source=10, folds=3, max_rounds=40, patience=10, threads=1, content=("fused",),
                        grid=({"learning_rate": 0.1, "num_leaves": 4, "min_data_in_leaf": 5},))  # fmt: skip
    variants = {FULL: {}, "without taste": {"sources": ["noise"], "content": []}}
    evaluation = EvaluationConfig(resamples=200)
    rows, comparisons = ablate(data, base, ranker_inputs(data), variants, evaluation)
    assert [r["variant"] for r in rows] == [FULL, "without taste"]
    assert rows[1]["sources"] == ["noise"] and rows[0]["test"]["ndcg@20"] > rows[1]["test"]["ndcg@20"]
    lost = comparisons["test"]["without taste"]
    assert lost["relative"] < -0.3 and lost["significant"] and lost["relative_ci"][1] < 0
    assert "without taste" in ablation_table(rows, comparisons) and "significant" in ablation_table(
        rows, comparisons
    )
    with pytest.raises(ValueError, match=r"lack 'full', the reference"):
        ablate(data, base, ranker_inputs(data), {"x": {}}, evaluation)


def test_cold_dropout_hides_what_interactions_make_and_keeps_content() -> None:
    from recsys_assets.core.ranking.features import mask_rows

    space = FeatureSpace(("ease", "gat", "fused_knn"), {"fused": np.zeros((2, 2))}, times=True,
                         interaction_sources=("ease",), mask_cold=2)  # fmt: skip
    dropped = [space.names[k] for k in space.interaction_columns()]
    assert dropped == ["ease_score", "ease_z", "ease_rank", "item_count", "sources", "item_recent_count",
                       "item_age_days"]  # fmt: skip
    x = np.ones((3, len(space.names)), dtype=np.float32)
    mask_rows(x, space.interaction_columns(), np.array([1]))
    assert np.isnan(x[1, space.interaction_columns()]).all() and not np.isnan(x[[0, 2]]).any()
    assert not np.isnan(np.delete(x[1], space.interaction_columns())).any()


def test_with_cold_dropout_the_ranker_still_learns_and_its_out_of_fold_rows_are_whole() -> None:
    data = taste_data(0)
    grid = ({"learning_rate": 0.1, "num_leaves": 4, "min_data_in_leaf": 5},)
    config = RankerConfig(per_source=10, folds=3, max_rounds=40, patience=10, threads=1, content=("fused",),
                          cold_dropout=0.3, grid=grid)  # fmt: skip
    trained = training.train("ranker", data, config, training.Fitting(ranker=ranker_inputs(data)))
    metrics, _ = evaluate_per_user(
        trained.model.scoring(40), data, split_scores=trained.model.split_scorers()
    )
    assert metrics["val"]["ndcg@20"] > 0.3 and metrics["test"]["ndcg@20"] > 0.3
    plain = training.train("ranker", data, config.with_changes({"cold_dropout": 0.0}),
                           training.Fitting(ranker=ranker_inputs(data)))  # fmt: skip
    assert plain.checkpoint != trained.checkpoint  # the dropout changed what it learnt from


def test_top_rows_breaks_ties_by_item_index_and_marks_ineligible_items() -> None:
    from recsys_assets.core.ranking.candidates import top_rows

    values = np.array(
        [[1.0, 3.0, 3.0, 2.0, 3.0, 3.0], [0.0, -np.inf, 5.0, -np.inf, -np.inf, -np.inf]], dtype=np.float32
    )
    columns, finite = top_rows(values, 3)
    # Row 0: four items tie at 3.0 for three places: the lowest indices win, in index order.
    assert columns[0].tolist() == [1, 2, 4] and finite[0].all()
    # Row 1: two eligible items, then the ineligible ones (-inf), flagged.
    assert columns[1][:2].tolist() == [2, 0] and finite[1].tolist() == [True, True, False]
    # The same scores always give the same lists.
    again, _ = top_rows(values.copy(), 3)
    assert (again == columns).all()
    whole, _ = top_rows(values, 10)  # k beyond the catalogue: every column, best first
    assert whole[0].tolist() == [1, 2, 4, 5, 3, 0]
