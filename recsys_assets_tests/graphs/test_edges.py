"""Node maps, user-item edge weights and recency, the structural edge checks, and the QA report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_assets.core.graphs.edges import degree_histogram, edge_problems, ui_edges
from recsys_assets.core.graphs.node_maps import NodeMaps, build_node_maps
from recsys_assets.core.graphs.qa import qa_report, report_markdown


def test_node_maps_round_trip_and_ui_weights() -> None:
    items = pd.Series(["i0", "i1", "i2", "i3"])
    train = pd.DataFrame(
        {"user_id": ["u2", "u1", "u1", "u2", "u2"], "item_id": ["i1", "i0", "i2", "i3", "i0"],
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
    # u1 mean 4: 5/4, 3/4. u2 mean 3: 4/3, 2/3, 3/3.
    got = {
        (int(s), int(d)): round(float(w), 4)
        for s, d, w in zip(edges["src"], edges["dst"], edges["weight"], strict=True)
    }
    assert got == {(0, 0): 1.25, (0, 2): 0.75, (1, 0): 1.0, (1, 1): 1.3333, (1, 3): 0.6667}
    assert edges["num_nodes"].tolist() == [2, 4]
    assert edges["recency"].tolist() == [1.0] * 5  # without timestamps every edge counts as latest
    # With timestamps: u1 reviewed i2 then i0; u2 reviewed i1, i0, then i3.
    days = pd.to_datetime(["2013-01-01", "2013-01-05", "2013-01-02", "2013-01-09", "2013-01-07"], utc=True)
    timed = ui_edges(train.assign(ts=days), maps)
    pairs = zip(timed["src"].tolist(), timed["dst"].tolist(), strict=True)
    recency = dict(zip(pairs, timed["recency"].tolist(), strict=True))
    assert recency == {(0, 0): 1.0, (0, 2): 0.0, (1, 0): 0.5, (1, 1): 0.0, (1, 3): 1.0}
    # The split collapses repeated pairs, so a repeat here is a stale split: the check names it.
    repeated = ui_edges(pd.concat([train, train.iloc[[0]]]), maps)
    assert edge_problems(repeated["src"], repeated["dst"], 2, 4, same_kind=False).duplicates == 1


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
