"""Cosine kNN graphs with FAISS: exact equals brute force, IVF reaches and reports its recall,
and a graph below the recall floor fails its blocking check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dagster import DagsterInstance, materialize

from recsys_assets.core.graphs.edges import edge_problems
from recsys_assets.core.graphs.knn import knn_graph
from recsys_assets.core.io.artifacts import TEXT_EMBEDDINGS, Artifacts
from recsys_assets.core.io.codecs import save
from recsys_assets.defs.assets import graphs
from recsys_assets.settings.graphs import KnnConfig
from recsys_assets_tests.conftest import make_resources, make_settings


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
    graph = knn_graph(x, KnnConfig(k=5, method="exact"))
    ids, sims = _brute_force(x, 5)
    assert graph.meta["method"] == "exact" and graph.meta["recall_at_k"] == 1.0
    np.testing.assert_allclose(graph.weight.reshape(600, 5), sims, atol=1e-5)
    # Same neighbour sets (order may differ only between exact ties).
    assert all(set(a) == set(b) for a, b in zip(graph.dst.reshape(600, 5), ids, strict=True))
    assert (graph.src == np.repeat(np.arange(600), 5)).all()
    assert edge_problems(graph.src, graph.dst, 600, 600, same_kind=True).ok


def test_ivf_knn_reaches_its_recall_and_reports_it() -> None:
    x = _clustered(8_000, 32)
    graph = knn_graph(x, KnnConfig(k=10, exact_max_items=1_000, target_recall=0.95, sample=500))
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
        knn_graph(_clustered(5, 4), KnnConfig(k=20))


def test_low_recall_fails_the_blocking_check(tmp_path: Path) -> None:
    # IVF with a tuning target far below the floor: the measured recall cannot pass.
    knn = {"k": 10, "exact_max_items": 100, "target_recall": 0.05}
    settings = make_settings(tmp_path, graphs={"knn": knn, "recall_floor": 0.999})
    save(Artifacts(settings.artifacts.root).uri(TEXT_EMBEDDINGS), _clustered(4_000, 64, seed=2))
    resources = make_resources(settings)
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [graphs.ii_edges_txt], resources=resources, instance=instance, raise_on_error=False
        )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["ii_edges_txt_valid"].passed
    assert not checks["ii_edges_txt_recall"].passed
    assert checks["ii_edges_txt_recall"].metadata["floor"].value == 0.999
    assert "(ivf, 2000 sampled items vs exact); floor 0.999" in checks["ii_edges_txt_recall"].description
