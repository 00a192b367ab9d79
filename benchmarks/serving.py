"""Serving throughput and latency: our Litestar API against a FastAPI peer, on loopback, with wrk.

    python -m benchmarks.serving        # writes the "serving" section of benchmarks/RESULTS.md

Both serve the same published version (498,196 x 128 items, an HNSW index, built once into
``data/bench/serving/`` and reused) and get the same request bodies (an unknown user with 5
recent items: the mean of their vectors, FAISS top-20, recent items filtered out). Our API
logs every request to DuckDB. Every server runs as many uvicorn workers as there are cores
(the peer also as one process, for reference); all are measured in turn in each round, at 16
and 64 connections. Ours also runs a two-arm A/B experiment (the version against a copy of
itself under another name, half the users each) and a shadow version.

Targets (issue 18), all at the same number of workers: ours serves >= 1.5x the peer's
requests/s at 16 and 64 connections, and its p99 at 16 connections is <= 2/3 of the peer's;
with the A/B experiment, requests/s within 10% of none; with a shadow, p99 at 16 connections
<= 1.2x without. The per-request profile (``serving_profile.py``) comes first in the section.
Needs ``wrk`` (Debian package ``wrk``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.graphs import ITEMS, vectors
from benchmarks.results import machine, now, verdict, write_section
from recsys_assets.core.io.artifacts import SERVING_MANIFEST, SERVING_VERSION_MANIFEST, Artifacts
from recsys_assets.core.markdown import markdown_table
from recsys_assets.devtools.local_api import free_port

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "data" / "bench" / "serving"
USERS, DIM, RECENT, K = 20_000, 128, 5, 20
CONNECTIONS = (16, 64)
DURATION_S, WARMUP_S, ROUNDS = 15, 5, 3
TARGET_RPS_RATIO, TARGET_P99_RATIO = 1.5, 2 / 3


def build_version(root: Path) -> dict[str, Any]:
    """The published version the servers load (built once, reused)."""
    from recsys_assets.core.io.sparse import Csr
    from recsys_assets.core.serving.export import common_files, publish, vector_files, write_files
    from recsys_assets.core.serving.index import build_index, index_bytes, measure
    from recsys_assets.settings.serving import IndexConfig

    artifacts = Artifacts(str(root))
    manifest = Path(artifacts.uri(SERVING_MANIFEST))
    if Path(artifacts.uri(SERVING_VERSION_MANIFEST, version="bench")).is_file():
        return dict(json.loads(manifest.read_text()))
    if manifest.is_file():  # built before versions had their own manifests: publish it again
        return publish(artifacts, "bench", {"index": json.loads(manifest.read_text())["index"]})
    items = vectors(DIM)
    rng = np.random.default_rng(1)
    users = items[rng.choice(ITEMS, USERS)] + rng.normal(scale=0.05, size=(USERS, DIM)).astype(np.float32)
    history = rng.choice(ITEMS, (USERS, 5))
    files = vector_files(items, users) | common_files(
        [f"U{u:08d}" for u in range(USERS)], [f"B{i:09d}" for i in range(ITEMS)],
        [f"item {i}" for i in range(ITEMS)], Csr(np.arange(0, USERS * 5 + 1, 5), history.ravel()),
        np.ones(history.size), ITEMS,
    )  # fmt: skip
    write_files(artifacts, "bench", files)
    config = IndexConfig(kind="hnsw")
    print("building the HNSW index over 498,196 x 128 (a few minutes)", file=sys.stderr, flush=True)
    built = measure(build_index(items, config), items, users, config)
    write_files(artifacts, "bench", {"index.faiss": index_bytes(built)})
    index = {"kind": built.kind, "params": built.params, "recall@20": built.recall,
             "build_seconds": built.build_seconds, "latency_ms": built.latency_ms}  # fmt: skip
    return publish(artifacts, "bench", {"index": index})


def server_env(root: Path, warehouse: Path) -> dict[str, str]:
    """The servers' environment: the version under ``root``, our logs into ``warehouse``."""
    manifest = Artifacts(str(root)).uri(SERVING_MANIFEST)
    return {"RECSYS_SERVING_MANIFEST": manifest, "RECSYS_LOG_SINK": "duckdb",
            "RECSYS_WAREHOUSE_DUCKDB": str(warehouse), "OMP_NUM_THREADS": "1"}  # fmt: skip


def bodies(path: Path, n: int = 2_000) -> Path:
    rng = np.random.default_rng(2)
    lines = [
        json.dumps(
            {"user_id": f"new{i}", "k": K, "recent_items": [f"B{j:09d}" for j in rng.choice(ITEMS, RECENT)]}
        )
        for i in range(n)
    ]
    return wrk_script(path, lines)


