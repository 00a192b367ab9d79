"""The split rule every model and metric uses, by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys_assets.core.graphs.splits import split_interactions

T0 = pd.Timestamp("2013-01-01", tz="UTC")


def _user(user: str, n: int, items: list[str] | None = None) -> pd.DataFrame:
    items = items or [f"{user}-{i:02d}" for i in range(n)]
    return pd.DataFrame(
        {
            "user_id": user,
            "item_id": items,
            "rating": 5.0,
            "ts": [T0 + pd.Timedelta(days=i) for i in range(n)],
        }
    )


def _splits_of(frame: pd.DataFrame, user: str) -> list[str]:
    return frame[frame["user_id"] == user]["split"].astype(str).tolist()


def test_split_rule_by_hand() -> None:
    frame = pd.concat([_user("n2", 2), _user("n3", 3), _user("n10", 10), _user("n25", 25)])
    result = split_interactions(frame.sample(frac=1, random_state=0))  # input order must not matter
    out = result.frame
    assert _splits_of(out, "n2") == ["train", "train"]
    assert _splits_of(out, "n3") == ["train", "val", "test"]
    assert _splits_of(out, "n10") == ["train"] * 8 + ["val", "test"]
    assert _splits_of(out, "n25") == ["train"] * 21 + ["val"] * 2 + ["test"] * 2
    # The held-out rows are the user's latest.
    last = out[out["user_id"] == "n25"].tail(2)
    assert last["item_id"].tolist() == ["n25-23", "n25-24"]
    assert result.repeated_pairs == 0 and result.item_order == "string"


def test_ties_in_time_order_by_item_id_numerically_when_all_ids_are_integers() -> None:
    same_time = pd.DataFrame(
        {"user_id": "u", "item_id": ["10", "9", "100"], "rating": 4.0, "ts": [T0, T0, T0]}
    )
    result = split_interactions(same_time)
    assert result.item_order == "integer"
    assert result.frame["item_id"].tolist() == ["9", "10", "100"]
    assert result.frame["split"].astype(str).tolist() == ["train", "val", "test"]
    mixed = same_time.assign(item_id=["10", "9", "B1"])
    result = split_interactions(mixed)
    assert result.item_order == "string"
    assert result.frame["item_id"].tolist() == ["10", "9", "B1"]


def test_repeated_pairs_are_kept_and_counted() -> None:
    frame = _user("u", 4, ["a", "b", "a", "c"])
    result = split_interactions(frame)
    assert len(result.frame) == 4 and result.repeated_pairs == 1


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match=r"interactions lack column\(s\) \['ts'\]"):
        split_interactions(pd.DataFrame({"user_id": ["u"], "item_id": ["i"]}))
