"""SASRec: sequences in time order, a next-item structure it learns and an order-free model
cannot, determinism, and the encoder its checkpoint holds reading whichever history it is given."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_assets.core.io.sparse import Csr
from recsys_assets.core.models import sasrec, training
from recsys_assets.core.models.evaluation import evaluate
from recsys_assets.core.models.mf import train_mf_bpr
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.settings.models import MFConfig, SASRecConfig

RING = 60


def walks(n_users: int, seed: int) -> TrainingData:
    """Users walking a ring of items, half of them one way round, half the other: each reviews
    8 consecutive items (in time order), then the next 2 are validation and the 2 after test.
    Every item is equally popular, and a user's set of items is an arc that says nothing of which
    end the walk goes on from unless its order is read."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, RING, n_users)
    direction = np.where(np.arange(n_users) % 2, 1, -1)
    steps = (starts[:, None] + direction[:, None] * np.arange(12)[None, :]) % RING
    users = np.repeat(np.arange(n_users), 8)
    # Positions in time, 0 (first) to 1 (last), as ``training_data`` gives them.
    train = Csr.from_pairs(users, steps[:, :8].ravel(), n_users, np.tile(np.arange(8) / 7, n_users))
    val = Csr.from_pairs(np.repeat(np.arange(n_users), 2), steps[:, 8:10].ravel(), n_users)
    test = Csr.from_pairs(np.repeat(np.arange(n_users), 2), steps[:, 10:12].ravel(), n_users)
    seen = np.repeat(np.arange(n_users), 10)
    history = Csr.from_pairs(seen, steps[:, :10].ravel(), n_users, np.tile(np.arange(10) / 9, n_users))
    return TrainingData(train, val, test, RING, test_history=history)


def test_sequences_are_each_users_latest_items_in_time_left_padded() -> None:
    # User 0 reviewed 5, then 3, then 9 (item order differs from time order); user 1 only 7.
    history = Csr.from_pairs(
        np.array([0, 0, 0, 1]), np.array([9, 5, 3, 7]), 3, np.array([1.0, 0.0, 0.5, 0.0])
    )
    np.testing.assert_array_equal(sasrec.sequences(history, 4), [[0, 6, 4, 10], [0, 0, 0, 8], [0, 0, 0, 0]])
    # Only the latest ``length`` items are kept.
    np.testing.assert_array_equal(sasrec.sequences(history, 2)[0], [4, 10])


CONFIG = SASRecConfig(dim=32, layers=1, max_length=10, dropout=0.1, learning_rate=5e-3, batch_size=64,
                      epochs=40, patience=5)  # fmt: skip


def test_sasrec_learns_the_next_item_and_is_deterministic() -> None:
    data = walks(300, seed=0)
    first = sasrec.fit(data, CONFIG, training.Fitting())
    second = sasrec.fit(data, CONFIG, training.Fitting())
    assert first.fit is not None and second.fit is not None
    np.testing.assert_array_equal(first.model.users, second.model.users)
    assert first.fit.history[-1]["loss"] < first.fit.history[0]["loss"]
    # An order-free model knows the arc but not the end the walk goes on from.
    mf = train_mf_bpr(data.train, data.val, RING, MFConfig(dim=16, epochs=40, batch_size=256, patience=5))
    assert first.fit.best_val_ndcg20 > 0.95 > mf.best_val_ndcg20 + 0.1
    metrics = evaluate(first.model.scoring(RING), data)
    assert metrics["val"]["ndcg@20"] == pytest.approx(first.fit.best_val_ndcg20, abs=1e-6)
    # Test reads the train and validation history: the walk's next steps from where it now is.
    assert metrics["test"]["ndcg@20"] > 0.95
    stale = evaluate(first.model.scoring(RING), data, test_history="train")
    assert stale["test"]["ndcg@20"] < metrics["test"]["ndcg@20"] - 0.3


def test_the_checkpoint_holds_the_encoder_that_reads_any_history() -> None:
    data = walks(120, seed=1)
    trained = sasrec.fit(data, CONFIG.with_changes({"epochs": 3}), training.Fitting())
    assert trained.checkpoint is not None and trained.model.encoder is not None
    encode = sasrec.load_encoder(trained.checkpoint)
    np.testing.assert_allclose(encode(data.train), trained.model.users, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(encode(data.history("test")), trained.model.encoder(data.history("test")),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    assert not np.allclose(encode(data.history("test")), encode(data.train))


def test_registered_and_trained_like_every_model() -> None:
    data = walks(120, seed=2)
    trained = training.train("sasrec", data, CONFIG.with_changes({"epochs": 2}), training.Fitting())
    # The encoder carries the order: the only use of order tried is none.
    assert trained.choice is not None and len(trained.choice.table()) == 1
    meta = training.model_meta("sasrec", trained, data, "run")
    assert meta["encoder"] is True and meta["kind"] == "embedding" and meta["dim"] == 32
    with pytest.raises(ValueError, match="dim 30 is not a multiple of heads 4"):
        SASRecConfig(dim=30, heads=4)
