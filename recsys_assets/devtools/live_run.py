"""``make run``: the Dagster UI and the API first, then the whole graph as a run of the UI's
instance, followed from the terminal while it can be watched in the UI.

1. Starts ``dagster dev`` (in ``DAGSTER_HOME``, so the instance's ``dagster.yaml`` is the one
   used) and the API, each in its own process group, and waits for the UI to answer and the
   code location to load.
2. Launches ``all_assets`` over every monthly partition (one single-run backfill, the same
   tags ``materialize`` uses) through the UI's GraphQL API, and prints the run's URL.
3. Follows the run in the instance's event log: each step as it starts and ends (of how many),
   the progress lines the steps log (epochs, items/s), and at the end every materialization
   and check, as ``make materialize`` prints them.
4. Keeps the UI and the API up until Ctrl-C (or until either of them exits).

``python -m recsys_assets.devtools.live_run --no-launch`` starts the two servers only.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from recsys_assets.defs.materialize import INFO_LOGS, partition_range_tags
from recsys_assets.defs.run_summary import print_summary
from recsys_assets.settings import PROJECT_ROOT

ROOT = PROJECT_ROOT
#: The UI shows the run from its first event; this long without a loaded code location is an error.
UI_START_TIMEOUT_S = 240
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
#: One step after another in the run's own process, as ``make materialize`` runs them: on a laptop
#: the model steps each use every core (PyTorch's threads), and two at once made the run slower
#: (on 2 cores 3.4 min in one process, 4.8 min with the multiprocess executor). A run launched
#: from the UI gets the job's default, one process per step; choose ``in_process`` in its
#: launchpad for the same as here.
RUN_CONFIG = {"execution": {"config": {"in_process": {}}}, **INFO_LOGS}
#: How each step event reads in the terminal.
STEP_VERBS = {
    DagsterEventType.STEP_START: "started",
    DagsterEventType.STEP_SUCCESS: "done",
    DagsterEventType.STEP_FAILURE: "FAILED",
    DagsterEventType.STEP_SKIPPED: "skipped",
}


@contextmanager
def server(
    name: str, command: list[str], cwd: Path, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process in its own process group writing to ``log`` (the terminal shows the
    run's progress instead), stopped (the whole group) on the way out."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, start_new_session=True, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            print(f"stopped {name}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def wait_for_ui(client: DagsterGraphQLClient, url: str, ui: subprocess.Popen[bytes], log: Path) -> float:
    """Seconds until the UI answers with the code location loaded (``SystemExit`` with the end
    of its log otherwise)."""
    started = time.monotonic()
    query = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
    while time.monotonic() - started < UI_START_TIMEOUT_S:
        if ui.poll() is not None:
            raise SystemExit(
                f"dagster dev exited with status {ui.returncode} before the UI answered; {log}:\n{_tail(log)}"
            )
        try:
            entries = client._execute(query)["workspaceOrError"]["locationEntries"]
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                return time.monotonic() - started
        except (DagsterGraphQLClientError, urllib.error.URLError, OSError, KeyError, TypeError):
            pass  # not up yet
        time.sleep(1)
    raise SystemExit(
        f"the Dagster UI at {url} did not load the code location in {UI_START_TIMEOUT_S} s; "
        f"{log}:\n{_tail(log)}"
    )


def _level(level: str | int) -> int:
    return level if isinstance(level, int) else logging.getLevelName(level.upper())


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


def follow(instance: DagsterInstance, run_id: str, poll_s: float = 1.0) -> DagsterRunStatus:
    """Print the run's steps and its logged progress lines until it ends; return its status."""
    started = time.monotonic()
    cursor = None
    total: int | None = None
    done = 0
    events = []
    while True:
        run = instance.get_run_by_id(run_id)
        if run is None:
            raise SystemExit(f"run {run_id} is not in the instance at {instance.root_directory}")
        if total is None and run.execution_plan_snapshot_id:
            plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
            total = len(plan.steps)
        connection = instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
        cursor = connection.cursor
        for record in connection.records:
            entry = record.event_log_entry
            clock = _clock(time.monotonic() - started)
            event = entry.dagster_event
            if event is None:
                if _level(entry.level) >= logging.INFO and entry.step_key:
                    print(f"[{clock}] {entry.step_key}: {entry.user_message}")
                continue
            events.append(event)
            if event.event_type in STEP_VERBS:
                if event.event_type != DagsterEventType.STEP_START:
                    done += 1
                verb = STEP_VERBS[event.event_type]
                print(f"[{clock}] {verb} {event.step_key} ({done} of {total or '?'} steps done)")
                if event.event_type == DagsterEventType.STEP_FAILURE and event.step_failure_data:
                    error = event.step_failure_data.error
                    print(error.to_string() if error else "(no error recorded)")
        if not connection.has_more and run.status in TERMINAL:
            print(f"[{_clock(time.monotonic() - started)}] run {run.status.value.lower()}")
            failed = print_summary(events)
            if failed:
                print(f"blocking checks failed: {failed}")
            return run.status
        if not connection.has_more:
            time.sleep(poll_s)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the servers are stopped on the way out, as after Ctrl-C


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ui-port", type=int, default=int(os.environ.get("UI_PORT", "3000")))
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", "8000")))
    parser.add_argument("--no-launch", action="store_true", help="start the UI and the API only")
    args = parser.parse_args(argv)

    home = Path(os.environ.get("DAGSTER_HOME", ROOT / ".dagster_home"))
    if not (home / "dagster.yaml").exists():
        raise SystemExit(f"{home}/dagster.yaml is missing: run through `make run`, which copies it there")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows as it comes, piped too
    status: DagsterRunStatus | None = None
    try:
        with ExitStack() as stack:
            status = serve_and_run(stack, home, args.ui_port, args.api_port, launch=not args.no_launch)
    except KeyboardInterrupt:
        print()
    return 1 if status not in (None, DagsterRunStatus.SUCCESS) else 0


