"""Online experiments end to end, on a demo root of their own (``data/experiment-demo/``):

1. publish a control version, then a better one as an A/B treatment (half the users);
2. replay users through the real API, clicking by a planted model of their taste: the better
   version ranks their taste better, so they click more;
3. the ``experiment_report`` asset finds the difference with its always-valid test, and the
   experiment sensor proposes promotion; the demo promotes it as an operator would;
4. publish a worse version as the next treatment, replay, report: the sensor stops it by
   itself (its ``end_experiment`` run), and the API serves the control to everyone again.

    make experiment-demo

The versions are small planted ones (users and items in taste clusters; a version's item
vectors blur the clusters by its noise), so the demo needs no materialized pipeline. It also
measures the test's stated error rate: A/A experiments peeked at after every batch.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from recsys_assets.settings import PROJECT_ROOT

ROOT = PROJECT_ROOT / "data" / "experiment-demo"
CLUSTERS, PER_CLUSTER, DIM, USERS = 8, 40, 16, 600
#: Item-vector noise of each planted version: more noise, clusters less clear, fewer clicks.
NOISE = {"v1-control": 6.0, "v2-better": 2.0, "v3-worse": 14.0}


def _configure() -> None:
    """Point every setting at the demo root (before the definitions are imported)."""
    os.environ.update({
        "RECSYS_ARTIFACTS_ROOT": str(ROOT / "artifacts"),
        "RECSYS_WAREHOUSE_DUCKDB": str(ROOT / "warehouse.duckdb"),
        "RECSYS_LOG_SINK": "duckdb",
    })  # fmt: skip


def publish_planted(version: str, rollout: str) -> None:
    """A version whose item vectors are the cluster centres blurred by ``NOISE[version]``."""
    from recsys_assets.core.io.artifacts import Artifacts
    from recsys_assets.core.io.sparse import Csr
    from recsys_assets.core.serving.export import common_files, publish, vector_files, write_files
    from recsys_assets.core.serving.index import build_index, index_bytes
    from recsys_assets.settings.serving import IndexConfig

    rng = np.random.default_rng(sorted(NOISE).index(version))
    centres = np.eye(DIM)[:CLUSTERS]
    n_items = CLUSTERS * PER_CLUSTER
    items = centres[np.arange(n_items) // PER_CLUSTER] + rng.normal(
        scale=NOISE[version] / np.sqrt(DIM), size=(n_items, DIM)
    )
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    users = centres[np.arange(USERS) % CLUSTERS]
    history = Csr(np.zeros(USERS + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    files = vector_files(items.astype(np.float32), users.astype(np.float32)) | common_files(
        [f"user-{u}" for u in range(USERS)], [f"item-{i}" for i in range(n_items)],
        [f"item {i} (taste {i // PER_CLUSTER})" for i in range(n_items)], history, np.zeros(0), n_items,
    )  # fmt: skip
    artifacts = Artifacts(str(ROOT / "artifacts"))
    write_files(artifacts, version, files)
    write_files(
        artifacts, version, {"index.faiss": index_bytes(build_index(items.astype(np.float32), IndexConfig()))}
    )
    publish(artifacts, version, {"model": {"name": f"planted ({version})"}}, rollout, 0.5)  # type: ignore[arg-type]
    pd.DataFrame({"item_id": [f"item-{i}" for i in range(n_items)]}).to_parquet(
        ROOT / "artifacts" / "items.parquet"
    )


async def replay(url: str, rounds: int, seed: int) -> dict[str, int]:
    """Every user asks ``rounds`` times, and clicks the first item of their taste cluster with
    probability 0.5 x (the share of the 5 items shown that are of their taste): a version that
    ranks their taste better gets more clicks."""
    rng = np.random.default_rng(seed)
    counts = {"requests": 0, "clicks": 0, "errors": 0}
    order = [u for _ in range(rounds) for u in rng.permutation(USERS).tolist()]
    draws = iter(rng.random(len(order)).tolist())

    async def one(client: httpx.AsyncClient, user: int) -> None:
        response = await client.post(f"{url}/recommend", json={"user_id": f"user-{user}", "k": 5})
        if response.status_code != 200:
            counts["errors"] += 1
            return
        body = response.json()
        counts["requests"] += 1
        shown = [i["item_id"] for i in body["items"]]
        liked = [i for i in shown if int(i.split("-")[1]) // PER_CLUSTER == user % CLUSTERS]
        if liked and next(draws) < 0.5 * len(liked) / len(shown):
            event = {
                "request_id": body["request_id"],
                "user_id": f"user-{user}",
                "item_id": liked[0],
                "event": "click",
            }
            sent = await client.post(f"{url}/feedback", json=event)
            counts["clicks" if sent.status_code == 202 else "errors"] += 1

    async with httpx.AsyncClient(timeout=30) as client:
        for start in range(0, len(order), 32):
            await asyncio.gather(*(one(client, u) for u in order[start : start + 32]))
    return counts


def _logged(requests: int) -> None:
    """Wait until ``requests`` request rows in all reached the warehouse."""
    from recsys_assets.devtools.local_api import logged_rows

    deadline = time.monotonic() + 60
    while logged_rows(str(ROOT / "warehouse.duckdb"), "recommendation_requests") < requests:
        if time.monotonic() > deadline:
            raise SystemExit("the API's log rows did not reach the warehouse within 60 s")
        time.sleep(0.5)


def report_and_sense(instance: Any, today: dt.date) -> tuple[list[dict[str, Any]], Any]:
    """Materialize today's experiment report, then evaluate the experiment sensor on it."""
    from dagster import build_sensor_context

    from recsys_assets.definitions import defs

    result = defs.resolve_job_def("experiment_report_daily").execute_in_process(
        instance=instance, partition_key=str(today)
    )
    metadata = result.asset_materializations_for_node("experiment_report")[0].metadata
    print(metadata["report"].value)
    resources = defs.resources or {}
    context = build_sensor_context(instance=instance, resources={"settings": resources["settings"]})
    decided: list[dict[str, Any]] = metadata["decisions"].value  # type: ignore[assignment]
    return decided, defs.resolve_sensor_def("experiment_sensor").evaluate_tick(context)


