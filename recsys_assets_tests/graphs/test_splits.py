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


def test_repeated_pairs_collapse_to_their_first_event_with_a_count() -> None:
    # u re-reviews a at day 2 (rating 1) and day 4: three events, one pair, held at its first.
    frame = _user("u", 6, ["a", "b", "a", "c", "a", "d"]).assign(rating=[5.0, 4.0, 1.0, 3.0, 2.0, 5.0])
    result = split_interactions(pd.concat([frame, _user("v", 3)]))
    assert result.repeated_pairs == 2
    u = result.frame[result.frame["user_id"] == "u"]
    assert u["item_id"].tolist() == ["a", "b", "c", "d"]
    first = u.iloc[0]
    assert (first["ts"], first["rating"], first["events"]) == (T0, 5.0, 3)
    assert first["last_ts"] == T0 + pd.Timedelta(days=4)
    assert u["events"].tolist() == [3, 1, 1, 1]
    # The split is over the 4 pairs: a re-reviewed item can never be a held-out target it already had.
    assert _splits_of(result.frame, "u") == ["train", "train", "val", "test"]
    assert result.frame["events"].sum() == 9 and len(result.frame) == 7


def test_missing_columns_are_named() -> None:
    with pytest.raises(ValueError, match=r"interactions lack column\(s\) \['ts'\]"):
        split_interactions(pd.DataFrame({"user_id": ["u"], "item_id": ["i"]}))
