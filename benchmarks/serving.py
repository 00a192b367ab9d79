"""Serving throughput and latency: our Litestar API against a FastAPI peer, on loopback, with wrk.

    python -m benchmarks.serving        # writes the "serving" section of benchmarks/RESULTS.md

Both serve the same published version (498,196 x 128 items, an HNSW index, built once into
``data/bench/serving/`` and reused) and get the same request bodies (an unknown user with 5
recent items: the mean of their vectors, FAISS top-20, recent items filtered out). Our API
logs every request to DuckDB. The two are measured alternately in one run, at 16 and 64
connections. Targets: ours serves >= 1.5x the peer's requests/s at both, and its p99 at 16
connections is <= 2/3 of the peer's. Needs ``wrk`` (Debian package ``wrk``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.graphs import ITEMS, vectors
from benchmarks.results import machine, now, verdict, write_section
from recsys_assets.core.io.artifacts import SERVING_MANIFEST, Artifacts
from recsys_assets.core.markdown import markdown_table

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "data" / "bench" / "serving"
USERS, DIM, RECENT, K = 20_000, 128, 5, 20
CONNECTIONS = (16, 64)
DURATION_S, WARMUP_S, ROUNDS = 15, 5, 2
TARGET_RPS_RATIO, TARGET_P99_RATIO = 1.5, 2 / 3


def build_version(root: Path) -> dict[str, Any]:
    """The published version the servers load (built once, reused)."""
    from recsys_assets.core.models.metrics import Csr
    from recsys_assets.core.serving.export import common_files, publish, vector_files, write_files
    from recsys_assets.core.serving.index import build_index, index_bytes, measure
    from recsys_assets.settings.serving import IndexConfig

    artifacts = Artifacts(str(root))
    manifest = Path(artifacts.uri(SERVING_MANIFEST))
    if manifest.is_file():
        return dict(json.loads(manifest.read_text()))
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


def bodies(path: Path, n: int = 2_000) -> Path:
    rng = np.random.default_rng(2)
    lines = [
        json.dumps(
            {"user_id": f"new{i}", "k": K, "recent_items": [f"B{j:09d}" for j in rng.choice(ITEMS, RECENT)]}
        )
        for i in range(n)
    ]
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return {
        "rps": rps,
        "requests": requests,
        "p99_ms": float(p99.group(1)) * scale,
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def logged_rows(path: Path) -> int:
    from recsys_assets.core.warehouse.tables import connect_duckdb

    with connect_duckdb(str(path), read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM recommendation_requests").fetchone()[0])


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    root = WORKDIR / "version"
    manifest = build_version(root)
    script = bodies(WORKDIR / "bodies.lua")
    # Ours runs one uvicorn worker per core, as the README recommends on one machine. The
    # peer is a single uvicorn process (the reference deployment), and also runs with as many workers as
    # ours, so the table shows both comparisons.
    workers = int(os.environ.get("BENCH_WORKERS", str(len(os.sched_getaffinity(0)))))
    warehouse = WORKDIR / "warehouse.duckdb"
    env = {"RECSYS_SERVING_MANIFEST": Artifacts(str(root)).uri(SERVING_MANIFEST), "RECSYS_LOG_SINK": "duckdb",
           "RECSYS_WAREHOUSE_DUCKDB": str(warehouse), "OMP_NUM_THREADS": "1"}  # fmt: skip
    warehouse.unlink(missing_ok=True)
    peer, ours, peer_n = "peer, 1 worker", f"ours, {workers} workers", f"peer, {workers} workers"
    servers = {
        peer: ("benchmarks.serving_peer:create_app", 1),
        ours: ("serving.app:create_app", workers),
        peer_n: ("benchmarks.serving_peer:create_app", workers),
    }
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    served = 0
    for _ in range(ROUNDS):
        for connections in CONNECTIONS:
            for name, (factory, n) in servers.items():
                process, url = start(factory, env, n)
                try:
                    warm = wrk(url, connections, script, WARMUP_S)  # not counted
                    results.setdefault((name, connections), []).append(wrk(url, connections, script))
                finally:
                    process.terminate()
                    process.wait(timeout=60)
                if name == ours:
                    served += int(warm["requests"] + results[(name, connections)][-1]["requests"])
                print(name, connections, results[(name, connections)][-1], file=sys.stderr, flush=True)
    rows_logged = logged_rows(warehouse)
    best = {key: max(runs, key=lambda r: r["rps"]) for key, runs in results.items()}
    rows, ok = [], True
    for connections in CONNECTIONS:
        base = best[(peer, connections)]
        ok &= best[(ours, connections)]["rps"] / base["rps"] >= TARGET_RPS_RATIO
        for name in servers:
            r = best[(name, connections)]
            rows.append([name, connections, f"{r['rps']:,.0f}", f"{r['p99_ms']:.1f}", int(r["errors"]),
                         f"{r['rps'] / base['rps']:.2f}x"])  # fmt: skip
    p99_ratio = best[(ours, 16)]["p99_ms"] / best[(peer, 16)]["p99_ms"]
    same = [best[(ours, c)]["rps"] / best[(peer_n, c)]["rps"] for c in CONNECTIONS]
    index = manifest["index"]
    lines = [
        "## Serving: our API vs a FastAPI peer",
        "",
        "- command: `make bench-serving` (`python -m benchmarks.serving`)",
        f"- date: {now()}",
        f"- machine: {machine()}",
        f"- version: {ITEMS:,} x {DIM} items, HNSW {index['params']} (recall@20 vs exact "
        f"{index['recall@20']:.3f}, built in {index['build_seconds']:.0f} s); {USERS:,} users",
        f"- load: wrk, 2 threads, {DURATION_S} s per run after a {WARMUP_S} s warm-up, {ROUNDS} rounds "
        f"alternating the servers, best round shown; bodies: an unknown user with {RECENT} recent items, "
        f"k = {K}; uvicorn; `OMP_NUM_THREADS=1`, `OPENBLAS_CORETYPE` not set",
        f"- our request logging on (DuckDB): {rows_logged:,} rows logged for the {served:,} requests "
        "wrk counted (the rest are the start-up probes)",
        "",
        markdown_table(
            ["server", "connections", "requests/s", "p99 ms", "non-2xx", "vs peer, 1 worker"], rows
        ),
        "",
        f"Single-query search latency: HNSW median {index['latency_ms']['median']:.3f} ms, p99 "
        f"{index['latency_ms']['p99']:.3f} ms; exact (flat) median "
        f"{index['latency_ms']['exact_median']:.2f} ms, p99 {index['latency_ms']['exact_p99']:.2f} ms.",
        "",
        f"Targets (against the peer as one uvicorn process, the reference deployment): "
        f"requests/s >= {TARGET_RPS_RATIO}x at 16 and 64 connections: {verdict(ok)}; p99 at 16 "
        f"connections <= 2/3 of the peer's: {verdict(p99_ratio <= TARGET_P99_RATIO)} "
        f"(ratio {p99_ratio:.2f}). "
        f"Against the peer with as many workers: {same[0]:.2f}x at 16 and {same[1]:.2f}x at 64 connections.",
    ]
    write_section("serving", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
