"""Benchmark: staging real-shaped Amazon dumps, in all three formats, at two sizes.

Each measurement runs in a child process whose whole process tree (the parser workers
included) is sampled for RSS every 50 ms. Measured, on the same machine in the same run:

* reviews of the ``amazon-electronics`` shape (1.69M reviews + the planted quirks) in the
  2014, 2018 and 2023 formats: parse, quarantine, split by month, collapse duplicates, write
  one parquet file per month; and the blocking checks over the staged months, timed apart;
* the peer: DuckDB (a C++ engine, the same cores) reading the same 2023 file with
  ``read_json`` and writing the same month files, with none of the per-record rules;
* the 2014 metadata (498k Python-literal lines), with all parser processes, with one, and with
  the code as it was before streaming (``BEFORE_COMMIT``, from ``git archive``);
* reviews of the ``reviews-10m`` preset (10M reviews, 2023 format): memory must stay flat;
* numbering the 2023 reviews into text shards, the streaming step of the BigQuery path, from
  which the cost of staging the 2023 Electronics release in BigQuery is projected.

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
from typing import Any

import psutil

from benchmarks.results import machine, now, verdict, write_section
from recsys_assets.devdata.synthetic import MANIFEST_FILE, generate

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "raw" / "bench"
#: The 2023 Electronics release, for the projection.
ELECTRONICS_2023_REVIEWS, ELECTRONICS_2023_ITEMS = 43_900_000, 1_600_000
TARGET_RATE, TARGET_RSS_GB, TARGET_RSS_GROWTH = 150_000, 2.0, 0.20
#: The last commit before streaming staging: its metadata staging is the "before" peer.
BEFORE_COMMIT = "77d7087"


def raw_folder(preset: str, fmt: str) -> Path:
    folder = DATA / f"{preset}-{fmt}"
    if not (folder / MANIFEST_FILE).exists():
        print(f"generating {preset} in the {fmt} format into {folder} (once)...", flush=True)
        generate(preset, folder, fmt=fmt, image_files=False)
    return folder


def _months(manifest: dict[str, Any]) -> tuple[list[str], tuple[str, str]]:
    import numpy as np

    first, last = manifest["months"]
    months = [str(m) for m in np.arange(np.datetime64(first), np.datetime64(last) + 1)]
    return months, (first, str(np.datetime64(last) + 1))


def run_task(task: str, raw: Path, fmt: str, workers: int, out: Path) -> dict[str, Any]:
    """The measured work, run in a child process."""
    manifest = json.loads((raw / MANIFEST_FILE).read_text())
    reviews, metadata = (str(raw / manifest["files"][k]) for k in ("reviews", "metadata"))
    months, span = _months(manifest)
    started = time.perf_counter()
    if task == "reviews":
        from recsys_assets.core.catalogue.checks import interactions_outcomes
        from recsys_assets.core.catalogue.staging import stage_interactions

        staged = stage_interactions(reviews, fmt, months, span, out, workers=workers)
        stage_seconds = time.perf_counter() - started
        expected = manifest["expected_staging"]
        found = {"records": staged.records_read, "duplicates": staged.duplicates, "rows": staged.rows}
        assert found == {
            "records": expected["review_records"],
            "duplicates": expected["duplicate_reviews"],
            "rows": manifest["reviews"],
        }, found
        import pandas as pd

        ids = pd.Series(sorted({f"B{i:09d}" for i in range(manifest["items"])}))
        checked = time.perf_counter()
        outcomes = interactions_outcomes(
            staged,
            ids,
            first_month=months[0],
            max_quarantine_rate=0.001,
            row_count_tolerance=10.0,
            duplicate_warn_share=0.05,
            stored_rows=lambda month: None,
        )
        return {
            "seconds": stage_seconds,
            "check_seconds": time.perf_counter() - checked,
            "records": staged.records_read,
            "rows": staged.rows,
            "duplicates": staged.duplicates,
            "months": len(months),
            "checks_failed": sorted(n for n, o in outcomes.items() if not o.passed),
        }
    if task == "number":
        from recsys_assets.core.catalogue.bigquery_numbering import number_lines

        numbered = number_lines(reviews, "json", str(out / "numbered"), workers=workers)
        size = sum(Path(shard).stat().st_size for shard in numbered.shards)
        return {"seconds": time.perf_counter() - started, "records": numbered.records, "bytes": size}
    if task == "items":
        from recsys_assets.core.catalogue.staging import stage_items

        items = stage_items(metadata, fmt, out, workers=workers)
        return {"seconds": time.perf_counter() - started, "records": items.records_read, "items": items.items}
    if task == "items-before":
        # The code of BEFORE_COMMIT, first on sys.path: it held the whole dump in memory and
        # had no rules for repeated lines or wrong-typed ids.
        for name in [m for m in sys.modules if m == "recsys_assets" or m.startswith("recsys_assets.")]:
            del sys.modules[name]
        sys.path.insert(0, os.environ["BENCH_BEFORE_CODE"])  # spawned workers inherit sys.path
        from recsys_assets.core.catalogue.staging import stage_items as stage_items_before

        before = stage_items_before(metadata, fmt, workers=workers)  # type: ignore[call-arg]
        items_before: Any = before.items
        return {
            "seconds": time.perf_counter() - started,
            "records": before.records_read,
            "items": len(items_before),
        }
    if task == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads = {workers}")
        con.execute(
            f"""COPY (
                SELECT user_id, parent_asin AS item_id, rating, to_timestamp(timestamp // 1000) AS ts,
                       strftime(to_timestamp(timestamp // 1000), '%Y-%m') AS month
                FROM read_json('{reviews}', format='newline_delimited', ignore_errors=true,
                               columns={{'user_id': 'VARCHAR', 'parent_asin': 'VARCHAR', 'rating': 'DOUBLE',
                                         'timestamp': 'BIGINT'}})
            ) TO '{out}/interactions' (FORMAT parquet, PARTITION_BY (month))"""
        )
        records = manifest["expected_staging"]["review_records"]
        return {"seconds": time.perf_counter() - started, "records": records}
    raise ValueError(task)


def measure(task: str, raw: Path, fmt: str, workers: int, code: Path | None = None) -> dict[str, Any]:
    """Run ``run_task`` in a child (on the package at ``code`` when given); sample the RSS of
    its whole process tree every 50 ms."""
    env = {**os.environ, "BENCH_BEFORE_CODE": str(code)} if code else None
    with tempfile.TemporaryDirectory() as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.staging", "--child", task, str(raw), fmt, str(workers), out],
            cwd=ROOT,
            env=env,
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
            raise SystemExit(f"benchmark child {task} {raw.name} failed with exit code {child.returncode}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result.update(task=task, data=raw.name, fmt=fmt, workers=workers, peak_rss_gb=peak / 1e9)
    result["rate"] = result["records"] / result["seconds"]
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=5, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        task, raw, fmt, workers, out = args.child
        print(json.dumps(run_task(task, Path(raw), fmt, int(workers), Path(out))))
        return

    cores = len(os.sched_getaffinity(0))
    folders = {fmt: raw_folder("amazon-electronics", fmt) for fmt in ("2014", "2018", "2023")}
    big = raw_folder("reviews-10m", "2023")
    reviews = {fmt: measure("reviews", folder, fmt, cores) for fmt, folder in folders.items()}
    peer = measure("duckdb", folders["2023"], "2023", cores)
    numbered = measure("number", folders["2023"], "2023", cores)
    large = measure("reviews", big, "2023", cores)
    items = measure("items", folders["2014"], "2014", cores)
    items_one = measure("items", folders["2014"], "2014", 1)
    with tempfile.TemporaryDirectory() as before_code:
        archive = subprocess.run(
            ["git", "archive", BEFORE_COMMIT, "recsys_assets"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", before_code], input=archive, check=True)
        items_before = measure("items-before", folders["2014"], "2014", cores, Path(before_code))
    metadata_ratio = items["seconds"] / items_before["seconds"]

    def row(run: dict[str, Any], what: str) -> str:
        checks = f"{run['check_seconds']:.1f}" if "check_seconds" in run else "-"
        return (
            f"| {what} | {run['records']:,} | {run['workers']} | {run['seconds']:.1f} | {run['rate']:,.0f} | "
            f"{checks} | {run['peak_rss_gb']:.2f} |"
        )

    slowest = min(reviews["2018"]["rate"], reviews["2023"]["rate"])
    growth = large["peak_rss_gb"] / reviews["2023"]["peak_rss_gb"] - 1
    worst_rss = max(r["peak_rss_gb"] for r in [*reviews.values(), large, items])
    projected = ELECTRONICS_2023_REVIEWS / reviews["2023"]["rate"]
    projected_items = ELECTRONICS_2023_ITEMS * items["seconds"] / items["records"]
    lines = [
        "## Staging: the three Amazon formats, 1.7M and 10M reviews",
        "",
        "- command: `make bench-staging` (`python -m benchmarks.staging`)",
        f"- date: {now()}",
        f"- machine: {machine()}",
        "- input: the `amazon-electronics` preset (1,689,116 reviews, 498,196 items, 84 months, with 1% "
        "duplicate reviews, 1% repeated metadata lines, wrong-typed records and blank lines planted) written "
        "in each format, and the `reviews-10m` preset (10M reviews over 120 months, 2023 format)",
        "- work (reviews): parse on every core, quarantine, split by month, collapse duplicates, write one "
        "parquet file per month; the staged counts are asserted against the generator's manifest. Checks: "
        "the blocking checks over every staged month, timed apart",
        "- peer: DuckDB 1.5 `read_json` of the same 2023 file into the same month files, same threads, with "
        "none of the per-record rules (no line numbers, quarantine, duplicates or blank-line counts)",
        "",
        "| run | records | processes | staging s | records/s | checks s | peak RSS GB (process tree) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(row(reviews[fmt], f"reviews {fmt}") for fmt in ("2014", "2018", "2023")),
        row(peer, "peer: DuckDB read_json, reviews 2023"),
        row(numbered, "numbering reviews 2023 for BigQuery (local folder)"),
        row(large, "reviews 2023, 10M preset"),
        row(items, "metadata 2014 (Python literals)"),
        row(items_one, "metadata 2014, one process"),
        row(items_before, f"metadata 2014, the code before streaming ({BEFORE_COMMIT})"),
        "",
        "Against the peer in the same run: our 2023 staging runs at "
        f"**{reviews['2023']['rate'] / peer['rate']:.2f}x** DuckDB's throughput while applying every rule.",
        "",
        "Targets (2 cores):",
        f"- >= {TARGET_RATE:,} review records/s for 2018 and 2023: {verdict(slowest >= TARGET_RATE)} "
        f"(2018 {reviews['2018']['rate']:,.0f}/s, 2023 {reviews['2023']['rate']:,.0f}/s; staging only, the "
        "checks add the seconds shown, of which ~4 s is importing Great Expectations)",
        f"- peak RSS flat in dump size, within {TARGET_RSS_GROWTH:.0%} from 1.7M to 10M reviews: "
        f"{verdict(abs(growth) <= TARGET_RSS_GROWTH)} ({growth:+.1%}); at most {TARGET_RSS_GB} GB: "
        f"{verdict(worst_rss <= TARGET_RSS_GB)} (largest {worst_rss:.2f} GB)",
        f"- 2014 metadata no slower than the code before streaming, same run: "
        f"{verdict(metadata_ratio <= 1.05)} ({items['seconds']:.1f} s vs {items_before['seconds']:.1f} s, "
        f"{metadata_ratio:.2f}x the time; within 5% counts as equal on this shared machine); the parallel "
        f"parser is {items_one['seconds'] / items['seconds']:.2f}x one process",
        "",
        f"Projection for the 2023 Electronics release on {cores} cores at the measured rates: "
        f"{ELECTRONICS_2023_REVIEWS / 1e6:.1f}M reviews in ~{projected / 60:.0f} min, "
        f"{ELECTRONICS_2023_ITEMS / 1e6:.1f}M items in ~{projected_items / 60:.0f} min (JSON metadata parses "
        "faster than 2014's Python literals, but real 2023 lines are longer than the synthetic ones).",
        "",
    ]
    raw_bytes = numbered["bytes"] / numbered["records"] * ELECTRONICS_2023_REVIEWS
    scanned = 4 * raw_bytes  # see the note below
    lines += [
        "With `RECSYS_STAGING_ENGINE=bigquery` (projected from the numbering run above; no BigQuery "
        "project is reachable from here, so slots and times in BigQuery are not measured):",
        f"- numbering the 2023 Electronics reviews on {cores} cores: "
        f"~{ELECTRONICS_2023_REVIEWS / numbered['rate'] / 60:.0f} min, writing "
        f"~{raw_bytes / 1e9:.0f} GB of uncompressed shards to GCS (the load job itself is free);",
        f"- bytes scanned: ~{scanned / 1e9:.0f} GB. The typing statement reads the raw table once; the "
        "staging and quarantine statements each read the typed table, which keeps the record text for "
        "the reasons, and the quarantine reads the raw table again for unparseable lines: about 4x the "
        "raw table. The staged table is partitioned by month, so the per-month exports and counts "
        "read little;",
        f"- on-demand cost at $6.25 per TiB scanned: ~${scanned / 2**40 * 6.25:.2f} a full restage; "
        "storage of the run's tables is dropped when the run ends. With on-demand slots (up to 2,000 "
        "per project) the statements are bound by the scan, not the rules.",
        "",
    ]
    write_section("staging", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
