"""What the models cost on a dense data set of modest size, through the real asset graph.

    python -m benchmarks.cost                  # make bench-cost
    python -m benchmarks.cost --report-only    # re-read the last run

The synthetic ``ratings-1m`` preset has the shape of a public 1M-rating set (6,040 users,
3,700 reviewed items, 1M ratings, ~165 a user). The benchmark materializes ``all_assets`` on
it into ``data/bench/cost/`` and reads each step's wall time from the Dagster instance, the
fusion training's from its summary and each model's epochs from ``eval.json``.
Targets on 2 cores: the whole ``models`` group, GAT included, within 20 minutes; the fusion
training within 5 minutes (it samples its co-review pairs); the GAT's seconds per epoch and
epochs to converge recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.models import ROOT, materialize
from benchmarks.results import machine, now, verdict, write_section
from recsys_assets.core.markdown import markdown_table

PRESET = "ratings-1m"
RAW = ROOT / "data" / "raw" / PRESET
WORKDIR = ROOT / "data" / "bench" / "cost"
HEADER = [
    "model",
    "asset s",
    "train s",
    "s/epoch",
    "epochs run",
    "best epoch",
    "val NDCG@20",
    "test NDCG@20",
    "test, order off",
]
TARGET_MODELS_S, TARGET_FUSION_S = 20 * 60.0, 5 * 60.0


def raw_data() -> dict[str, Any]:
    """The preset's dumps (written once; the generator is seeded)."""
    manifest = RAW / "manifest.json"
    if not manifest.is_file():
        subprocess.run(
            [sys.executable, "-m", "recsys_assets.devdata.synthetic", "--preset", PRESET, "--out", str(RAW)],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return json.loads(manifest.read_text())


def run_seconds(home: Path) -> tuple[float, dict[str, float]]:
    """Wall seconds of the instance's latest run, and of each of its steps."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        run = instance.get_runs(limit=1)[0]
        stats = instance.get_run_stats(run.run_id)
        steps = {
            step.step_key: step.end_time - step.start_time
            for step in instance.get_run_step_stats(run.run_id)
            if step.start_time and step.end_time
        }
        return (stats.end_time or 0.0) - (stats.start_time or 0.0), steps


def groups() -> dict[str, str]:
    """The group of every asset, by the name its step runs under."""
    from recsys_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    return {key.path[-1]: graph.get(key).group_name for key in graph.get_all_asset_keys()}


def main() -> None:
    manifest = raw_data()
    months = manifest["months"]
    env = {
        "RECSYS_RAW_REVIEWS_URI": str(RAW / manifest["files"]["reviews"]),
        "RECSYS_RAW_METADATA_URI": str(RAW / manifest["files"]["metadata"]),
        "RECSYS_MONTHS_START": months[0],
        "RECSYS_MONTHS_END": str(pd.Period(months[1], "M") + 1),
    }
    if "--report-only" not in sys.argv:
        materialize(WORKDIR, env, ("all_assets",))
    wall, seconds = run_seconds(WORKDIR / "dagster_home")
    group_of = groups()
    by_group: dict[str, float] = {}
    for step, s in seconds.items():
        group = group_of.get(step, "other")
        by_group[group] = by_group.get(group, 0.0) + s
    artifacts = WORKDIR / "artifacts"
    report = json.loads((artifacts / "eval" / "eval.json").read_text())
    fusion = json.loads((artifacts / "embeddings" / "fusion_config.json").read_text())
    models_s, fusion_s = by_group.get("models", 0.0), float(fusion["train_seconds"])
    sampled = f"{fusion['pairs_per_epoch']:,} pairs sampled from {fusion['train_pairs']:,}"
    rows = []
    trains: dict[str, dict[str, Any]] = {}
    for name, model in report["models"].items():
        train = trains[name] = dict(model["train"])
        history = json.loads((artifacts / "models" / name / "meta.json").read_text()).get("history", [])
        if history:  # epochs from the validation history: validations may be every few epochs
            train["epochs_run"] = int(history[-1]["epoch"])
            train["seconds_per_epoch"] = train["train_seconds"] / train["epochs_run"]
            train["validations"] = len(history)
        rows.append([
            name,
            f"{seconds.get(f'{name}_model', float('nan')):.0f}",
            f"{train['train_seconds']:.0f}",
            f"{train['seconds_per_epoch']:.1f}" if train.get("seconds_per_epoch") else "-",
            train.get("epochs_run") or "-",
            train.get("best_epoch") or "-",
            f"{model['val']['ndcg@20']:.4f}",
            f"{model['test']['ndcg@20']:.4f}",
            f"{model['order_free']['test']['ndcg@20']:.4f}" if "order_free" in model else "-",
        ])  # fmt: skip
    gat = trains["gat"]
    lines = [
        "## Cost on a dense 1M-rating data set (the models group on 2 cores)",
        "",
        "- command: `make bench-cost` (`python -m benchmarks.cost`)",
        f"- date: {now()}",
        f"- machine: {machine()}",
        f"- data: synthetic `{PRESET}`: {manifest['users']:,} users, {manifest['items_with_reviews']:,} "
        f"reviewed items, {manifest['reviews']:,} ratings; {report['data']}",
        f"- wall time of `all_assets`: {wall:.0f} s; by group: "
        + ", ".join(f"{g} {s:.0f} s" for g, s in sorted(by_group.items())),
        "",
        markdown_table(HEADER, rows),
        "",
        f"Target, the whole models group within {TARGET_MODELS_S / 60:.0f} min: "
        f"{verdict(models_s <= TARGET_MODELS_S)} ({models_s / 60:.1f} min).",
        f"Target, the fusion training within {TARGET_FUSION_S / 60:.0f} min: "
        f"{verdict(fusion_s <= TARGET_FUSION_S)} ({fusion_s:.0f} s for "
        f"{fusion['config']['epochs']} epochs of {sampled}).",
        f"Promoted: {report['candidate_reason']}.",
        f"The GAT: {gat['seconds_per_epoch']:.1f} s an epoch, best epoch {gat['best_epoch']} of "
        f"{gat['epochs_run']} run, {gat['validations']} validations (sampled neighbourhoods: every 2nd "
        f"epoch, patience {report['models']['gat']['config']['patience']} epochs).",
    ]
    write_section("cost", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
