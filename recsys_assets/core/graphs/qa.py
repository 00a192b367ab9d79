"""The graph QA report: what a person checks before training starts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys_assets.core.graphs.edges import degree_histogram, edge_problems
from recsys_assets.core.graphs.node_maps import NodeMaps
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.plots import png, pyplot


def qa_report(
    maps: NodeMaps,
    ui: dict[str, np.ndarray],
    knn: dict[str, dict[str, np.ndarray]],
    titles: pd.Series,
    sample_items: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Counts, degree histograms, orphans, problems, similarity spread and sample neighbours."""
    n_users, n_items = len(maps.users), len(maps.items)
    user_degree = np.bincount(ui["src"], minlength=n_users)
    item_degree = np.bincount(ui["dst"], minlength=n_items)
    orphans = item_degree == 0
    report: dict[str, Any] = {
        "nodes": {"users": n_users, "items": n_items},
        "edges": {
            "user_item": len(ui["src"]),
            **{f"item_item_{name}": len(g["src"]) for name, g in knn.items()},
        },
        "degree_histograms": {
            "user_item_per_user": degree_histogram(user_degree),
            "user_item_per_item": degree_histogram(item_degree),
        },
        "orphan_items": {"count": int(orphans.sum()), "share": round(float(orphans.mean()), 4)},
        "problems": {
            "user_item": vars(edge_problems(ui["src"], ui["dst"], n_users, n_items, same_kind=False)),
        },
        "similarity": {},
        "samples": {},
    }
    rng = np.random.default_rng(seed)
    reviewed = np.flatnonzero(~orphans)
    picks = rng.choice(
        reviewed if len(reviewed) else np.arange(n_items), size=min(sample_items, n_items), replace=False
    )
    for name, graph in knn.items():
        in_degree = np.bincount(graph["dst"], minlength=n_items)
        report["degree_histograms"][f"item_item_{name}_in"] = degree_histogram(in_degree)
        report["problems"][f"item_item_{name}"] = vars(
            edge_problems(graph["src"], graph["dst"], n_items, n_items, same_kind=True)
        )
        # Orphans reached by the kNN graph: cold items still get neighbours and are neighbours.
        report["orphan_items"][f"with_{name}_in_edges"] = int((orphans & (in_degree > 0)).sum())
        weights = graph["weight"]
        report["similarity"][name] = {
            q: round(float(np.quantile(weights, p)), 4) if len(weights) else None
            for q, p in [("min", 0.0), ("p10", 0.1), ("median", 0.5), ("p90", 0.9), ("max", 1.0)]
        }
        report["samples"][name] = {
            str(titles.iloc[i]): [str(titles.iloc[j]) for j in graph["dst"][graph["src"] == i][:5]]
            for i in picks
        }
    return report


def report_markdown(report: dict[str, Any]) -> str:
    """The report as markdown for the Dagster UI."""
    orphans = report["orphan_items"]
    parts = [
        "**Nodes** " + ", ".join(f"{k}: {v:,}" for k, v in report["nodes"].items()),
        "**Edges** " + ", ".join(f"{k}: {v:,}" for k, v in report["edges"].items()),
        f"**Items with no user edge** {orphans['count']:,} ({orphans['share']:.1%}); "
        + ", ".join(f"{k}: {v:,}" for k, v in report["orphan_items"].items() if k.startswith("with_")),
        "### Problems (all must be 0)",
        markdown_table(
            ["edges", "self loops", "duplicates", "out of range"],
            [[k, v["self_loops"], v["duplicates"], v["out_of_range"]] for k, v in report["problems"].items()],
        ),
        "### Degree histograms",
    ]
    histograms = report["degree_histograms"]
    buckets = [label for label, _ in next(iter(histograms.values()))]
    parts.append(
        markdown_table(
            ["degree", *histograms], [[b, *(dict(h)[b] for h in histograms.values())] for b in buckets]
        )
    )
    parts.append("### Similarity of kNN edges")
    sims = report["similarity"]
    parts.append(
        markdown_table(["graph", *next(iter(sims.values()), {})], [[k, *v.values()] for k, v in sims.items()])
    )
    for name, samples in report["samples"].items():
        parts.append(f"### Sample neighbours ({name})")
        parts.append(
            markdown_table(["item", "nearest items"], [[item, "; ".join(n)] for item, n in samples.items()])
        )
    return "\n\n".join(parts)


def degree_plot(report: dict[str, Any]) -> bytes:
    """The degree histograms as bar charts, one panel each, counts on a log scale (PNG)."""
    plt = pyplot()
    histograms = report["degree_histograms"]
    figure, axes = plt.subplots(1, len(histograms), figsize=(3.2 * len(histograms), 2.8), squeeze=False)
    for axis, (name, histogram) in zip(axes[0], histograms.items(), strict=True):
        labels, counts = zip(*histogram, strict=True)
        axis.bar(range(len(labels)), [max(c, 0) for c in counts], color="tab:blue")
        axis.set_xticks(range(len(labels)), labels, rotation=60, fontsize=6)
        axis.set_yscale("symlog")  # empty buckets stay visible at 0
        axis.set_title(name.replace("_", " "), fontsize=8)
        axis.set_xlabel("degree", fontsize=7)
        axis.tick_params(axis="y", labelsize=6)
    axes[0][0].set_ylabel("nodes", fontsize=7)
    return png(figure)
