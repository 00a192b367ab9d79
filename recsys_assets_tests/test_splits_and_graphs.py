"""The split rule, node maps, user-item weights, kNN graphs and the graph checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from recsys_assets.assets import graphs
from recsys_assets.core.graph_qa import qa_report, report_markdown
from recsys_assets.core.graphs import NodeMaps, build_node_maps, degree_histogram, edge_problems, ui_edges
from recsys_assets.core.knn import knn_graph
from recsys_assets.core.splits import split_interactions
from resources.embeddings import ArtifactStore
from resources.environments import artifact_io_managers
from resources.graph_config import GraphConfig

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


def test_node_maps_round_trip_and_ui_weights() -> None:
    items = pd.Series(["i0", "i1", "i2", "i3"])
    train = pd.DataFrame(
        {"user_id": ["u2", "u1", "u1", "u2", "u2"], "item_id": ["i1", "i0", "i2", "i1", "i3"],
         "rating": [4.0, 5.0, 3.0, 2.0, 3.0]}
    )  # fmt: skip
    maps = build_node_maps(items, train)
    assert maps.users == ["u1", "u2"] and maps.items == ["i0", "i1", "i2", "i3"]
    again = NodeMaps.from_json(maps.to_json())
    assert again == maps
    assert again.item_index(pd.Series(["i3", "i0"])).tolist() == [3, 0]
    with pytest.raises(KeyError, match="item_id 'zz' has no node"):
        again.item_index(pd.Series(["zz"]))
    edges = ui_edges(train, maps)
    # u1 mean 4: 5/4, 3/4. u2 mean 3: (4/3 + 2/3)/2 for the repeated pair (u2, i1), then 3/3.
    got = {
        (int(s), int(d)): round(float(w), 4)
        for s, d, w in zip(edges["src"], edges["dst"], edges["weight"], strict=True)
    }
    assert got == {(0, 0): 1.25, (0, 2): 0.75, (1, 1): 1.0, (1, 3): 1.0}
    assert edges["num_nodes"].tolist() == [2, 4]
    assert edges["recency"].tolist() == [1.0] * 4  # without timestamps every edge counts as latest
    # With timestamps: u1 reviewed i2 then i0; u2 reviewed i1, i3, then i1 again (3 reviews).
    days = pd.to_datetime(["2013-01-05", "2013-01-02", "2013-01-01", "2013-01-09", "2013-01-07"], utc=True)
    timed = ui_edges(train.assign(ts=days), maps)
    pairs = zip(timed["src"].tolist(), timed["dst"].tolist(), strict=True)
    recency = dict(zip(pairs, timed["recency"].tolist(), strict=True))
    assert recency == {(0, 0): 1.0, (0, 2): 0.0, (1, 1): 1.0, (1, 3): 0.5}


def test_edge_problems_catch_each_kind_of_bad_graph() -> None:
    good = edge_problems(np.array([0, 1]), np.array([1, 0]), 2, 2, same_kind=True)
    assert good.ok
    assert edge_problems(np.array([0, 1]), np.array([0, 0]), 2, 2, same_kind=True).self_loops == 1
    assert edge_problems(np.array([0, 0]), np.array([1, 1]), 2, 2, same_kind=True).duplicates == 1
    assert edge_problems(np.array([0, 2]), np.array([1, 0]), 2, 2, same_kind=True).out_of_range == 1
    assert edge_problems(np.array([0]), np.array([-1]), 2, 2, same_kind=False).out_of_range == 1
    # A user-item edge from user 0 to item 0 is not a self loop.
    assert edge_problems(np.array([0]), np.array([0]), 1, 1, same_kind=False).ok


def test_degree_histogram_buckets() -> None:
    hist = dict(degree_histogram(np.array([0, 0, 1, 2, 4, 5, 9, 10, 1500])))
    assert hist["0"] == 2 and hist["1"] == 1 and hist["2-4"] == 2 and hist["5-9"] == 2
    assert hist["10-19"] == 1 and hist[">=1000"] == 1
    assert sum(hist.values()) == 9


def _clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(2, n // 300), dim))
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(scale=0.8, size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _brute_force(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def test_exact_knn_equals_brute_force() -> None:
    x = _clustered(600, 16)
    graph = knn_graph(x, 5, method="exact")
    ids, sims = _brute_force(x, 5)
    assert graph.meta["method"] == "exact" and graph.meta["recall_at_k"] == 1.0
    np.testing.assert_allclose(graph.weight.reshape(600, 5), sims, atol=1e-5)
    # Same neighbour sets (order may differ only between exact ties).
    assert all(set(a) == set(b) for a, b in zip(graph.dst.reshape(600, 5), ids, strict=True))
    assert (graph.src == np.repeat(np.arange(600), 5)).all()
    assert edge_problems(graph.src, graph.dst, 600, 600, same_kind=True).ok


def test_ivf_knn_reaches_its_recall_and_reports_it() -> None:
    x = _clustered(8_000, 32)
    graph = knn_graph(x, 10, exact_max_items=1_000, target_recall=0.95, sample=500)
    assert graph.meta["method"] == "ivf"
    assert graph.meta["nprobe"] >= 4 and graph.meta["nlist"] > 16
    ids, _ = _brute_force(x, 10)
    rows = np.random.default_rng(1).choice(8_000, 500, replace=False)
    found = graph.dst.reshape(8_000, 10)[rows]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, ids[rows], strict=True)])
    assert recall >= 0.95
    assert abs(recall - graph.meta["recall_at_k"]) < 0.03
    assert edge_problems(graph.src, graph.dst, 8_000, 8_000, same_kind=True).ok


def test_knn_needs_more_items_than_k() -> None:
    with pytest.raises(ValueError, match="kNN with k=20 needs more than 20 items, got 5"):
        knn_graph(_clustered(5, 4), 20)


def test_low_recall_fails_the_blocking_check(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    (root / "embeddings").mkdir(parents=True)
    np.save(root / "embeddings" / "txt.npy", _clustered(4_000, 64, seed=2))
    resources = {
        **artifact_io_managers(str(root)),
        "artifacts": ArtifactStore(root=str(root)),
        # IVF with a tuning target far below the floor: the measured recall cannot pass.
        "graph_config": GraphConfig(k=10, exact_max_items=100, target_recall=0.05, recall_floor=0.999),
    }
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [graphs.ii_edges_txt], resources=resources, instance=instance, raise_on_error=False
        )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["ii_edges_txt_valid"].passed
    assert not checks["ii_edges_txt_recall"].passed
    assert checks["ii_edges_txt_recall"].metadata["floor"].value == 0.999
    assert "(ivf, 2000 sampled items vs exact); floor 0.999" in checks["ii_edges_txt_recall"].description


def test_qa_report_reads_sensibly() -> None:
    maps = NodeMaps(["u0", "u1"], ["i0", "i1", "i2"])
    ui = {"src": np.array([0, 0, 1], np.int32), "dst": np.array([0, 1, 1], np.int32)}
    knn = {
        "txt": {"src": np.array([0, 1, 2]), "dst": np.array([1, 2, 0]), "weight": np.array([0.9, 0.8, 0.7])}
    }
    titles = pd.Series(["Headphones A", "Headphones B", "Camera C"])
    report = qa_report(maps, ui, knn, titles, sample_items=2)
    assert report["nodes"] == {"users": 2, "items": 3}
    assert report["edges"] == {"user_item": 3, "item_item_txt": 3}
    assert report["orphan_items"] == {"count": 1, "share": 0.3333, "with_txt_in_edges": 1}
    assert report["problems"]["item_item_txt"] == {"self_loops": 0, "duplicates": 0, "out_of_range": 0}
    assert report["samples"]["txt"]["Headphones A"] == ["Headphones B"]
    assert report["similarity"]["txt"]["median"] == 0.8
    markdown = report_markdown(report)
    assert "| item_item_txt | 0 | 0 | 0 |" in markdown
    assert "| Headphones A | Headphones B |" in markdown
