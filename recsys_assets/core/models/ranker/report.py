"""What a person reads of a fitted ranker: each retriever's recall on validation (and the
union's, the ranker's ceiling), the settings tried, and the features it leans on."""

from __future__ import annotations

from typing import Any

from recsys_assets.core.markdown import Markdown, image, markdown_table
from recsys_assets.core.plots import png, pyplot


def recall_markdown(recall: list[dict[str, Any]], per_source: int) -> Markdown:
    """Per retriever and for the union, on validation: recall at N, candidates per user, and
    the validation items only that retriever found."""
    rows = [
        [r["source"], f"{r['recall']:.4f}", f"{r['per_user']:.1f}",
         "" if r["source"] == "union" else f"{r['targets_only_it_found']:,}"]
        for r in recall
    ]  # fmt: skip
    return markdown_table(
        [f"source (top {per_source} each)", "validation recall", "candidates per user", "found by it alone"],
        rows,
    )


def tried_markdown(tried: list[dict[str, Any]]) -> Markdown:
    keys = [k for k in tried[0] if k not in ("fold_ndcg@20", "rounds")]
    rows = [[*(str(t[k]) for k in keys), str(t["rounds"]), f"{t['fold_ndcg@20']:.4f}"] for t in tried]
    return markdown_table([*keys, "rounds", "mean fold NDCG@20 (candidates)"], rows)


def importance_markdown(
    importance: list[list[Any]], descriptions: dict[str, str], rows: int = 20
) -> Markdown:
    """The features with the largest share of the gain, described."""
    shown = importance[:rows]
    return markdown_table(
        ["feature", "share of gain", "what it is"],
        [[n, f"{g:.3f}", descriptions.get(n, "")] for n, g in shown],
    )


def importance_plot(importance: list[list[Any]], rows: int = 20) -> Markdown:
    plt = pyplot()
    shown = importance[:rows][::-1]
    figure, axes = plt.subplots(figsize=(6, 0.28 * len(shown) + 1))
    axes.barh([n for n, _ in shown], [g for _, g in shown], color="#4c72b0")
    axes.set_xlabel("share of the ranker's gain")
    axes.set_title("What the ranker leans on")
    return image("feature importance", png(figure))
