"""Benchmark: stage the ``amazon-electronics`` preset (498k metadata + 1.69M reviews) from its raw files.

Measures wall time and peak RSS of the whole process tree (the parser workers included)
for the staging path the assets use: parse both dumps, split reviews by month, write
``items.parquet`` and one parquet file per month. The peer, measured in the same run on the
same machine, is the same code with one parser process, so the ratio isolates the value of
the block-parallel parser from the machine's noise.

    python -m benchmarks.staging            # writes benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.results import machine, now, verdict, write_section
from recsys_assets.devdata.synthetic import MANIFEST_FILE, METADATA_FILE, REVIEWS_FILE, generate

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "raw" / "amazon-electronics"
TARGET_SECONDS, TARGET_RSS_GB = 180, 6.0


def stage_once(raw: Path, out: Path, workers: int) -> dict[str, object]:
    """The measured work, run in a child process."""
    from recsys_assets.core.catalogue.staging import stage_interactions, stage_items

    manifest = json.loads((raw / MANIFEST_FILE).read_text())
    first, last = manifest["months"]
    import numpy as np

    months = [str(m) for m in np.arange(np.datetime64(first), np.datetime64(last) + 1)]
    end = str(np.datetime64(last) + 1)
    started = time.perf_counter()
    items = stage_items(str(raw / METADATA_FILE), "2014", workers=workers)
    items.items.to_parquet(out / "items.parquet", index=False)
    staged = stage_interactions(str(raw / REVIEWS_FILE), "2014", months, (first, end), workers=workers)
    (out / "interactions").mkdir()
    for month, frame in staged.months.items():
        frame.to_parquet(out / "interactions" / f"{month}.parquet", index=False)
    return {
        "seconds": time.perf_counter() - started,
        "items_seconds": items.seconds,
        "reviews_seconds": staged.seconds,
        "items": len(items.items),
        "interactions": sum(len(f) for f in staged.months.values()),
        "quarantined": len(items.quarantine) + len(staged.unassigned),
        "months": len(months),
    }


def measure(workers: int) -> dict[str, object]:
    """Run ``stage_once`` in a child; sample the RSS of its whole process tree every 50 ms."""
    with tempfile.TemporaryDirectory() as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.staging", "--child", str(workers), "--out", out],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        proc = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            try:
                tree = [proc, *proc.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.05)
        stdout, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"benchmark child failed with exit code {child.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_gb"] = peak / 1e9
    result["workers"] = workers
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(stage_once(DATA, args.out, args.child)))
        return

    if not (DATA / MANIFEST_FILE).exists():
        print(f"generating the amazon-electronics preset into {DATA} (once, ~2 min)...", flush=True)
        generate("amazon-electronics", DATA, image_files=False)
    sizes = {name: (DATA / name).stat().st_size / 1e6 for name in (METADATA_FILE, REVIEWS_FILE)}
    cores = len(os.sched_getaffinity(0))
    runs = [measure(cores), measure(1)]
    ours, peer = runs
    ratio = float(peer["seconds"]) / float(ours["seconds"])  # type: ignore[arg-type]
    for run in runs:
        print(json.dumps(run))

    lines = [
        "## Staging the `amazon-electronics` preset",
        "",
        "- command: `make bench` (`python -m benchmarks.staging`)",
        f"- date: {now()}",
        f"- machine: {machine()}",
        f"- input: {ours['items']:,} metadata records ({sizes[METADATA_FILE]:.0f} MB gz, "
        f"Python literals) and {ours['interactions']:,} reviews ({sizes[REVIEWS_FILE]:.0f} MB gz) "
        f"over {ours['months']} months",
        "- work: parse both dumps, quarantine bad records, split reviews by month, write items.parquet and "
        "one parquet file per month",
        "",
        "| parser processes | wall s | metadata s | reviews s | peak RSS (process tree) GB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        lines.append(
            f"| {run['workers']} | {float(run['seconds']):.1f} | {float(run['items_seconds']):.1f} | "  # type: ignore[arg-type]
            f"{float(run['reviews_seconds']):.1f} | {float(run['peak_rss_gb']):.2f} |"  # type: ignore[arg-type]
        )
    lines += [
        "",
        f"Speed-up of the block-parallel parser over one process, same run: **{ratio:.2f}x**.",
        "",
        f"Targets (2 cores): wall <= {TARGET_SECONDS} s: {verdict(float(ours['seconds']) <= TARGET_SECONDS)} "  # type: ignore[arg-type]
        f"({float(ours['seconds']):.0f} s); peak RSS <= {TARGET_RSS_GB} GB: "  # type: ignore[arg-type]
        f"{verdict(float(ours['peak_rss_gb']) <= TARGET_RSS_GB)} ({float(ours['peak_rss_gb']):.2f} GB).",  # type: ignore[arg-type]
        "",
    ]
    write_section("staging", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
