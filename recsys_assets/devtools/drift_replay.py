"""Drift end to end on the local default: replay later traffic with a planted shift through the
API, compute today's drift metrics, let the sensor ask for a retrain, run it, and watch the API
serve the new version.

    make drift-demo        # after make materialize (the target runs it first)

The traffic is the synthetic data's later months: each user's held-out validation and test
reviews, in time order, replayed as a recommendation request, impressions of the top three
items served and a click on the item the user actually reviewed. The planted shift: a share of
the events (``--shift``, default 0.5) goes instead to newcomers clicking items the model never
trained on (the catalogue's cold items), as a new product line would. The retrain reruns the
pipeline on the same interactions (new months arrive as ``interactions`` partitions in real
use), so it demonstrates the loop, not a better model.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from dagster import DagsterInstance, build_sensor_context

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.artifacts import Artifacts
from recsys_assets.core.io.codecs import read_parquet
from recsys_assets.definitions import defs
from recsys_assets.devtools.local_api import local_api, logged_rows, wait_for
from recsys_assets.settings import Settings, load_settings


def events(settings: Settings, n: int, shift: float, seed: int = 0) -> list[tuple[str, str]]:
    """(user, item) pairs: the later months, with ``shift`` of them moved to cold items."""
    artifacts = Artifacts(settings.artifacts.root)
    splits = read_parquet(artifacts.uri(catalogue.SPLITS), columns=["user_id", "item_id", "ts", "split"])
    later = splits[splits["split"] != "train"].sort_values("ts")
    trained = set(splits.loc[splits["split"] == "train", "item_id"])
    items = read_parquet(artifacts.uri(catalogue.ITEMS), columns=["item_id"])
    cold = [i for i in items["item_id"] if i not in trained]
    if not cold:
        raise SystemExit(
            f"{artifacts.uri(catalogue.ITEMS)}: every item has training interactions; nothing to plant"
        )
    rng = np.random.default_rng(seed)
    rows = later.iloc[np.sort(rng.choice(len(later), min(n, len(later)), replace=False))]
    pairs = list(zip(rows["user_id"], rows["item_id"], strict=True))
    for k in np.flatnonzero(rng.random(len(pairs)) < shift):
        pairs[k] = (f"newcomer-{k}", cold[int(rng.integers(len(cold)))])
    return pairs


async def replay(url: str, pairs: list[tuple[str, str]], concurrency: int = 16) -> dict[str, int]:
    counts = {"requests": 0, "impressions": 0, "clicks": 0, "errors": 0}
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for pair in pairs:
        queue.put_nowait(pair)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            user, item = queue.get_nowait()
            served = await client.post(f"{url}/recommend", json={"user_id": user, "k": 10})
            if served.status_code != 200:
                counts["errors"] += 1
                continue
            body = served.json()
            counts["requests"] += 1
            feedback = [(i["item_id"], "impression") for i in body["items"][:3]] + [(item, "click")]
            for item_id, event in feedback:
                sent = await client.post(
                    f"{url}/feedback",
                    json={
                        "request_id": body["request_id"],
                        "user_id": user,
                        "item_id": item_id,
                        "event": event,
                    },
                )
                if sent.status_code != 202:
                    counts["errors"] += 1
                else:
                    counts["clicks" if event == "click" else "impressions"] += 1

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return counts


def _logged_clicks(path: str, day: dt.date) -> int:
    return logged_rows(path, "feedback_events", "event = 'click' AND CAST(ts AS DATE) = $day", {"day": day})


def drift_then_retrain(today: dt.date, retrain: bool = True) -> bool:
    """Steps 3-5: today's drift metrics, the sensor's decision, the retrain it asks for (unless
    not ``retrain``)."""
    with DagsterInstance.get() as instance:
        drift = defs.resolve_job_def("drift_metrics_daily").execute_in_process(
            instance=instance, partition_key=str(today)
        )
        metadata = drift.asset_materializations_for_node("drift_metrics")[0].metadata
        print(f"3. drift_metrics {today}: breached {metadata['breached'].value}")
        print(metadata["metrics"].value)
        resources = defs.resources or {}
        context = build_sensor_context(instance=instance, resources={"settings": resources["settings"]})
        sensed = defs.resolve_sensor_def("drift_retrain_sensor")(context)
        requests = list(getattr(sensed, "run_requests", None) or [])
        if not requests:
            print(f"4. the sensor requested nothing: {getattr(sensed, 'skip_reason', sensed)}")
            return False
        (request,) = requests
        print(f"4. the sensor requests run {request.run_key} with tags {json.dumps(request.tags)}")
        if not retrain:
            return True
        started = time.monotonic()
        retrained = defs.resolve_job_def("retrain").execute_in_process(
            instance=instance, tags={**request.tags, "dagster/run_key": request.run_key or ""},
            raise_on_error=False,
        )  # fmt: skip
        if not retrained.success:
            print(f"5. retrain run {retrained.run_id} failed")
            return False
        print(f"5. retrain run {retrained.run_id} succeeded in {time.monotonic() - started:.0f} s")
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_500, help="events to replay (default 1500)")
    parser.add_argument("--shift", type=float, default=0.5, help="share moved to cold items (default 0.5)")
    parser.add_argument(
        "--no-retrain",
        action="store_true",
        help="stop after today's drift metrics (the sensor's decision too)",
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    manifest = Path(Artifacts(settings.artifacts.root).uri(catalogue.SERVING_MANIFEST))
    if not manifest.is_file():
        raise SystemExit(f"{manifest}: no published serving version; run `make materialize` first")

    with local_api(manifest, settings.warehouse.duckdb_path) as url:
        before = wait_for(url, lambda b: b.get("status") == "ready", "load a version")["model_version"]
        print(f"1. the API at {url} serves version {before}")
        today = dt.datetime.now(dt.UTC).date()
        clicks_before = _logged_clicks(settings.warehouse.duckdb_path, today)
        pairs = events(settings, args.events, args.shift)
        counts = asyncio.run(replay(url, pairs))
        print(
            f"2. replayed {len(pairs)} later-month events ({args.shift:.0%} planted on cold items): {counts}"
        )
        deadline = time.monotonic() + 60
        while _logged_clicks(settings.warehouse.duckdb_path, today) - clicks_before < counts["clicks"]:
            if time.monotonic() > deadline:
                raise SystemExit("the API's log rows did not reach the warehouse within 60 s")
            time.sleep(0.5)
        print(f"   logged to {settings.warehouse.duckdb_path}")

        if not drift_then_retrain(today, retrain=not args.no_retrain):
            return 1
        if args.no_retrain:
            return 0
        after = wait_for(
            url, lambda b: b.get("model_version") not in (None, before), "pick up the new version"
        )
        served = httpx.post(f"{url}/recommend", json={"user_id": pairs[0][0], "k": 3}, timeout=10).json()
        print(f"6. the API now serves version {after['model_version']} (was {before}): "
              f"/recommend answered with model_version {served['model_version']}")  # fmt: skip
        return 0 if served["model_version"] == after["model_version"] != before else 1


if __name__ == "__main__":
    sys.exit(main())
