"""The graph assets in the materialized graph: kNN neighbours follow the content, every edge
check passes, and the split and user-item edges agree."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.codecs import read_json, read_npz, read_parquet
from recsys_assets_tests.pipeline.conftest import SMALL, Pipeline

pytestmark = pytest.mark.xdist_group("pipeline")


def test_knn_neighbours_share_the_category(pipeline: Pipeline) -> None:
    """Neighbours of a headphones item are headphones, in both item-item graphs."""
    pipeline.require("ii_edges_txt", "ii_edges_fused")
    items = read_parquet(pipeline.artifacts.uri(catalogue.ITEMS))
    leaf = items["categories"].map(lambda c: c[-1]).to_numpy()
    for name, artifact in catalogue.II_EDGES.items():
        graph = read_npz(pipeline.artifacts.uri(artifact))
        assert len(graph["src"]) == 20 * len(items)
        headphones = np.flatnonzero(leaf == "Headphones")
        same = leaf[graph["dst"][np.isin(graph["src"], headphones)]] == "Headphones"
        assert same.mean() > 0.8, (name, same.mean())


def test_split_edges_and_qa_report_agree(pipeline: Pipeline) -> None:
    pipeline.require("interaction_splits", "ui_edges", "graph_qa_report")
    artifacts = pipeline.artifacts
    items = read_parquet(artifacts.uri(catalogue.ITEMS), ["item_id"])
    report = read_json(artifacts.uri(catalogue.GRAPH_QA))
    assert report["nodes"]["items"] == len(items)
    assert all(v == 0 for problems in report["problems"].values() for v in problems.values())
    splits = read_parquet(artifacts.uri(catalogue.SPLITS))
    assert len(splits) == SMALL["n_reviews"]
    ui = read_npz(artifacts.uri(catalogue.UI_EDGES))
    assert len(ui["src"]) == int((splits["split"] == "train").sum()) == report["edges"]["user_item"]
    metadata = pipeline.metadata["graph_qa_report"]
    assert metadata["report"].value.startswith("**Nodes** users: ")
    plot = metadata["degree_histograms"].value.removeprefix("![degree histograms](data:image/png;base64,")
    assert base64.b64decode(plot.removesuffix(")"))[:4] == b"\x89PNG"
    # Sample neighbours read by display name: none blank, though some items have no title.
    samples = [(item, near) for by_item in report["samples"].values() for item, near in by_item.items()]
    named = [name for item, near in samples for name in (item, *near)]
    assert named and all(named)


def test_every_graph_check_passes(pipeline: Pipeline) -> None:
    pipeline.require("ui_edges", "ii_edges_txt", "ii_edges_fused")
    graph_checks = {n: e for n, e in pipeline.checks.items() if n.startswith(("ui_", "ii_"))}
    assert sorted(graph_checks) == [
        "ii_edges_fused_recall", "ii_edges_fused_valid", "ii_edges_txt_recall", "ii_edges_txt_valid",
        "ui_edges_valid",
    ]  # fmt: skip
    assert all(e.passed for e in graph_checks.values())