def serve_and_run(
    stack: ExitStack, home: Path, ui_port: int, api_port: int, launch: bool
) -> DagsterRunStatus | None:
    """Start both servers (stopped when ``stack`` closes), run the graph, and wait for Ctrl-C;
    return the run's status (None when not launched)."""
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    # One key for the API's workers, drawn per start (request ids are signed with it).
    env.setdefault("RECSYS_REQUEST_ID_KEY", secrets.token_hex(16))
    bin_dir = Path(sys.executable).parent
    ui_url, api_url = f"http://localhost:{ui_port}", f"http://localhost:{api_port}"
    # Not DAGSTER_HOME/logs: Dagster keeps that folder for itself and clears it.
    logs = {"ui": home / "server-logs" / "dagster-dev.log", "api": home / "server-logs" / "api.log"}
    api = stack.enter_context(
        server("the API", [str(bin_dir / "uvicorn"), "--factory", "serving.app:create_app",
                           "--host", "0.0.0.0", "--port", str(api_port)], ROOT, env, logs["api"])
    )  # fmt: skip
    # In DAGSTER_HOME: started in the repository, dagster dev warns that the repository's
    # dagster.yaml (the template copied into DAGSTER_HOME) "will not be used".
    ui = stack.enter_context(
        server("the Dagster UI", [str(bin_dir / "dagster"), "dev", "-w", str(ROOT / "workspace.yaml"),
                                  "-h", "0.0.0.0", "-p", str(ui_port)], home, env, logs["ui"])
    )  # fmt: skip
    client = DagsterGraphQLClient("localhost", port_number=ui_port)
    seconds = wait_for_ui(client, ui_url, ui, logs["ui"])
    print(
        f"\nDagster UI: {ui_url} (up after {seconds:.0f} s)\nAPI: {api_url}\n"
        f"their logs: {logs['ui']}, {logs['api']}\n",
        flush=True,
    )
    status = None
    if launch:
        run_id = client.submit_job_execution(
            "all_assets",
            run_config=RUN_CONFIG,
            tags=partition_range_tags("all_assets"),
        )
        print(f"materializing every asset: {ui_url}/runs/{run_id}", flush=True)
        with DagsterInstance.get() as instance:
            status = follow(instance, run_id)
        if status == DagsterRunStatus.SUCCESS:
            print(
                f"\nrecommendations: {api_url}/explorer\nAPI docs: {api_url}/schema\n"
                "today's drift metrics, once the API has served some requests: `make drift-today` "
                "(or in the UI: Assets > drift_metrics > Materialize, today's partition)"
            )
        else:
            print(f"\nthe run did not succeed; its logs: {ui_url}/runs/{run_id}")
    print(f"\nDagster UI: {ui_url}   API: {api_url}   (Ctrl-C stops both)", flush=True)
    while all(process.poll() is None for process in (ui, api)):
        time.sleep(1)
    for name, process, log in (("the Dagster UI", ui, logs["ui"]), ("the API", api, logs["api"])):
        if process.poll() is not None:
            print(f"{name} exited with status {process.returncode}; {log}:\n{_tail(log)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
