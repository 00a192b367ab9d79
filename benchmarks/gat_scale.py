"""The GAT at the reference scale: memory, seconds per epoch, full-ranking evaluation time.

    python -m benchmarks.gat_scale        # writes the "gat_scale" section of benchmarks/RESULTS.md

The graph has the Amazon Electronics shape (192,403 users, 498,196 items, 1,689,116
interactions over 63,001 reviewed items; k = 20 item-item kNN edges over 128-d fused-like
vectors, built by the asset's own kNN code) with synthetic content (the reference
catalogue's embeddings take 40 min to compute on 2 cores). Training samples neighbourhoods
(``fanouts``); validation during training watches a fixed sample of users; the final
evaluation ranks every item for every user with a held-out item, on validation and test.
Runs in a child process so its peak RSS is its own. Targets: peak RSS <= 16 GB and the
full-ranking evaluation <= 10 min.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

from benchmarks.graphs import INTERACTIONS, ITEMS, REVIEWED, USERS, vectors
from benchmarks.results import machine, now, verdict, write_section

CONFIG: dict[str, Any] = {
    "fanouts": [10, 5],
    "val_users": 5_000,
    "epochs": 1,
    "patience": 5,
    "batch_size": 8192,
}
TARGET_RSS_GB, TARGET_EVAL_S = 16.0, 600.0


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child() -> dict[str, float]:
    import pandas as pd

    from recsys_assets.core.graphs.edges import ui_edges
    from recsys_assets.core.graphs.knn import knn_graph
    from recsys_assets.core.graphs.node_maps import build_node_maps
    from recsys_assets.core.graphs.splits import split_interactions
    from recsys_assets.core.models.evaluation import evaluate, fixed
    from recsys_assets.core.models.gat.graph import build_graph
    from recsys_assets.core.models.gat.train import train_gat
    from recsys_assets.core.models.metrics import dot_scorer
    from recsys_assets.core.models.training_data import training_data
    from recsys_assets.settings.graphs import KnnConfig
    from recsys_assets.settings.models import GATConfig

    rng = np.random.default_rng(0)
    users = np.array([f"A{i:013d}" for i in range(USERS)], dtype=object)
    items = np.array([f"B{i:09d}" for i in range(ITEMS)], dtype=object)
    per_user = 5 + rng.multinomial(INTERACTIONS - 5 * USERS, np.full(USERS, 1 / USERS))
    # Power-law popularity over the reviewed items, as in the real file.
    popularity = 1.0 / np.arange(1, REVIEWED + 1) ** 0.8
    frame = pd.DataFrame(
        {
            "user_id": np.repeat(users, per_user),
            "item_id": items[rng.choice(REVIEWED, INTERACTIONS, p=popularity / popularity.sum())],
            "rating": rng.integers(1, 6, INTERACTIONS).astype(float),
            "ts": pd.to_datetime(
                pd.Series(rng.integers(1_200_000_000, 1_400_000_000, INTERACTIONS)), unit="s"
            ),
        }
    ).drop_duplicates(["user_id", "item_id"])
    split = split_interactions(frame).frame
    maps = build_node_maps(pd.Series(items), split[split["split"] == "train"])
    data = training_data(split, maps)
    features = vectors(128)
    start = time.perf_counter()
    ii = knn_graph(features, KnnConfig(k=20)).to_npz()
    knn_s = time.perf_counter() - start
    graph = build_graph(ui_edges(split[split["split"] == "train"], maps), data.n_users, data.n_items, ii)
    setup_rss = rss_gb()
    epochs: list[float] = []
    last = [time.perf_counter()]

    def progress(record: dict[str, float]) -> None:
        now_s = time.perf_counter()
        epochs.append(now_s - last[0])
        last[0] = now_s
        print(json.dumps(record), file=sys.stderr, flush=True)

    fit = train_gat(data.train, data.val, features, graph, GATConfig(**CONFIG), progress)
    train_rss = rss_gb()
    start = time.perf_counter()
    marks: list[float] = []

    def eval_progress(text: str) -> None:
        marks.append(time.perf_counter())
        print(text, file=sys.stderr, flush=True)

    metrics = evaluate(fixed(dot_scorer(fit.users, fit.items)), data, progress=eval_progress)
    eval_s, test_eval_s = time.perf_counter() - start, marks[1] - marks[0]
    return {
        "users": data.n_users,
        "items": data.n_items,
        "train_edges": len(data.train.indices),
        "ii_edges": len(ii["src"]),
        "knn_s": knn_s,
        "seconds_per_epoch": float(np.mean(epochs)),
        "epochs": len(epochs),
        "eval_s": eval_s,
        "test_eval_s": test_eval_s,
        "val_eval_users": metrics["val"]["users"],
        "readout": fit.readout,
        "eval_users": metrics["test"]["users"],
        "test_ndcg20": metrics["test"]["ndcg@20"],
        "setup_rss_gb": setup_rss,
        "train_rss_gb": train_rss,
        "peak_rss_gb": rss_gb(),
    }


def main() -> None:
    command = [sys.executable, "-m", "benchmarks.gat_scale", "child"]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    eval_ok, rss_ok = verdict(r["test_eval_s"] <= TARGET_EVAL_S), verdict(r["peak_rss_gb"] <= TARGET_RSS_GB)
    lines = [
        "## The GAT at the reference scale",
        "",
        "- command: `make bench-gat-scale` (`python -m benchmarks.gat_scale`)",
        f"- date: {now()}",
        f"- machine: {machine()}",
        f"- graph: {r['users']:,} users, {r['items']:,} items, {r['train_edges']:,} train user-item edges "
        f"(both ways), {r['ii_edges']:,} item-item kNN edges (built in {r['knn_s']:.0f} s)",
        f"- settings: `{json.dumps(CONFIG)}`, other `GATConfig` defaults (hidden 64, 2 GATv2 layers, "
        "sampled softmax, recency readout chosen on validation)",
        "",
        "| measure | value | target |",
        "| --- | ---: | --- |",
        f"| seconds per epoch (sampled training + validation on {CONFIG['val_users']:,} users) "
        f"| {r['seconds_per_epoch']:.0f} | |",
        f"| full-ranking evaluation of every test user ({r['eval_users']:,.0f} users x "
        f"{r['items']:,} items, train and validation items excluded) "
        f"| {r['test_eval_s']:.0f} s | <= {TARGET_EVAL_S:.0f} s: {eval_ok} |",
        f"| full-ranking evaluation, validation ({r['val_eval_users']:,.0f} users) + test, with the "
        f"slices | {r['eval_s']:.0f} s | |",
        f"| peak RSS (graph {r['setup_rss_gb']:.1f} GB, after training {r['train_rss_gb']:.1f} GB) "
        f"| {r['peak_rss_gb']:.1f} GB | <= {TARGET_RSS_GB:.0f} GB: {rss_ok} |",
        "",
        f"Test NDCG@20 {r['test_ndcg20']:.4f} after {r['epochs']} epochs (synthetic interactions carry no "
        "taste; this run measures cost, not quality).",
    ]
    write_section("gat_scale", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1:] == ["child"]:
        print(json.dumps(child()))
    else:
        main()