def wrk_script(path: Path, lines: list[str]) -> Path:
    """A wrk script posting ``lines`` (JSON bodies) to /recommend in turn."""
    script = "\n".join(
        [
            "local bodies = {" + ",".join(json.dumps(line) for line in lines) + "}",
            "local i = 0",
            'wrk.method = "POST"',
            'wrk.headers["Content-Type"] = "application/json"',
            "request = function()",
            "  i = i % #bodies + 1",
            "  return wrk.format(nil, nil, nil, bodies[i])",
            "end",
        ]
    )
    path.write_text(script)
    return path


def start(factory: str, env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """A uvicorn server, returned once every worker has loaded the version (each loads its own:
    measuring while one still loads would time a smaller server)."""
    port = free_port()
    log = WORKDIR / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("uvicorn")), "--factory", factory, "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--log-level", "info", "--no-access-log"],
            env={**os.environ, **env}, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while log.read_text(errors="replace").count("Application startup complete") < workers:
        assert process.poll() is None, f"{factory} exited: {log.read_text(errors='replace')[-2000:]}"
        assert time.monotonic() < deadline, f"{factory} did not start"
        time.sleep(0.5)
    while True:
        try:
            body = json.dumps({"user_id": "x", "recent_items": ["B000000001"]})
            out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                  "-H", "content-type: application/json", "-d", body, f"{url}/recommend"],
                                 capture_output=True, text=True, check=False, timeout=10)  # fmt: skip
            if out.stdout == "200":
                return process, url
        except subprocess.TimeoutExpired:
            pass
        assert process.poll() is None, f"{factory} exited"
        assert time.monotonic() < deadline, f"{factory} did not start"
        time.sleep(0.5)


