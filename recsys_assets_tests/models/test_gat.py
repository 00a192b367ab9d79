"""The GAT recommender: learning, determinism, cold items from content, variants, the sampler,
chunked inference, the recency readout, and its checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models.early_stopping import step_batches, validation_ndcg20
from recsys_assets.core.models.gat.checkpoint import checkpoint_bytes, load_checkpoint
from recsys_assets.core.models.gat.graph import RATED_BY, RATES, SIMILAR, build_graph, csr_edges
from recsys_assets.core.models.gat.model import GATRecommender, embed, recent_item_mean, with_readout
from recsys_assets.core.models.gat.sampling import in_edges, sample_subgraph
from recsys_assets.core.models.gat.train import fanouts_for, train_gat, validation_schedule
from recsys_assets.core.models.metrics import sample_rows
from recsys_assets.settings.models import GATConfig
from recsys_assets_tests.models.taste import taste_groups

GROUPS, PER_GROUP, USERS = 4, 25, 200
#: Items 100..111 belong to the groups by content (3 each) but nobody reviewed them.
COLD = np.arange(100, 112)
N_ITEMS = 112


def _features(seed: int = 0) -> np.ndarray:
    """Each item's content: its group's direction plus noise."""
    rng = np.random.default_rng(seed)
    group = np.concatenate([np.arange(100) // PER_GROUP, np.repeat(np.arange(GROUPS), 3)])
    x = np.eye(GROUPS)[group] * 2.0 + rng.normal(scale=0.3, size=(N_ITEMS, GROUPS))
    return np.hstack([x, rng.normal(size=(N_ITEMS, 12))]).astype(np.float32)


def _content_knn(x: np.ndarray, k: int = 5) -> dict[str, np.ndarray]:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    dst = np.argsort(-sims, axis=1)[:, :k]
    src = np.repeat(np.arange(len(x)), k)
    return {"src": src, "dst": dst.ravel(), "weight": sims[src, dst.ravel()]}


def _fit(config: GATConfig, seed: int = 1):  # type: ignore[no-untyped-def]
    train, val = taste_groups(USERS, GROUPS, PER_GROUP, seed=seed)
    x = _features()
    graph = build_graph(csr_edges(train), USERS, N_ITEMS, _content_knn(x))
    return train, val, train_gat(train, val, x, graph, config)


#: Order in training off: most tests here are about the graph and the readout chosen on validation.
SMALL = GATConfig(hidden=16, layers=2, epochs=12, batch_size=512, learning_rate=1e-2, patience=5, l2=1e-4,
                  sequence=False, next_edges=False)  # fmt: skip


def test_gat_learns_taste_groups_and_is_deterministic() -> None:
    _, _, first = _fit(SMALL)
    _, _, second = _fit(SMALL)
    np.testing.assert_array_equal(first.items, second.items)
    assert [h["val_ndcg@20"] for h in first.history] == [h["val_ndcg@20"] for h in second.history]
    assert first.history[-1]["loss"] < first.history[0]["loss"]
    # Random ranking of the 25 group items gives NDCG@20 well under 0.2.
    assert first.best_val_ndcg20 > 0.3
    assert first.users.shape == (USERS, 16) and first.items.shape == (N_ITEMS, 16)


def test_unreviewed_items_get_vectors_from_content_and_knn_edges() -> None:
    train, _, fit = _fit(SMALL)
    assert np.bincount(train.indices, minlength=N_ITEMS)[COLD].sum() == 0
    scores = fit.users @ fit.items.T
    user_group = np.arange(USERS) % GROUPS
    cold_group = np.repeat(np.arange(GROUPS), 3)
    # Each cold item scores higher for users of its own group than for the other users.
    own = np.array([scores[user_group == g, i].mean() for i, g in zip(COLD, cold_group, strict=True)])
    other = np.array([scores[user_group != g, i].mean() for i, g in zip(COLD, cold_group, strict=True)])
    assert (own > other).all(), (own, other)


@pytest.mark.parametrize(
    "change",
    [
        {"loss": "bce", "negatives": 4},
        {"loss": "bpr", "item_bias": True},
        {"heads": 4, "layers": 3},
        {"layers": 1, "item_item": False},
        {"edge_features": False, "id_embedding": False},
    ],
)
def test_variants_train(change: dict) -> None:
    config = GATConfig(**{**SMALL.to_dict(), "epochs": 3, **change})
    _, _, fit = _fit(config)
    assert fit.model is not None and len(fit.history) == 3
    assert np.isfinite(fit.items).all() and fit.best_val_ndcg20 > 0


def test_config_rejects_bad_values() -> None:
    assert GATConfig().negatives == 512 and GATConfig(loss="bpr").negatives == 16
    with pytest.raises(ValueError, match=r"recency_readout \[0.0, -1.0\]: expected weights >= 0"):
        GATConfig(recency_readout=(0, -1))
    with pytest.raises(ValueError, match="loss\n  Input should be 'bpr', 'bce' or 'softmax'"):
        GATConfig(loss="hinge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="layers\n  Input should be greater than or equal to 1"):
        GATConfig(layers=0)
    train, val = taste_groups(20, 2, 12, seed=0)
    with pytest.raises(ValueError, match="item features have 5 rows for 24 items"):
        train_gat(train, val, np.zeros((5, 4), np.float32), build_graph(csr_edges(train), 20, 24), SMALL)


def test_sampler_draws_at_most_fanout_in_edges_per_node_and_relation() -> None:
    import torch

    train, _ = taste_groups(USERS, GROUPS, PER_GROUP, seed=1)
    graph = build_graph(csr_edges(train), USERS, N_ITEMS, _content_knn(_features()))
    index = in_edges(graph)
    # Every node's incoming edges, grouped: user 3 is reached from its 10 train items.
    incoming = index[RATED_BY]
    assert (
        incoming.src[incoming.indptr[3] : incoming.indptr[4]].sort().values.tolist() == train.row(3).tolist()
    )
    seeds = {"user": torch.tensor([0, 1]), "item": torch.tensor([5])}
    sub = sample_subgraph(graph, index, seeds, (4, 2), torch.Generator().manual_seed(0))
    users, items = sub.nodes["user"], sub.nodes["item"]
    assert set(seeds["user"].tolist()) <= set(users.tolist()) and 5 in items.tolist()
    for relation, edges in sub.graph.edges.items():
        src_kind, _, dst_kind = relation
        global_src = sub.nodes[src_kind][edges[0]]
        global_dst = sub.nodes[dst_kind][edges[1]]
        # Every sampled edge exists in the full graph, with its attributes.
        full = set(zip(graph.edges[relation][0].tolist(), graph.edges[relation][1].tolist(), strict=True))
        assert set(zip(global_src.tolist(), global_dst.tolist(), strict=True)) <= full
        assert len(sub.graph.attributes[relation]) == edges.shape[1]
    assert RATES in sub.graph.edges and SIMILAR in sub.graph.edges
    assert len(items) < N_ITEMS  # a neighbourhood, not the graph


def test_sampler_keeps_small_neighbourhoods_whole_and_draws_from_large_ones() -> None:
    import torch

    train, _ = taste_groups(USERS, GROUPS, PER_GROUP, seed=1)
    graph = build_graph(csr_edges(train), USERS, N_ITEMS)
    index = in_edges(graph)
    every_user = {"user": torch.arange(USERS), "item": torch.tensor([0])}

    def items_per_user(fanout: int) -> np.ndarray:
        sub = sample_subgraph(graph, index, every_user, (fanout,), torch.Generator().manual_seed(0))
        edges = sub.graph.edges[RATED_BY]
        users, items = sub.nodes["user"][edges[1]].numpy(), sub.nodes["item"][edges[0]].numpy()
        for user in range(USERS):  # only the user's own train items
            assert set(items[users == user]) <= set(train.row(user).tolist())
        return np.bincount(users, minlength=USERS)

    # Every user has 10 train items: a fanout of 20 keeps all of them.
    assert (items_per_user(20) == 10).all()
    # A fanout of 4 draws 4 of the 10 with replacement and drops repeats: 10 (1 - 0.9^4) = 3.44
    # distinct items on average, never more than 4.
    drawn = items_per_user(4)
    assert drawn.max() == 4 and drawn.min() >= 1
    assert drawn.mean() == pytest.approx(3.44, abs=0.15)


def test_gat_trains_on_sampled_neighbourhoods() -> None:

    config = GATConfig(**{**SMALL.to_dict(), "fanouts": [5, 3], "val_users": 100})
    train, val, fit = _fit(config)
    again = _fit(config)[2]
    np.testing.assert_array_equal(fit.items, again.items)
    assert fit.history[-1]["loss"] < fit.history[0]["loss"] and fit.best_val_ndcg20 > 0.3
    # Early stopping watched 100 of the 200 validation users.
    watched = sample_rows(val, config.val_users, config.seed)
    assert int((watched.lengths() > 0).sum()) == 100
    assert fit.best_val_ndcg20 == pytest.approx(
        validation_ndcg20(fit.users, fit.items, train, watched), abs=1e-6
    )
    with pytest.raises(ValueError, match=r"fanouts \[5\]: expected one per layer \(2\)"):
        GATConfig(fanouts=(5,))


def test_a_graph_above_full_graph_edges_samples_and_takes_at_most_max_steps() -> None:
    train, val = taste_groups(USERS, GROUPS, PER_GROUP, seed=1)
    x = _features()
    graph = build_graph(csr_edges(train), USERS, N_ITEMS, _content_knn(x))
    small = SMALL.model_copy(update={"epochs": 2})
    assert fanouts_for(graph, small) == ()
    auto = small.model_copy(update={"full_graph_edges": graph.n_edges() - 1, "max_steps": 3})
    assert fanouts_for(graph, auto) == (10, 5)
    steps: list[tuple[int, int]] = []
    fit = train_gat(train, val, x, graph, auto, step_progress=lambda *s: steps.append(s))
    explicit = auto.model_copy(update={"fanouts": (10, 5), "full_graph_edges": 10**9})
    np.testing.assert_array_equal(fit.items, train_gat(train, val, x, graph, explicit).items)
    # ~2,500 train edges: 5 batches of 512, or 3 of 834 with max_steps 3.
    assert steps == [(1, 3), (2, 3), (3, 3)] * 2
    # Sampled steps are cheap and validation embeds the whole graph: every 2nd epoch (and the
    # last), with patience halved so as many epochs pass before stopping.
    assert [int(r["epoch"]) for r in fit.history] == [2]
    three = train_gat(train, val, x, graph, auto.model_copy(update={"epochs": 3}))
    assert [int(r["epoch"]) for r in three.history] == [2, 3]
    assert validation_schedule(auto.model_copy(update={"patience": 5}), (10, 5)) == (2, 3)
    assert validation_schedule(auto.model_copy(update={"patience": 5}), ()) == (1, 5)
    assert validation_schedule(auto.model_copy(update={"eval_every": 3}), (10, 5)) == (3, auto.patience)
    order = torch.arange(2_500)
    assert [len(b) for b in step_batches(order, 512, 3)] == [834, 834, 832]
    assert [len(b) for b in step_batches(order, 512, 0)] == [512] * 4 + [452]
    assert [len(b) for b in step_batches(order, 512, 10)] == [512] * 4 + [452]


DETERMINISM_SCRIPT = """
import numpy as np
from recsys_assets.core.models.gat.graph import build_graph, csr_edges
from recsys_assets.core.models.gat.train import fanouts_for, train_gat
from recsys_assets.settings.models import GATConfig
from recsys_assets_tests.models.taste import taste_groups
train, val = taste_groups(2000, 10, 100, seed=0)
rng = np.random.default_rng(0)
x = rng.normal(size=(1000, 32)).astype(np.float32)
src, dst = np.repeat(np.arange(1000), 10), rng.integers(0, 1000, 10000)
ii = {"src": src, "dst": np.where(dst == src, (dst + 1) % 1000, dst)}
graph = build_graph(csr_edges(train), 2000, 1000, ii)
fit = train_gat(train, val, x, graph, GATConfig(epochs=2, batch_size=4096))
print(fit.items.tobytes().hex()[:64], repr(float(np.abs(fit.items).sum())), fit.best_val_ndcg20)
"""


def test_two_processes_with_one_seed_train_identical_models() -> None:
    """Large enough for multi-threaded scatter kernels, which sum in a varying order unless
    training runs with deterministic algorithms (two runs then differ in the 5th digit)."""
    import os
    import subprocess
    import sys

    runs = [
        subprocess.run(
            [sys.executable, "-c", DETERMINISM_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1] and runs[0].strip()


@pytest.mark.parametrize("change", [{}, {"edge_features": False, "heads": 2, "item_bias": True}])
def test_chunked_inference_equals_the_full_forward(change: dict) -> None:
    import torch

    train, _ = taste_groups(USERS, GROUPS, PER_GROUP, seed=1)
    graph = build_graph(csr_edges(train), USERS, N_ITEMS, _content_knn(_features()))
    config = GATConfig(**{**SMALL.to_dict(), **change})
    torch.manual_seed(0)
    model = GATRecommender(USERS, N_ITEMS, 16, config, graph.edge_dims())
    features = torch.from_numpy(_features())
    model.readout.fill_(1.5)  # the recency readout takes part in both passes
    full_users, full_items = embed(model, features, graph)
    # 37 edges a chunk: every relation is cut into many chunks, some nodes alone in one.
    users, items = embed(model, features, graph, max_edges=37)
    np.testing.assert_allclose(users, full_users, atol=1e-5)
    np.testing.assert_allclose(items, full_items, atol=1e-5)


def test_recent_item_mean_weights_a_users_items_by_recency_by_hand() -> None:
    import torch

    # User 0 rated item 0 first (recency 0) and item 1 last (recency 1); user 1 rated item 2;
    # user 2 rated nothing.
    ui = {"src": np.array([0, 0, 1]), "dst": np.array([0, 1, 2]), "recency": np.array([0.0, 1.0, 1.0])}
    graph = build_graph(ui, 3, 3)
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    # decay ln 4: item 0 weighs exp(ln 4 * (0 - 1)) = 1/4, item 1 weighs 1.
    pooled = recent_item_mean(items, graph, float(np.log(4.0)))
    np.testing.assert_allclose(pooled.numpy(), [[0.2, 0.8], [3.0, 4.0], [0.0, 0.0]], atol=1e-6)
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(
        with_readout(users, pooled, 2.0, unit=False).numpy(), [[1.4, 1.6], [6.0, 9.0], [1.0, 0.0]], atol=1e-6
    )
    unit = with_readout(users, pooled, 2.0, unit=True).numpy()
    np.testing.assert_allclose(unit[1], np.array([6.0, 9.0]) / np.hypot(6.0, 9.0), atol=1e-6)


def test_recency_readout_is_chosen_on_validation_when_tastes_move() -> None:
    """Each user reviewed 8 items of one group, then 3 of the next; validation holds more of the
    next group. Training has no notion of order, so only the readout can follow the move."""
    rng = np.random.default_rng(0)
    src, dst, recency, val_src, val_dst = [], [], [], [], []
    for user in range(USERS):
        old, new = user % GROUPS, (user + 1) % GROUPS
        old_items = rng.choice(PER_GROUP, 8, replace=False) + old * PER_GROUP
        new_items = rng.permutation(PER_GROUP)[:8] + new * PER_GROUP
        history = np.concatenate([old_items, new_items[:3]])
        src += [user] * len(history)
        dst += history.tolist()
        recency += np.linspace(0.0, 1.0, len(history)).tolist()
        val_src += [user] * 5
        val_dst += new_items[3:].tolist()
    ui = {"src": np.array(src), "dst": np.array(dst), "recency": np.array(recency, np.float32)}
    train = Csr.from_pairs(ui["src"], ui["dst"], USERS)
    val = Csr.from_pairs(np.array(val_src), np.array(val_dst), USERS)
    x = _features()
    graph = build_graph(ui, USERS, N_ITEMS, _content_knn(x))
    without = train_gat(train, val, x, graph, GATConfig(**{**SMALL.to_dict(), "recency_readout": (0.0,)}))
    fit = train_gat(
        train, val, x, graph, GATConfig(**{**SMALL.to_dict(), "recency_readout": (0.0, 1.0, 2.0)})
    )
    assert without.readout == 0.0 and fit.readout in (1.0, 2.0)
    assert fit.best_val_ndcg20 > without.best_val_ndcg20 + 0.05, (
        fit.best_val_ndcg20,
        without.best_val_ndcg20,
    )
    # The chosen weight travels with the weights: the model re-exports the same vectors.
    import torch

    assert fit.model is not None and float(fit.model.readout) == fit.readout
    users, _ = embed(fit.model, torch.from_numpy(x), graph)
    np.testing.assert_allclose(users, fit.users, atol=1e-6)


def test_checkpoint_rebuilds_the_module_and_its_vectors() -> None:
    train, _, fit = _fit(GATConfig(**{**SMALL.to_dict(), "epochs": 2, "heads": 2}))
    x = _features()
    graph = build_graph(csr_edges(train), USERS, N_ITEMS, _content_knn(x))
    assert fit.model is not None
    model = load_checkpoint(checkpoint_bytes(fit.model, graph, x.shape[1]))
    assert model.config == fit.model.config and float(model.readout) == fit.readout
    users, items = embed(model, torch_tensor(x), graph)
    np.testing.assert_allclose(items, fit.items, atol=1e-5)
    np.testing.assert_allclose(users, fit.users, atol=1e-5)


def torch_tensor(x: np.ndarray):  # type: ignore[no-untyped-def]
    import torch

    return torch.from_numpy(x)


def test_the_shared_readout_reproduces_the_gats_own() -> None:
    import torch

    from recsys_assets.core.models.recency import Order
    from recsys_assets.core.models.scoring import Scorable

    train, val = taste_groups(USERS, GROUPS, PER_GROUP, seed=1)
    x = _features()
    graph = build_graph(csr_edges(train), USERS, N_ITEMS, _content_knn(x))
    config = SMALL.with_changes({"recency_readout": [1.0], "epochs": 3})
    fit = train_gat(train, val, x, graph, config)
    assert fit.model is not None and fit.readout == 1.0
    users, items = embed(fit.model, torch.from_numpy(x), graph, readout=False)
    # Without timestamps every edge is as recent as the last (weight 1), in both readouts.
    timed = Csr(train.indptr, train.indices, np.ones(len(train.indices)))
    order = Order(config.recency_decay, 0.0, fit.readout)
    shared = Scorable(users, items, unit=True).user_vectors(timed, N_ITEMS, order)
    np.testing.assert_allclose(shared, fit.users, atol=1e-5)
    assert not np.allclose(users, fit.users, atol=1e-3)


def test_sequence_context_holds_the_items_just_before_each_edge() -> None:
    from recsys_assets.core.models.gat.sequence import sequence_context

    # User 0 reviewed items 7, 5, 9 in that order (edges listed out of order); user 1 only item 3.
    users = np.array([0, 1, 0, 0])
    items = np.array([9, 3, 7, 5])
    recency = np.array([1.0, 1.0, 0.0, 0.5])
    context = sequence_context(users, items, recency, window=2, decay=2.0)
    assert context.items.tolist() == [[5, 7], [0, 0], [0, 0], [7, 0]]
    np.testing.assert_allclose(
        context.weights.numpy(), [[np.exp(-1.0), np.exp(-2.0)], [0, 0], [0, 0], [np.exp(-1.0), 0]], rtol=1e-6
    )


def test_gat_with_a_sequence_context_learns_its_weight_and_is_deterministic() -> None:
    config = SMALL.with_changes({"sequence": True, "sequence_window": 5})
    _, _, first = _fit(config)
    _, _, second = _fit(config)
    np.testing.assert_array_equal(first.users, second.users)
    assert first.model is not None and first.model.sequence_weight is not None
    # The readout uses the learned weight (it moved from its start, 1).
    assert first.readout == pytest.approx(float(first.model.sequence_weight)) and first.readout != 1.0
    assert first.best_val_ndcg20 > 0.3
    with pytest.raises(ValueError, match="sequence and item_bias"):
        SMALL.with_changes({"sequence": True, "item_bias": True})


def test_next_edges_join_items_reviewed_one_after_the_other() -> None:
    from recsys_assets.core.models.gat.graph import NEXT, with_next_edges

    # User 0: items 4 -> 2 -> 3 (by recency); user 1: 2 -> 3; user 2 a single item.
    ui = {"src": np.array([0, 0, 0, 1, 1, 2]), "dst": np.array([3, 4, 2, 3, 2, 1]),
          "recency": np.array([1.0, 0.0, 0.5, 1.0, 0.0, 1.0])}  # fmt: skip
    graph = with_next_edges(build_graph(ui, 3, 5))
    src, dst = graph.edges[NEXT].numpy()
    weight = graph.attributes[NEXT][:, 0].numpy()
    pairs = {(int(a), int(b)): float(w) for a, b, w in zip(src, dst, weight, strict=True)}
    assert pairs == pytest.approx(
        {(4, 2): np.log(2), (2, 4): np.log(2), (2, 3): np.log(3), (3, 2): np.log(3)}
    )
    assert with_next_edges(graph) is graph


def test_gat_with_next_edges_reloads_from_its_checkpoint() -> None:
    import torch

    train, val = taste_groups(USERS, GROUPS, PER_GROUP, seed=1)
    x = _features()
    graph = build_graph(csr_edges(train), USERS, N_ITEMS, _content_knn(x))
    fit = train_gat(train, val, x, graph, SMALL.with_changes({"next_edges": True, "epochs": 3}))
    assert fit.model is not None
    model = load_checkpoint(checkpoint_bytes(fit.model, graph, x.shape[1]))
    _, items = embed(model, torch.from_numpy(x), graph)
    np.testing.assert_allclose(items, fit.items, atol=1e-5)
