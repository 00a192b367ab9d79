"""How long a newcomer waits: ``make run``'s UI and its whole run, on a quiet machine and on a busy one.

    make bench-make-run       # python -m benchmarks.make_run

Each case runs ``python -m recsys_assets.devtools.live_run`` (what ``make run`` runs after setting up) in a
scratch instance and artifact root over the ``small`` synthetic catalogue, and reads its output:
seconds until the UI answered with the code location loaded, and until the run succeeded. The peer
is ``python -m recsys_assets.defs.materialize`` (``make materialize``: the same graph in one process,
no UI) on the same quiet machine, in the same session. "Busy" is the same with one CPU-bound
process per core running beside it (another build, a browser), which is what the first user
report measured. The setup itself (venv, pinned wheels) is not timed: it depends on the network.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results import machine, now, verdict, write_section
from recsys_assets.devtools.local_api import free_port
from recsys_assets.settings import PROJECT_ROOT

SMALL = PROJECT_ROOT / "data" / "raw" / "small"
TARGET_S = 5 * 60


def _env(scratch: Path) -> dict[str, str]:
    home = scratch / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "RECSYS_ARTIFACTS_ROOT": str(scratch / "artifacts"),
        "RECSYS_WAREHOUSE_DUCKDB": str(scratch / "warehouse.duckdb"),
        "RECSYS_RAW_REVIEWS_URI": str(SMALL / "reviews_Electronics_5.json.gz"),
        "RECSYS_RAW_METADATA_URI": str(SMALL / "meta_Electronics.json.gz"),
    }


def live_run() -> tuple[float, float]:
    """Seconds until the UI answered and until the run succeeded (from the command's start)."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "recsys_assets.devtools.live_run",
                   "--ui-port", str(free_port()), "--api-port", str(free_port())]  # fmt: skip
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=_env(Path(scratch)), stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        ui = None
        try:
            for line in process.stdout:
                print(line, end="", flush=True)
                if ui is None and re.search(r"\(up after \d+ s\)", line):
                    ui = time.monotonic() - started
                if re.match(r"\[\d\d:\d\d\] run (\w+)", line):
                    if "run success" not in line:
                        raise SystemExit(f"the run did not succeed: {line.strip()}")
                    assert ui is not None
                    return ui, time.monotonic() - started
            raise SystemExit(f"live_run exited with status {process.wait()} before its run ended")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def materialize() -> float:
    with tempfile.TemporaryDirectory() as scratch:
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "recsys_assets.defs.materialize"], cwd=PROJECT_ROOT,
                       env=_env(Path(scratch)), check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        return time.monotonic() - started


def _burn() -> None:
    while True:
        pass


def main() -> None:
    if not (SMALL / "manifest.json").is_file():
        raise SystemExit(f"{SMALL}: no synthetic catalogue; run `make data` first")
    quiet_ui, quiet_run = live_run()
    peer = materialize()
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(os.cpu_count() or 1)]
    for burner in burners:
        burner.start()
    try:
        busy_ui, busy_run = live_run()
    finally:
        for burner in burners:
            burner.terminate()
    rows = [
        f"| quiet | {quiet_ui:.0f} | {quiet_run:.0f} ({quiet_run / 60:.1f} min) "
        f"| {verdict(quiet_run <= TARGET_S)} |",
        f"| busy (a CPU-bound process per core beside it) | {busy_ui:.0f} | {busy_run:.0f} "
        f"({busy_run / 60:.1f} min) | (reported, no target) |",
    ]
    write_section("make-run", [
        "## make run: the UI, then the whole graph as a run of its instance",
        "",
        "- command: `make bench-make-run` (`python -m benchmarks.make_run`)",
        f"- date: {now()}",
        f"- machine: {machine()}",
        "- input: the `small` synthetic preset (3,000 items, 1,500 users, 50,000 reviews, 24 months); the "
        "default settings; a scratch instance and artifact root per case; setup (venv, wheels) not timed",
        "- target: everything materialized within 5 minutes on a quiet 2-core machine",
        "",
        "| machine | UI answered after s | run succeeded after s (from the command's start) | 5 min |",
        "| --- | ---: | ---: | --- |",
        *rows,
        "",
        f"Peer, the same quiet machine and session: `make materialize` (the same graph in one process, no "
        f"UI) took {peer:.0f} s; the UI-first run took {quiet_run / peer:.2f}x as long "
        f"(starting the UI and the API, launching through the run queue).",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