def aa_false_positives(runs: int = 400, looks: int = 30, per_look: int = 400, alpha: float = 0.05) -> float:
    """The share of A/A experiments (no difference) the always-valid test ever rejects when it
    is read after every batch."""
    from recsys_assets.core.experiments.sequential import Counts, always_valid

    rng = np.random.default_rng(0)
    rejected = 0
    for _ in range(runs):
        a, b = np.cumsum(rng.binomial(per_look, 0.3, looks)), np.cumsum(rng.binomial(per_look, 0.3, looks))
        n = per_look * np.arange(1, looks + 1)
        series = [(Counts(int(m), int(x)), Counts(int(m), int(y))) for m, x, y in zip(n, a, b, strict=True)]
        rejected += always_valid(series, alpha, 0.02).significant
    return rejected / runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="requests per user per phase (default 4)")
    args = parser.parse_args(argv)
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    _configure()
    from dagster import DagsterInstance

    from recsys_assets.core.io.artifacts import SERVING_MANIFEST, Artifacts
    from recsys_assets.definitions import defs
    from recsys_assets.devtools.local_api import local_api, wait_for

    manifest = Path(Artifacts(str(ROOT / "artifacts")).uri(SERVING_MANIFEST))
    today = dt.datetime.now(dt.UTC).date()
    publish_planted("v1-control", "replace")
    publish_planted("v2-better", "ab")
    print("1. published v1-control, then v2-better as an A/B treatment for half the users")
    ok = True
    with local_api(manifest, str(ROOT / "warehouse.duckdb")) as url, DagsterInstance.ephemeral() as instance:
        wait_for(url, lambda b: b.get("status") == "ready", "load a version")
        counts = asyncio.run(replay(url, args.rounds, seed=1))
        logged = counts["requests"]
        _logged(logged)
        print(f"2. replayed {counts}")
        decided, tick = report_and_sense(instance, today)
        better = [d for d in decided if d["arm"] == "treatment" and d["decision"] == "promote"]
        print(f"3. the report: {decided}\n   the sensor: {tick.skip_message or tick.run_requests}")
        ok &= bool(better) and "significantly better" in (tick.skip_message or "")
        promote = {
            "ops": {
                "end_running_experiment": {
                    "config": {"experiment": "v1-control-vs-v2-better", "action": "promote"}
                }
            }
        }
        defs.resolve_job_def("end_experiment").execute_in_process(run_config=promote, instance=instance)
        served = wait_for(url, lambda b: b.get("model_version") == "v2-better", "promote v2-better")
        print(f"   promoted as an operator would: the API serves {served['model_version']}")

        publish_planted("v3-worse", "ab")
        wait_for(url, lambda b: True, "stay up")
        time.sleep(3)  # the API's next manifest check starts the new experiment
        counts = asyncio.run(replay(url, args.rounds, seed=2))
        _logged(logged + counts["requests"])
        print(f"4. published v3-worse as the next treatment; replayed {counts}")
        decided, tick = report_and_sense(instance, today)
        (request,) = tick.run_requests or [None]
        ok &= request is not None and request.tags.get("action") == "stop"
        print(f"   the sensor requests: {request.tags if request else tick.skip_message}")
        if request is not None:
            defs.resolve_job_def("end_experiment").execute_in_process(
                run_config=request.run_config, instance=instance
            )
            time.sleep(3)
            body = httpx.post(f"{url}/recommend", json={"user_id": "user-1"}, timeout=10).json()
            print(f"5. stopped: user-1 is served by {body['model_version']} "
                  f"(arm {body['arm']}, experiment {body['experiment']})")  # fmt: skip
            ok &= body["experiment"] is None and body["model_version"] == "v2-better"
    rate = aa_false_positives()
    print(f"6. error rate: 400 A/A experiments read after each of 30 batches: {rate:.1%} rejected (alpha 5%)")
    return 0 if ok and rate <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
