"""What a fitted component trained on, and the check that it saw no held-out interaction.

Every learned part (the fusion MLP, each model) fits on the ``train`` rows of
``interaction_splits`` and nothing else. Each records what it was fitted on (``TrainedOn``):

* ``interactions``: how many (user, item, ts) rows;
* ``fingerprint``: an order-independent digest of that set (the sum of 64-bit row hashes,
  modulo 2^64), equal for equal sets whatever their order;
* ``latest_ts_digest``: the same kind of digest of each user's latest interaction time seen,
  which moves as soon as a component sees anything later than a user's train rows;

and keeps the row hashes themselves (``trained_on.npy``, sorted), so that a check can say which
held-out rows it saw rather than only that the digests differ. ``leak_outcome`` compares a
record with the split: it fails when any validation or test row was seen, naming the
component, how many and an example, and when the record is not exactly the split's train rows
(a component fitted on another split, or on part of this one). 64-bit hashes of 1.7M rows
collide with a probability of about 1e-7.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys_assets.core.outcomes import MAX_OFFENDING, CheckOutcome

#: The columns a record is computed from.
ROW_COLUMNS = ("user_id", "item_id", "ts")


def timestamps_ns(ts: pd.Series) -> np.ndarray:
    """``ts`` as int64 nanoseconds since the epoch (UTC), whatever its unit and time zone."""
    return pd.to_datetime(ts, utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64)


def row_keys(user_ids: pd.Series, item_ids: pd.Series, ts_ns: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each (user, item, ts) row: ids as strings, times in nanoseconds."""
    frame = pd.DataFrame(
        {"user": user_ids.astype(str).to_numpy(), "item": item_ids.astype(str).to_numpy(), "ts": ts_ns}
    )
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(np.uint64)


def _digest(values: np.ndarray) -> str:
    # uint64 addition wraps: the sum is the set's digest modulo 2^64, in any order.
    return f"{int(values.sum(dtype=np.uint64)):016x}"


def _latest_ts_digest(user_ids: pd.Series, ts_ns: np.ndarray) -> str:
    latest = pd.Series(ts_ns).groupby(user_ids.astype(str).to_numpy()).max()
    keys = pd.util.hash_pandas_object(
        pd.DataFrame({"user": latest.index.to_numpy(), "ts": latest.to_numpy()}), index=False
    )
    return _digest(keys.to_numpy(np.uint64))


@dataclass(frozen=True)
class TrainedOn:
    """The rows a component was fitted on: their sorted hashes and the per-user latest-time digest."""

    keys: np.ndarray
    latest_ts_digest: str

    @classmethod
    def from_rows(cls, user_ids: pd.Series, item_ids: pd.Series, ts: pd.Series) -> TrainedOn:
        ts_ns = timestamps_ns(ts)
        return cls(np.sort(row_keys(user_ids, item_ids, ts_ns)), _latest_ts_digest(user_ids, ts_ns))

    @classmethod
    def of_frame(cls, rows: pd.DataFrame) -> TrainedOn:
        return cls.from_rows(rows["user_id"], rows["item_id"], rows["ts"])

    @property
    def interactions(self) -> int:
        return len(self.keys)

    @property
    def fingerprint(self) -> str:
        return _digest(self.keys)

    def summary(self, keys_uri: str | None = None) -> dict[str, Any]:
        """What a component's metadata file holds (the hashes are in ``keys_uri``)."""
        summary: dict[str, Any] = {
            "interactions": self.interactions,
            "fingerprint": self.fingerprint,
            "latest_ts_digest": self.latest_ts_digest,
        }
        return summary | ({"keys_uri": keys_uri} if keys_uri else {})


def leak_outcome(
    component: str,
    summary: dict[str, Any],
    keys: np.ndarray,
    splits: pd.DataFrame,
    allowed: tuple[str, ...] = ("train",),
) -> CheckOutcome:
    """Whether ``component`` (its record: ``summary`` and the row hashes ``keys``) was fitted on
    exactly the rows of ``splits`` (``user_id, item_id, ts, split``) in the ``allowed`` splits:
    train for every fitted component, train and validation for the ranker (it learns from
    validation labels; test is what it is judged on)."""
    missing = [c for c in (*ROW_COLUMNS, "split") if c not in splits.columns]
    if missing:
        raise ValueError(f"interaction_splits: missing column(s) {missing}")
    if len(keys) != int(summary.get("interactions", -1)) or _digest(keys) != summary.get("fingerprint"):
        return CheckOutcome(
            False,
            f"{component}: its record of {summary.get('interactions')} interactions (fingerprint "
            f"{summary.get('fingerprint')}) does not match its {len(keys):,} row hashes; rematerialize it",
            len(keys),
            "a consistent record",
        )
    ts_ns = timestamps_ns(splits["ts"])
    split_keys = row_keys(splits["user_id"], splits["item_id"], ts_ns)
    split = splits["split"].astype(str).to_numpy()
    seen = np.isin(split_keys, keys)
    is_train = np.isin(split, allowed)
    seen_val = int((seen & (split == "val")).sum()) if "val" not in allowed else 0
    seen_test = int((seen & (split == "test")).sum())
    rows = " and ".join({"train": "train", "val": "validation"}.get(a, a) for a in allowed)
    unseen_train = int((~seen & is_train).sum())
    foreign = int(np.isin(keys, split_keys, invert=True).sum())
    # The split's own record, from the hashes above (not hashed again).
    train = TrainedOn(
        np.sort(split_keys[is_train]), _latest_ts_digest(splits["user_id"][is_train], ts_ns[is_train])
    )
    metadata = {
        "component": component,
        "interactions": len(keys),
        "split_train_interactions": train.interactions,
        "validation_seen": seen_val,
        "test_seen": seen_test,
        "train_not_seen": unseen_train,
        "not_in_split": foreign,
        "fingerprint": summary["fingerprint"],
        "split_train_fingerprint": train.fingerprint,
        "latest_ts_digest": summary.get("latest_ts_digest"),
        "split_train_latest_ts_digest": train.latest_ts_digest,
    }
    leaked = ~is_train & seen
    offending = splits.loc[leaked, [*ROW_COLUMNS, "split"]].head(MAX_OFFENDING).astype(str)
    if seen_val or seen_test:
        example = offending.iloc[0]
        message = (
            f"LEAK: {component} was fitted on {seen_val:,} validation and {seen_test:,} test "
            f"interaction(s) of interaction_splits (e.g. user {example['user_id']!r}, item "
            f"{example['item_id']!r} at {example['ts']}, a {example['split']} row); it must fit on the "
            f"{train.interactions:,} {rows} rows only"
        )
    elif unseen_train or foreign:
        message = (
            f"{component} was not fitted on this split's {rows} rows: {unseen_train:,} of its "
            f"{train.interactions:,} {rows} rows unseen, {foreign:,} rows not in the split at all "
            "(fitted on another split?); rematerialize it"
        )
    else:
        message = (
            f"{component} was fitted on exactly the split's {train.interactions:,} {rows} interactions "
            f"(fingerprint {train.fingerprint}); no "
            + ("test" if "val" in allowed else "validation or test")
            + " interaction seen"
        )
    return CheckOutcome(
        not (seen_val or seen_test or unseen_train or foreign),
        message,
        seen_val + seen_test,
        0,
        offending=offending,
        metadata=metadata,
    )
