"""What one ``/recommend`` costs, part by part: our API and the FastAPI peer, same version.

    python -m benchmarks.serving_profile     # prints the table; ``benchmarks.serving`` writes it

Measured in CPU microseconds per request (``time.process_time`` over many calls, every thread
of the process counted), on the serving benchmark's version and request bodies:

- each part of a request on its own: decoding the body into its schema, planning (id lookups
  and the query vector), the FAISS search, filtering and building the items, encoding the
  response, and (ours) the log row: built, buffered and written to DuckDB, a batch's write
  (``serving.log_batch_rows``) shared among its rows;
- the whole request through the ASGI app in-process, without a server or sockets: what is
  left over after the parts is the framework (routing, middleware, the response cycle; the
  peer's sync handler adds a hop to a thread and back);
- the whole request on a live uvicorn process under wrk (16 connections): what is left over
  after the in-process total is the HTTP server and the loopback sockets (and, for the peer,
  its threads contending for the GIL under concurrent requests).

Every figure is the least of a few runs: the machine is shared, and other work only adds.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recsys_assets.core.markdown import markdown_table

ROOT = Path(__file__).resolve().parent.parent
BODIES = 2_000


def cpu_us(call: Callable[[], Any], n: int, repeats: int = 3) -> float:
    """CPU microseconds per call of ``call``: the least over ``repeats`` runs of ``n`` calls
    (the machine is shared: other work only ever adds)."""
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(n):
            call()
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


def request_bodies(items: int, recent: int, k: int, n: int = BODIES) -> list[bytes]:
    """The benchmark's bodies: an unknown user with ``recent`` recent items, top ``k``."""
    rng = np.random.default_rng(2)
    return [
        json.dumps(
            {"user_id": f"new{i}", "k": k, "recent_items": [f"B{j:09d}" for j in rng.choice(items, recent)]}
        ).encode()
        for i in range(n)
    ]


class Cycle:
    """Calls ``fn`` with the next of ``values`` each time (so no part is timed on one input)."""

    def __init__(self, fn: Callable[[Any], Any], values: list[Any]):
        self.fn, self.values, self.at = fn, values, 0

    def __call__(self) -> Any:
        self.at = (self.at + 1) % len(self.values)
        return self.fn(self.values[self.at])


