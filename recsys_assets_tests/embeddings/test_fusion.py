"""Fusion: the hand-checkable pieces, and a fused space that beats text on held-out co-review."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_assets.core.embeddings import fusion
from recsys_assets.core.graphs.node_maps import build_node_maps
from recsys_assets.core.graphs.splits import split_interactions
from recsys_assets.core.models.training_data import TrainingData, training_data


def _split() -> pd.DataFrame:
    # user u1 reviews items 1, 2, 3, 4, then 0, then 9 (in time); u2 reviews 2, 5, 6, 7, 8, 9.
    items = {"u1": [1, 2, 3, 4, 0, 9], "u2": [2, 5, 6, 7, 8, 9]}
    t0 = pd.Timestamp("2014-01-01", tz="UTC")
    frame = pd.DataFrame(
        [
            (user, str(item), 5.0, t0 + pd.Timedelta(days=k))
            for user, row in items.items()
            for k, item in enumerate(row)
        ],
        columns=["user_id", "item_id", "rating", "ts"],
    )
    return split_interactions(frame).frame


def _data(split: pd.DataFrame) -> TrainingData:
    # Item nodes are the item ids 0..9 (items.parquet's rows, as the text rows are).
    maps = build_node_maps(pd.Series([str(i) for i in range(10)]), split[split["split"] == "train"])
    return training_data(split, maps)


def test_pairs_come_from_the_split_train_rows_and_agreement_from_its_validation_rows() -> None:
    split = _split()
    # 6 pairs a user: the last is test, the one before validation, 4 train.
    assert split.groupby("user_id")["split"].apply(lambda s: s.astype(str).tolist()).to_dict() == {
        "u1": ["train"] * 4 + ["val", "test"],
        "u2": ["train"] * 4 + ["val", "test"],
    }
    data = _data(split)
    pairs = fusion.co_review_pairs(data.train, window=2)
    assert sorted(map(tuple, pairs.tolist())) == sorted(
        [(1, 2), (2, 3), (3, 4), (2, 5), (5, 6), (6, 7), (1, 3), (2, 4), (2, 6), (5, 7)]
    )
    # (last train item, validation item): u1's 4 -> 0, u2's 7 -> 8; no test item (9) anywhere.
    assert fusion.heldout_pairs(data.train, data.val).tolist() == [[4, 0], [7, 8]]


def test_fusion_inputs_zero_the_image_and_flag_items_without_one() -> None:
    text = np.ones((3, 2), dtype=np.float32)
    image = np.array([[5.0, 6.0, 7.0]], dtype=np.float32)
    x = fusion.fusion_inputs(text, image, np.array([2]))
    assert x.shape == (3, 6)
    assert x[2].tolist() == [1, 1, 5, 6, 7, 1]
    assert x[0].tolist() == [1, 1, 0, 0, 0, 0]


def test_neighbour_agreement_by_hand() -> None:
    e = np.array([[1, 0], [0.9, 0.436], [0, 1], [-1, 0]], dtype=np.float32)
    # Nearest to 0 is 1 (not itself); nearest to 2 is 1.
    assert fusion.neighbour_agreement(e, np.array([[0, 1], [2, 1], [0, 3]]), k=1) == pytest.approx(2 / 3)
    assert fusion.neighbour_agreement(e, np.array([[0, 3]]), k=3) == 1.0
    with pytest.raises(ValueError, match="no held-out pairs"):
        fusion.neighbour_agreement(e, np.zeros((0, 2), dtype=np.int64), k=1)


def test_fused_space_agrees_with_co_review_better_than_its_inputs() -> None:
    """Items with a hidden group that drives co-review; the content shows it only faintly."""
    rng = np.random.default_rng(0)
    n_items, n_groups, dim = 600, 12, 32
    group = rng.integers(0, n_groups, n_items)
    centres = rng.normal(size=(n_groups, dim))
    # Text: mostly noise, the group direction at a fifth of the scale.
    text = rng.normal(size=(n_items, dim)) + 0.2 * centres[group]
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    popularity = rng.pareto(1.2, n_items) + 0.1
    users = []
    for user in range(800):
        g = rng.integers(0, n_groups)
        members = np.flatnonzero(group == g)
        p = popularity[members] / popularity[members].sum()
        picks = rng.choice(members, size=8, replace=False, p=p)
        users += [(user, int(item), t) for t, item in enumerate(picks)]
    t0 = pd.Timestamp("2014-01-01", tz="UTC")
    events = pd.DataFrame(
        [(f"u{u}", str(i), 5.0, t0 + pd.Timedelta(days=t)) for u, i, t in users],
        columns=["user_id", "item_id", "rating", "ts"],
    )
    split = split_interactions(events).frame
    maps = build_node_maps(pd.Series([str(i) for i in range(n_items)]), split[split["split"] == "train"])
    data = training_data(split, maps)
    config = fusion.FusionConfig(epochs=6, batch_size=256, hidden=64, out_dim=16)
    pairs = fusion.co_review_pairs(data.train, config.pair_window)
    x = fusion.fusion_inputs(text.astype(np.float32), np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    result = fusion.train_fusion(x, pairs, text.shape[1], config)
    fused = fusion.embed(result.model, x)
    assert fused.shape == (n_items, 16)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    assert result.losses[-1] < result.losses[0]
    check = fusion.heldout_pairs(data.train, data.val)
    text_score = fusion.neighbour_agreement(text.astype(np.float32), check, k=20)
    fused_score = fusion.neighbour_agreement(fused, check, k=20)
    assert fused_score > 1.5 * text_score, (fused_score, text_score)


def test_training_without_pairs_is_an_error() -> None:
    with pytest.raises(ValueError, match="no co-review pairs in the training window"):
        fusion.train_fusion(
            np.zeros((3, 4), np.float32), np.zeros((0, 2), np.int64), 2, fusion.FusionConfig()
        )


def test_each_epoch_trains_on_a_fresh_sample_of_the_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    pairs = rng.integers(0, 50, size=(1_000, 2))
    seen: list[np.ndarray] = []
    drop = fusion._drop_image

    def record(batch: torch.Tensor, *args: object) -> torch.Tensor:
        seen.append(batch.numpy().copy())
        return drop(batch, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(fusion, "_drop_image", record)
    config = fusion.FusionConfig(epochs=2, batch_size=256, pairs_per_epoch=300, hidden=8, out_dim=4)
    result = fusion.train_fusion(x, pairs, 3, config)
    # Each batch embeds both sides: epochs x (256 + 44) pairs x 2 sides.
    assert [len(b) for b in seen] == [256, 256, 44, 44] * 2
    assert (result.pairs, result.pairs_per_epoch) == (1_000, 300)
    first, second = (np.concatenate(seen[i : i + 4]) for i in (0, 4))
    assert not np.array_equal(first, second)  # a different sample in the second epoch
    everything = fusion.train_fusion(x, pairs, 3, config.model_copy(update={"pairs_per_epoch": 0}))
    assert everything.pairs_per_epoch == 1_000
