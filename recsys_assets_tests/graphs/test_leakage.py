"""What a fitted component records of its training rows, and the check that names a leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_assets.core.graphs.node_maps import build_node_maps
from recsys_assets.core.graphs.splits import split_interactions
from recsys_assets.core.leakage import TrainedOn, leak_outcome
from recsys_assets.core.models import training
from recsys_assets.core.models.training_data import training_data

T0 = pd.Timestamp("2014-01-01", tz="UTC")


def _sparse(users: int = 40, seed: int = 0) -> pd.DataFrame:
    """Users with 5 to 9 interactions each, as most users of a 5-core review file."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        n = 5 + u % 5
        for k, item in enumerate(rng.choice(60, n, replace=False)):
            rows.append((f"u{u:03d}", f"i{item:02d}", 4.0, T0 + pd.Timedelta(days=int(k * 3 + u % 2))))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "ts"])


def test_the_record_is_order_independent_and_moves_with_any_row() -> None:
    split = split_interactions(_sparse()).frame
    train = split[split["split"] == "train"]
    record = TrainedOn.of_frame(train)
    shuffled = TrainedOn.of_frame(train.sample(frac=1, random_state=1))
    assert record.fingerprint == shuffled.fingerprint and record.latest_ts_digest == shuffled.latest_ts_digest
    assert record.interactions == len(train)
    # One row a second later: both digests move (its user's latest time too).
    last = train.index[-1]
    moved = TrainedOn.of_frame(
        train.assign(ts=train["ts"].where(train.index != last, train["ts"] + pd.Timedelta(1, "s")))
    )
    assert moved.fingerprint != record.fingerprint and moved.latest_ts_digest != record.latest_ts_digest
    assert record.summary("k.npy") == {
        "interactions": len(train),
        "fingerprint": record.fingerprint,
        "latest_ts_digest": record.latest_ts_digest,
        "keys_uri": "k.npy",
    }


def test_a_model_fitted_on_train_passes_and_one_fitted_on_train_and_validation_is_named() -> None:
    split = split_interactions(_sparse()).frame
    maps = build_node_maps(pd.Series([f"i{i:02d}" for i in range(60)]), split[split["split"] == "train"])
    honest = training_data(split, maps)
    record = honest.trained_on()
    ok = leak_outcome("popularity_model", record.summary(), record.keys, split)
    assert ok.passed and ok.message == (
        f"popularity_model was fitted on exactly the split's {record.interactions:,} train interactions "
        f"(fingerprint {record.fingerprint}); no validation or test interaction seen"
    )
    # Planted: the same model fitted on train + validation (the validation rows relabelled train).
    leaky_split = split.assign(split=split["split"].astype(str).replace({"val": "train"}))
    leaky = training_data(leaky_split, maps)
    fitted = training.fit_popularity(leaky)
    assert fitted.model.items is not None  # a real fit on the leaky rows
    leaked = leaky.trained_on()
    outcome = leak_outcome("popularity_model", leaked.summary(), leaked.keys, split)
    n_val = int((split["split"] == "val").sum())
    assert not outcome.passed and outcome.observed == n_val and n_val == 40
    first = split[split["split"] == "val"].iloc[0]
    assert outcome.message == (
        f"LEAK: popularity_model was fitted on {n_val} validation and 0 test interaction(s) of "
        f"interaction_splits (e.g. user {first['user_id']!r}, item {first['item_id']!r} at {first['ts']}, "
        f"a val row); it must fit on the {record.interactions:,} train rows only"
    )
    assert outcome.metadata["validation_seen"] == n_val and outcome.metadata["test_seen"] == 0
    assert len(outcome.offending) == 10 and set(outcome.offending["split"]) == {"val"}


def test_the_old_fusion_split_leaks_validation_on_sparse_users() -> None:
    """The fusion used to hold out max(1, floor(0.2 n)) of each user's latest interactions; the
    split holds out 1 for validation and 1 for test when n < 20: for a user with 5 to 9, the
    old fusion trained on the validation interaction."""
    split = split_interactions(_sparse()).frame
    ordered = split.sort_values(["user_id", "ts", "item_id"], kind="stable")
    rank = ordered.groupby("user_id").cumcount()
    size = ordered.groupby("user_id")["item_id"].transform("size")
    old_train = ordered[rank < size - np.maximum(1, np.floor(size * 0.2)).astype(int)]
    old = TrainedOn.of_frame(old_train)
    outcome = leak_outcome("item_fused_embeddings", old.summary(), old.keys, split)
    # Every one of the 40 users (5 to 9 interactions) had their validation row in the old train.
    assert not outcome.passed and outcome.metadata["validation_seen"] == 40
    assert outcome.message.startswith("LEAK: item_fused_embeddings was fitted on 40 validation and 0 test")


def test_a_record_of_another_split_or_an_inconsistent_one_fails() -> None:
    split = split_interactions(_sparse()).frame
    train = split[split["split"] == "train"]
    fewer = TrainedOn.of_frame(train.iloc[:-3])
    outcome = leak_outcome("mf_model", fewer.summary(), fewer.keys, split)
    assert not outcome.passed and outcome.observed == 0
    assert outcome.message == (
        f"mf_model was not fitted on this split's train rows: 3 of its {len(train):,} train rows unseen, "
        "0 rows not in the split at all (fitted on another split?); rematerialize it"
    )
    record = TrainedOn.of_frame(train)
    forged = {**record.summary(), "interactions": record.interactions + 1}
    assert "does not match its" in leak_outcome("mf_model", forged, record.keys, split).message
    with pytest.raises(ValueError, match=r"missing column\(s\) \['split'\]"):
        leak_outcome("mf_model", record.summary(), record.keys, split.drop(columns="split"))