async def asgi_post(app: Any, path: str, body: bytes) -> int:
    """One POST through an ASGI app in-process; its status."""
    status = [0]
    sent = [False]

    async def receive() -> dict[str, Any]:
        if sent[0]:
            await asyncio.sleep(3600)  # the client never disconnects mid-request
        sent[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip
    await app(scope, receive, send)
    return status[0]


def asgi_cpu_us(app: Any, bodies: list[bytes], n: int, lifespan: Any = None) -> float:
    """CPU microseconds per ``/recommend`` through ``app`` in-process (every status 200)."""

    async def run() -> float:
        async def many(count: int) -> None:
            for i in range(count):
                status = await asgi_post(app, "/recommend", bodies[i % len(bodies)])
                assert status == 200, status

        await many(50)  # warm-up
        best = float("inf")
        for _ in range(3):  # the least of three, as in ``cpu_us``
            start = time.process_time()
            await many(n)
            best = min(best, (time.process_time() - start) / n * 1e6)
        return best

    async def with_lifespan() -> float:
        if lifespan is None:
            return await run()
        async with lifespan():
            return await run()

    return asyncio.run(with_lifespan())


def live_cpu_us(
    factory: str, env: dict[str, str], connections: int, script: Path, seconds: int, repeats: int = 2
) -> dict[str, float]:
    """Server CPU microseconds per request (every thread, user and system) of one uvicorn
    process under wrk, the least over ``repeats`` runs, with that run's requests/s."""
    from benchmarks.serving import start, wrk

    process, url = start(factory, env, 1)
    runs = []
    try:
        wrk(url, connections, script, 3)  # warm-up
        for _ in range(repeats):
            before = _process_cpu_s(process.pid)
            result = wrk(url, connections, script, seconds)
            runs.append({"cpu_us": (_process_cpu_s(process.pid) - before) / result["requests"] * 1e6,
                         "rps": result["rps"]})  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=60)
    return min(runs, key=lambda r: r["cpu_us"])


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ours(manifest: str, warehouse: Path, bodies: list[bytes], n: int) -> dict[str, float]:
    """Our API's parts (µs of CPU per request)."""
    import msgspec
    from litestar.serialization import encode_json

    from recsys_assets.core.serving.bundle import load_bundle
    from recsys_assets.core.warehouse.tables import LOG_TABLES
    from recsys_assets.settings import load_settings
    from serving import app as api
    from serving import recommender
    from serving.controllers import recommend as routes
    from serving.request_log import DuckDBSink
    from serving.schemas.recommend import RecommendRequest, RecommendResponse

    bundle = load_bundle(manifest)
    requests = [msgspec.json.decode(b, type=RecommendRequest, strict=True) for b in bodies]
    plans = [recommender.plan(bundle, r.user_id, r.k, r.recent_items, r.exclude_items) for r in requests]
    queries = [p.query for p in plans if p.query is not None]
    assert bundle.index is not None
    assert len(queries) == len(plans)
    hits = [bundle.index.search(q[None, :], p.first_fetch()) for q, p in zip(queries, plans, strict=True)]

    def rest(i: int) -> list[Any]:
        items, scores = recommender.take((hits[i][0][0], hits[i][1][0]), plans[i].k, plans[i].excluded)
        return routes._scored(bundle, items, scores)

    scored = [rest(i) for i in range(len(plans))]
    responses = [
        RecommendResponse(
            request_id="0" * 32,
            user_id=r.user_id,
            strategy="recent_items",
            model_version="v",
            items=s,
            unknown_items=[],
        )
        for r, s in zip(requests, scored, strict=True)
    ]
    start = time.perf_counter()
    rows = [
        routes._request_row("0" * 32, r, "recent_items", "v", s, start, None, "control", [])
        for r, s in zip(requests, scored, strict=True)
    ]
    sink = DuckDBSink(str(warehouse))
    settings = load_settings()
    table = LOG_TABLES["recommendation_requests"]
    batch = (rows * (settings.serving.log_batch_rows // len(rows) + 1))[: settings.serving.log_batch_rows]
    parts = {
        "decode the body (msgspec, strict)": cpu_us(
            Cycle(lambda b: msgspec.json.decode(b, type=RecommendRequest, strict=True), bodies), n
        ),
        "plan (ids, query vector)": cpu_us(
            Cycle(
                lambda r: recommender.plan(bundle, r.user_id, r.k, r.recent_items, r.exclude_items), requests
            ),
            n,
        ),
        "FAISS search": cpu_us(
            Cycle(lambda p: bundle.index.search(p.query[None, :], p.first_fetch()), plans), n
        ),
        "filter and build the items": cpu_us(Cycle(rest, list(range(len(plans)))), n),
        "encode the response": cpu_us(Cycle(encode_json, responses), n),
        "log row: build and buffer": cpu_us(
            Cycle(
                lambda r: routes._request_row(
                    "0" * 32, r, "recent_items", "v", scored[0], start, None, "control", []
                ),
                requests,
            ),
            n,
        ),
        f"log row: DuckDB write ({len(batch):,}-row batches)": cpu_us(lambda: sink.write(table, batch), 5, 1)
        / len(batch),
    }
    app = api.create_app(settings.model_copy(update={"serving": settings.serving.model_copy(update={
        "manifest_uri": manifest})}), sink)  # fmt: skip
    parts["whole request, in-process"] = asgi_cpu_us(app, bodies, n, app.lifespan)
    return parts


def peer(manifest: str, bodies: list[bytes], n: int, search_us: float) -> dict[str, float]:
    """The FastAPI peer's parts (µs of CPU per request); its search is ours (the same call)."""
    os.environ["RECSYS_SERVING_MANIFEST"] = manifest
    from benchmarks import serving_peer

    app = serving_peer.create_app()
    validate = serving_peer.RecommendRequest.model_validate_json
    response = serving_peer.RecommendResponse(
        user_id="new0", items=[serving_peer.Item(item_id=f"B{i:09d}", score=0.5) for i in range(20)]
    )
    return {
        "decode the body (pydantic)": cpu_us(Cycle(validate, bodies), n),
        "FAISS search": search_us,
        "encode the response (pydantic)": cpu_us(response.model_dump_json, n),
        "whole request, in-process": asgi_cpu_us(app, bodies, n),
    }


def profile(manifest: str, warehouse: Path, script: Path, env: dict[str, str], n: int = 3_000) -> list[str]:
    """The profile as markdown lines (a table per server)."""
    from benchmarks.serving import ITEMS, RECENT, K

    bodies = request_bodies(ITEMS, RECENT, K)
    os.environ["OMP_NUM_THREADS"] = "1"
    warehouse.unlink(missing_ok=True)
    mine = ours(manifest, warehouse, bodies, n)
    results = {"ours": mine, "peer": peer(manifest, bodies, n, mine["FAISS search"])}
    live = {
        "ours": live_cpu_us("serving.app:create_app", env, 16, script, 10),
        "peer": live_cpu_us("benchmarks.serving_peer:create_app", env, 16, script, 10),
    }
    lines = []
    for name, parts in results.items():
        whole = parts.pop("whole request, in-process")
        rows = [[part, f"{us:.1f}"] for part, us in parts.items()]
        rows.append(
            [
                "framework: routing, middleware, response cycle (the peer: its thread hop too)",
                f"{whole - sum(parts.values()):.1f}",
            ]
        )
        rows.append(["**whole request, in-process (ASGI, no sockets)**", f"**{whole:.1f}**"])
        rows.append(
            ["HTTP server and sockets (uvicorn, live, 16 connections)", f"{live[name]['cpu_us'] - whole:.1f}"]
        )
        rows.append(["**whole request, live**", f"**{live[name]['cpu_us']:.1f}**"])
        lines += [f"{name} (one process, {live[name]['rps']:,.0f} requests/s live):", "",
                  markdown_table(["part", "CPU µs per request"], rows), ""]  # fmt: skip
    return lines[:-1]


def main() -> None:
    from benchmarks.serving import WORKDIR, bodies, build_version, server_env

    root = WORKDIR / "version"
    build_version(root)
    env = server_env(root, WORKDIR / "profile.duckdb")
    lines = profile(env["RECSYS_SERVING_MANIFEST"], WORKDIR / "profile-parts.duckdb",
                    bodies(WORKDIR / "bodies.lua"), env)  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
