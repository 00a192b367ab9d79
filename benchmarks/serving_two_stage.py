"""Serving two stages: the ranker version of the synthetic default against its single-stage
fallback, in the same run, on the same known users.

    python -m benchmarks.serving_two_stage   # after `python -m benchmarks.models synthetic`

The ranker version is the one `benchmarks.models synthetic` published (the ranker is served
there: best on validation, significantly). The single-stage peer is the same version's fallback
retriever published alone (its files, no ranker), so both answer from the same history; each
request is a known user (the API's two-stage path), k = 20. Both run 2 uvicorn workers with
request logging on, measured in turn (wrk, 16 connections), for ``ROUNDS`` rounds. First, in
process: what ranking one user costs (every retriever's scores, candidates, features,
LightGBM) and how many candidates a request ranks.

Targets (issue 30): p50 <= 5 ms and p99 <= 20 ms for k = 20 from about 300 candidates at 16
connections, 2 workers, 2 cores; requests/s against the single-stage path in the same run.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.results import machine, now, verdict, write_section
from benchmarks.serving import DURATION_S, WARMUP_S, server_env, start, wrk, wrk_script
from benchmarks.serving import WORKDIR as SERVER_LOGS
from recsys_assets.core.io.artifacts import SERVING_FILES, SERVING_MANIFEST, Artifacts
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.serving.bundle import FILES, load_bundle
from recsys_assets.core.serving.export import publish

ROOT = Path(__file__).resolve().parent.parent
RANKED = ROOT / "data" / "bench" / "synthetic" / "artifacts"
WORKDIR = ROOT / "data" / "bench" / "two-stage"
K, CONNECTIONS, WORKERS, ROUNDS = 20, 16, 2, 3
TARGET_P50_MS, TARGET_P99_MS = 5.0, 20.0


def single_stage(root: Path) -> Path:
    """The ranker version's fallback published alone under ``root``: its own files, copied."""
    manifest = json.loads(Path(Artifacts(str(RANKED)).uri(SERVING_MANIFEST)).read_text())
    version, fallback = str(manifest["version"]), manifest["model"]["fallback"]
    artifacts = Artifacts(str(root))
    for name in FILES[fallback["kind"]]:
        target = Path(artifacts.uri(SERVING_FILES[name], version=version))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Artifacts(str(RANKED)).uri(SERVING_FILES[name], version=version), target)
    publish(artifacts, version, {"model": fallback, "index": manifest.get("index", {})})
    return root


def bodies(path: Path, users: list[str], n: int = 2_000) -> Path:
    rng = np.random.default_rng(3)
    return wrk_script(path, [json.dumps({"user_id": users[i], "k": K}) for i in rng.choice(len(users), n)])


def in_process(manifest: str, users: int = 500) -> dict[str, float]:
    """One user's two-stage ranking in this process: milliseconds (p50, p99) and candidates."""
    bundle = load_bundle(manifest)
    assert bundle.ranker is not None
    rng = np.random.default_rng(4)
    picked = rng.choice(len(bundle.user_ids), users)
    seconds, candidates = [], []
    for user in picked:
        start_s = time.perf_counter()
        ranked = bundle.ranker.rank(int(user))
        seconds.append(time.perf_counter() - start_s)
        candidates.append(len(ranked.items))
    ms = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "candidates": float(np.mean(candidates)), "candidates_min": float(np.min(candidates)),
            "candidates_max": float(np.max(candidates))}  # fmt: skip


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    manifest = Artifacts(str(RANKED)).uri(SERVING_MANIFEST)
    if not Path(manifest).is_file() or json.loads(Path(manifest).read_text())["model"]["kind"] != "ranker":
        raise SystemExit(f"{manifest}: no ranker version; run `python -m benchmarks.models synthetic` first")
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir(parents=True)
    SERVER_LOGS.mkdir(parents=True, exist_ok=True)  # where ``start`` keeps the server's log
    bundle = load_bundle(manifest)
    fallback = bundle.manifest["model"]["fallback"]["name"]
    script = bodies(WORKDIR / "bodies.lua", bundle.user_ids)
    cost = in_process(manifest)
    print("in process", cost, file=sys.stderr, flush=True)
    servers = {"two stages (ranker)": RANKED, f"single stage ({fallback})": single_stage(WORKDIR / "single")}
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(ROUNDS):
        for i, (name, root) in enumerate(servers.items()):
            process, url = start(
                "serving.app:create_app", server_env(root, WORKDIR / f"w{i}.duckdb"), WORKERS
            )
            try:
                wrk(url, CONNECTIONS, script, WARMUP_S)
                runs.setdefault(name, []).append(wrk(url, CONNECTIONS, script, DURATION_S))
                print(name, runs[name][-1], file=sys.stderr, flush=True)
            finally:
                process.terminate()
                process.wait(timeout=60)
    best = {name: max(r, key=lambda run: run["rps"]) for name, r in runs.items()}
    two, one = best["two stages (ranker)"], best[f"single stage ({fallback})"]
    rows = [[name, f"{r['rps']:,.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", int(r["errors"]),
             f"{r['rps'] / one['rps']:.2f}x"] for name, r in best.items()]  # fmt: skip
    lines = [
        "## Serving two stages: the ranker version against its single-stage fallback",
        "",
        "- command: `make bench-two-stage` (`python -m benchmarks.serving_two_stage`)",
        f"- date: {now()}",
        f"- machine: {machine()}",
        f"- version: the synthetic default's ({len(bundle.item_ids):,} items, "
        f"{len(bundle.user_ids):,} users), "
        f"{len(bundle.ranker.sources) if bundle.ranker else 0} retrievers, "
        f"{bundle.ranker.per_source if bundle.ranker else 0} candidates each; fallback {fallback}",
        f"- load: wrk, 2 threads, {CONNECTIONS} connections, on the same 2 cores as the servers, "
        f"{DURATION_S} s per run after a {WARMUP_S} s warm-up; {ROUNDS} rounds; {WORKERS} uvicorn workers "
        "each, request logging on (DuckDB); bodies: a known user, k = 20; the best round shown",
        "",
        f"In process, one known user (500 users): {cost['p50_ms']:.2f} ms p50, {cost['p99_ms']:.2f} ms p99, "
        f"{cost['candidates']:.0f} candidates ranked on average ({cost['candidates_min']:.0f}-"
        f"{cost['candidates_max']:.0f}).",
        "",
        markdown_table(["server", "requests/s", "p50 ms", "p99 ms", "non-2xx", "vs single stage"], rows),
        "",
        markdown_table(
            ["target", "measured", "verdict"],
            [
                [
                    f"two stages p50 <= {TARGET_P50_MS:g} ms",
                    f"{two['p50_ms']:.2f} ms",
                    verdict(two["p50_ms"] <= TARGET_P50_MS),
                ],
                [
                    f"two stages p99 <= {TARGET_P99_MS:g} ms",
                    f"{two['p99_ms']:.2f} ms",
                    verdict(two["p99_ms"] <= TARGET_P99_MS),
                ],
                [
                    "requests/s against the single stage, same run",
                    f"{two['rps'] / one['rps']:.2f}x",
                    "measured",
                ],
            ],
        ),
    ]
    write_section("serving-two-stage", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
