"""The baselines every model must beat: popularity, MF-BPR, LightGCN learn and are deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_assets.core.models.early_stopping import validation_ndcg20
from recsys_assets.core.models.lightgcn import normalised_adjacency, train_lightgcn
from recsys_assets.core.models.metrics import ranking_metrics, top_k
from recsys_assets.core.models.mf import train_mf_bpr
from recsys_assets.core.models.popularity import popularity_scores
from recsys_assets.settings.models import LightGCNConfig, MFConfig
from recsys_assets_tests.models.taste import taste_groups


def test_mf_bpr_learns_beats_popularity_and_is_deterministic() -> None:
    # 300 users in 6 taste groups over 120 items (20 per group).
    train, val = taste_groups(300, 6, 20, seed=0)
    config = MFConfig(dim=16, epochs=40, batch_size=512, learning_rate=2e-2, patience=5)
    first = train_mf_bpr(train, val, 120, config)
    second = train_mf_bpr(train, val, 120, config)
    np.testing.assert_array_equal(first.users, second.users)
    assert first.best_val_ndcg20 == second.best_val_ndcg20
    assert first.history[-1]["loss"] < first.history[0]["loss"]
    pop = popularity_scores(train.indices, 120)
    evaluated = np.arange(300)
    pop_top = top_k(lambda r: np.broadcast_to(pop, (len(r), 120)), evaluated, [train], 20)
    pop_ndcg = ranking_metrics(pop_top, evaluated, val, 120, [20])["ndcg@20"]
    assert first.best_val_ndcg20 == pytest.approx(validation_ndcg20(first.users, first.items, train, val))
    assert first.best_val_ndcg20 > 2 * pop_ndcg


def test_lightgcn_learns_and_is_deterministic() -> None:
    train, val = taste_groups(200, 4, 25, seed=1)
    config = LightGCNConfig(dim=16, layers=2, epochs=15, batch_size=512, learning_rate=1e-2, patience=5)
    first = train_lightgcn(train, val, 100, config)
    second = train_lightgcn(train, val, 100, config)
    np.testing.assert_array_equal(first.items, second.items)
    assert first.history[-1]["loss"] < first.history[0]["loss"]
    # Random ranking of the 25 group items would give NDCG@20 well under 0.2; groups are learnt.
    assert first.best_val_ndcg20 > 0.2
    assert first.users.shape == (200, 16) and first.items.shape == (100, 16)


def test_the_sparse_adjacency_propagates_as_pygs_lightgcn_does() -> None:
    import torch
    from torch_geometric.nn import LightGCN

    from recsys_assets.core.models.symmetric_conv import SymmetricLGConv

    rng = np.random.default_rng(0)
    users, items = torch.from_numpy(rng.integers(0, 30, 200)), torch.from_numpy(rng.integers(0, 20, 200) + 30)
    pairs = torch.unique(torch.stack([users, items]), dim=1)
    adjacency = normalised_adjacency(pairs[0], pairs[1], 50)
    # By hand for one edge: 1 / sqrt(deg(user) * deg(item)).
    degree = torch.bincount(pairs.reshape(-1), minlength=50).double()
    u, i = int(pairs[0, 0]), int(pairs[1, 0])
    assert adjacency.to_dense()[i, u] == pytest.approx(float(1 / (degree[u] * degree[i]).sqrt()), rel=1e-6)
    edge_index = torch.cat([pairs, pairs.flip(0)], 1)
    torch.manual_seed(0)
    reference = LightGCN(50, 8, 3)
    ours = LightGCN(50, 8, 3, normalize=False)
    ours.convs = torch.nn.ModuleList(SymmetricLGConv() for _ in range(3))
    ours.load_state_dict(reference.state_dict())
    mine, theirs = ours.get_embedding(adjacency), reference.get_embedding(edge_index)
    torch.testing.assert_close(mine, theirs)
    # The gradient through the symmetric product is the one torch's transposing product gives.
    weights = torch.randn(50, 8)
    (mine * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert ours.embedding.weight.grad is not None and reference.embedding.weight.grad is not None
    torch.testing.assert_close(ours.embedding.weight.grad, reference.embedding.weight.grad)
    assert float(ours.embedding.weight.grad.abs().sum()) > 0
