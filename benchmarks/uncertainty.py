"""What the intervals cost: eval_report with and without them, and the bootstrap at the reference shape.

    python -m benchmarks.uncertainty        # make bench-uncertainty (after make materialize)

1. The synthetic default (``data/artifacts`` of ``make materialize``): the ``eval_report`` job's
   own work (load the split, evaluate every model on validation and test, resample, compare,
   write the report) timed in this process with the default 1,000 resamples and with intervals
   off (``resamples`` 0), three times each, alternating; Dagster's start-up is the same either
   way, so leaving it out makes the ratio stricter. Target: at most 1.2x.
2. The reference shape (192,403 users, as the 2014 Electronics 5-core file): per-user metrics of
   six models on validation and test drawn at random (zero-inflated, as NDCG is), then what
   the report adds to an evaluation: the shared resamples, every interval (4 metrics and 4
   slices), every model against the served one, every pair, and the promotion decision.
   Target: within 10 minutes on 2 cores.
"""

from __future__ import annotations

import logging
import resource
import statistics
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks.results import machine, now, verdict, write_section
from recsys_assets.core.markdown import markdown_table

REFERENCE_USERS = 192_403
MODELS = ("popularity", "itemknn", "ease", "mf", "lightgcn", "gat")
SLICES = ("cold_start", "head", "torso", "tail")


def time_eval_report(resamples: int) -> float:
    """Seconds of the eval_report job's run on the local artifacts, with ``resamples``."""
    from recsys_assets.core.io.artifacts import Artifacts
    from recsys_assets.defs.assets.models import evaluate_params
    from recsys_assets.pipes import evaluate
    from recsys_assets.settings import load_settings

    tree = load_settings().with_changes({"models": {"evaluation": {"resamples": resamples}}})
    params = evaluate_params(Artifacts(tree.artifacts.root), tree)
    pipes = SimpleNamespace(log=logging.getLogger("bench"), run_id="bench-uncertainty")
    started = time.perf_counter()
    evaluate.run(params, pipes)  # type: ignore[arg-type]
    return time.perf_counter() - started


def synthetic_scores(users: int, seed: int) -> dict[str, Any]:
    """Per-user metrics of every model on one split: mostly zeros, the rest spread in (0, 1]."""
    from recsys_assets.core.models.evaluation import SplitScores

    rng = np.random.default_rng(seed)
    out = {}
    for k, model in enumerate(MODELS):
        hit = rng.random(users) < 0.05 + 0.01 * k
        values = {
            m: np.where(hit, rng.random(users), 0.0) for m in ("ndcg@20", "recall@20", "ndcg@10", "recall@10")
        }
        slices = {s: (rng.random(users) < 0.3, np.where(hit, rng.random(users), 0.0)) for s in SLICES}
        out[model] = SplitScores(np.arange(users), values, slices)
    return out


def reference_shape(resamples: int) -> dict[str, float]:
    """Seconds of each part of the report's uncertainty at 192k users."""
    from recsys_assets.core.models.promotion import decide
    from recsys_assets.core.models.report import pairwise, with_uncertainty
    from recsys_assets.core.models.uncertainty import Resampled, split_columns

    scores = {"val": synthetic_scores(REFERENCE_USERS, 0), "test": synthetic_scores(REFERENCE_USERS, 1)}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    resampled = {
        split: Resampled.of(split_columns(scores[split]), resamples, offset, 0.95)
        for offset, split in enumerate(("val", "test"))
    }
    seconds["resample (val and test, 6 models x 8 columns)"] = time.perf_counter() - started
    models: dict[str, dict[str, Any]] = {
        m: {
            "kind": "embedding",
            **{
                split: {
                    "ndcg@20": float(scores[split][m].values["ndcg@20"].mean()),
                    "slices": {s: {} for s in SLICES},
                }
                for split in ("val", "test")
            },
        }
        for m in MODELS
    }
    started = time.perf_counter()
    decision = decide(models, resampled["val"], cost_order=MODELS)
    seconds["promotion decision"] = time.perf_counter() - started
    started = time.perf_counter()
    with_uncertainty(models, resampled, decision.served)
    pairwise(models, resampled)
    seconds["intervals, comparisons with the served model, every pair"] = time.perf_counter() - started
    return seconds


def main() -> None:
    runs: dict[int, list[float]] = {1000: [], 0: []}
    time_eval_report(0)  # warm: imports, the first read of every file
    for _ in range(3):
        for resamples, seconds in runs.items():
            seconds.append(time_eval_report(resamples))
    with_ci, without = statistics.median(runs[1000]), statistics.median(runs[0])
    ratio = with_ci / without
    parts = reference_shape(1000)
    total = sum(parts.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    lines = [
        "## The cost of the intervals",
        "",
        "- command: `make bench-uncertainty` (`python -m benchmarks.uncertainty`, after `make materialize`)",
        f"- date: {now()}",
        f"- machine: {machine()}",
        "- intervals: percentile bootstrap over users, 1,000 resamples shared by every model (paired), "
        "per split; paired t-tests, Holm-corrected",
        "",
        "Synthetic default (`data/artifacts`), the eval_report job's own work, 3 runs each, alternating:",
        "",
        markdown_table(
            ["eval_report", "runs (s)", "median s"],
            [
                [
                    "with intervals (1,000 resamples)",
                    ", ".join(f"{s:.1f}" for s in runs[1000]),
                    f"{with_ci:.1f}",
                ],
                ["without (resamples 0)", ", ".join(f"{s:.1f}" for s in runs[0]), f"{without:.1f}"],
            ],
        ),
        "",
        f"Target, at most 1.2x the time without intervals: {verdict(ratio <= 1.2)} ({ratio:.2f}x).",
        "",
        f"Reference shape ({REFERENCE_USERS:,} users, 6 models, validation and test), what the report adds "
        "to the evaluation:",
        "",
        markdown_table(["part", "s"], [[name, f"{s:.1f}"] for name, s in parts.items()]),
        "",
        f"Target, within 10 minutes on 2 cores: {verdict(total <= 600)} ({total:.1f} s in all; peak RSS "
        f"of this process {peak:.1f} GB). The full ranking itself (every user against every item) is the "
        "evaluation's cost, not the intervals'.",
    ]
    write_section("uncertainty", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