def wrk(url: str, connections: int, script: Path, seconds: int = DURATION_S) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
         f"{url}/recommend"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "requests": requests,
        "p50_ms": _percentile_ms(out, "50"),
        "p99_ms": _percentile_ms(out, "99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def _percentile_ms(out: str, percent: str) -> float:
    """A latency percentile of wrk's ``--latency`` report, in milliseconds."""
    found = re.search(rf"{percent}%\s+([\d.]+)(us|ms|s)\b", out)
    assert found is not None, out
    return float(found.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[found.group(2)]


def logged_rows(path: Path) -> dict[str, int]:
    """Rows our API logged, by arm."""
    from recsys_assets.core.warehouse.tables import connect_duckdb

    with connect_duckdb(str(path), read_only=True) as con:
        found = con.execute("SELECT arm, count(*) FROM recommendation_requests GROUP BY arm").fetchall()
    return {str(arm): int(n) for arm, n in found}


def _logged_line(name: str, by_arm: dict[str, int], requests: int) -> str:
    arms = ", ".join(f"{arm} {n:,}" for arm, n in sorted(by_arm.items()))
    return f"{name}: {sum(by_arm.values()):,} / {requests:,} ({arms})"


def experiment_roots(root: Path) -> dict[str, Path]:
    """Copies of the version root (files hard-linked) whose followed manifest runs an A/B
    experiment, or a shadow, against the same version published again as ``bench-b``."""
    from recsys_assets.core.serving.rollout import read_version_manifest, release

    roots = {}
    for rollout in ("ab", "shadow"):
        copy = WORKDIR / rollout
        if not copy.exists():
            shutil.copytree(root, copy, copy_function=os.link)
            versions = copy / "serving" / "versions"
            shutil.copytree(versions / "bench", versions / "bench-b", copy_function=os.link)
            own = versions / "bench-b" / "manifest.json"
            own.unlink()  # a link to bench's: written anew, not through the link
            manifest = read_version_manifest(Artifacts(str(copy)), "bench")
            own.write_text(json.dumps({**manifest, "version": "bench-b"}))
            release(Artifacts(str(copy)), {**manifest, "version": "bench-b"}, rollout, 0.5)
        roots[rollout] = copy
    return roots


def main() -> None:
    from benchmarks.serving_profile import profile

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    root = WORKDIR / "version"
    manifest = build_version(root)
    script = bodies(WORKDIR / "bodies.lua")
    roots = {"none": root, **experiment_roots(root)}
    workers = int(os.environ.get("BENCH_WORKERS", str(len(os.sched_getaffinity(0)))))
    profiled = profile(
        Artifacts(str(root)).uri(SERVING_MANIFEST), WORKDIR / "profile-parts.duckdb", script,
        server_env(root, WORKDIR / "profile.duckdb"),
    )  # fmt: skip
    peer_1, peer, ours = "peer, 1 worker", f"peer, {workers} workers", f"ours, {workers} workers"
    ab, shadow = f"ours, {workers} workers, A/B experiment", f"ours, {workers} workers, shadow version"
    servers = {  # name: (factory, workers, version root)
        peer: ("benchmarks.serving_peer:create_app", workers, roots["none"]),
        ours: ("serving.app:create_app", workers, roots["none"]),
        ab: ("serving.app:create_app", workers, roots["ab"]),
        shadow: ("serving.app:create_app", workers, roots["shadow"]),
        peer_1: ("benchmarks.serving_peer:create_app", 1, roots["none"]),
    }
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    served: dict[str, int] = {}
    warehouses = {name: WORKDIR / f"warehouse-{i}.duckdb" for i, name in enumerate(servers)}
    for path in warehouses.values():
        path.unlink(missing_ok=True)
    for _ in range(ROUNDS):
        for name, (factory, n, version_root) in servers.items():
            process, url = start(factory, server_env(version_root, warehouses[name]), n)
            try:
                for connections in CONNECTIONS:
                    warm = wrk(url, connections, script, WARMUP_S)  # not counted
                    results.setdefault((name, connections), []).append(wrk(url, connections, script))
                    served[name] = served.get(name, 0) + int(
                        warm["requests"] + results[(name, connections)][-1]["requests"]
                    )
                    print(name, connections, results[(name, connections)][-1], file=sys.stderr, flush=True)
            finally:
                process.terminate()
                process.wait(timeout=60)
    logged = {name: logged_rows(warehouses[name]) for name in (ours, ab, shadow)}
    best = {key: max(runs, key=lambda r: r["rps"]) for key, runs in results.items()}
    p99 = {key: min(r["p99_ms"] for r in runs) for key, runs in results.items()}
    rows = []
    for connections in CONNECTIONS:
        base = best[(peer, connections)]
        for name in servers:
            r = best[(name, connections)]
            rows.append([name, connections, f"{r['rps']:,.0f}", f"{p99[(name, connections)]:.1f}",
                         int(r["errors"]), f"{r['rps'] / base['rps']:.2f}x"])  # fmt: skip
    ratio = {c: best[(ours, c)]["rps"] / best[(peer, c)]["rps"] for c in CONNECTIONS}
    p99_ratio = p99[(ours, 16)] / p99[(peer, 16)]
    ab_ratio = {c: best[(ab, c)]["rps"] / best[(ours, c)]["rps"] for c in CONNECTIONS}
    shadow_p99 = p99[(shadow, 16)] / p99[(ours, 16)]
    shadowed = logged[shadow].get("shadow", 0) / max(
        sum(v for k, v in logged[shadow].items() if k != "shadow"), 1
    )
    index = manifest["index"]
    lines = [
        "## Serving: our API vs a FastAPI peer, at equal workers",
        "",
        "- command: `make bench-serving` (`python -m benchmarks.serving`)",
        f"- date: {now()}",
        f"- machine: {machine()}",
        f"- version: {ITEMS:,} x {DIM} items, HNSW {index['params']} (recall@20 vs exact "
        f"{index['recall@20']:.3f}, built in {index['build_seconds']:.0f} s); {USERS:,} users",
        f"- load: wrk, 2 threads, on the same cores as the servers, {DURATION_S} s per run after a "
        f"{WARMUP_S} s warm-up; {ROUNDS} rounds, each starting every server in turn; the best round's "
        f"requests/s and the lowest p99 shown; bodies: an unknown user with {RECENT} recent items, "
        f"k = {K}; uvicorn; `OMP_NUM_THREADS=1`; ours with its defaults (searches on the event loop, "
        "shadow share 0.25)",
        "- our request logging on (DuckDB), rows logged / requests wrk counted (the rest are start-up "
        "probes): "
        + "; ".join(
            _logged_line(name.removeprefix(ours).strip(", ") or "no experiment", logged[name], served[name])
            for name in (ours, ab, shadow)
        ),
        "",
        "### What a request costs",
        "",
        *profiled,
        "",
        "### Throughput",
        "",
        markdown_table(
            ["server", "connections", "requests/s", "p99 ms", "non-2xx", "vs peer, same workers"], rows
        ),
        "",
        f"Single-query search latency: HNSW median {index['latency_ms']['median']:.3f} ms, p99 "
        f"{index['latency_ms']['p99']:.3f} ms; exact (flat) median "
        f"{index['latency_ms']['exact_median']:.2f} ms, p99 {index['latency_ms']['exact_p99']:.2f} ms.",
        "",
        "Targets, all at the same number of workers:",
        "",
        markdown_table(
            ["target", "measured", "verdict"],
            [
                [
                    f"requests/s >= {TARGET_RPS_RATIO}x the peer's, 16 and 64 connections",
                    f"{ratio[16]:.2f}x, {ratio[64]:.2f}x",
                    verdict(min(ratio.values()) >= TARGET_RPS_RATIO),
                ],
                [
                    "p99 at 16 connections <= 2/3 of the peer's",
                    f"{p99_ratio:.2f}",
                    verdict(p99_ratio <= TARGET_P99_RATIO),
                ],
                [
                    "A/B experiment: requests/s within 10% of none",
                    f"{ab_ratio[16]:.2f}x, {ab_ratio[64]:.2f}x",
                    verdict(all(abs(r - 1) <= 0.1 or r > 1 for r in ab_ratio.values())),
                ],
                [
                    "shadow: p99 at 16 connections <= 1.2x without",
                    f"{shadow_p99:.2f}x ({shadowed:.0%} of the requests shadowed)",
                    verdict(shadow_p99 <= 1.2),
                ],
            ],
        ),
    ]
    write_section("serving", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
