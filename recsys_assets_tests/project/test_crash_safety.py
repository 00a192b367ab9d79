"""Killed runs leave nothing behind: no temporaries that stay, no process that writes on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from upath import UPath

from recsys_assets.core.io.storage import atomic_write, scratch_dir

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def _dead_pid() -> int:
    """The pid of a process that has exited (and, straight after, is not reused)."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A killed child of ours stays a zombie until reaped; a zombie writes nothing.
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def test_the_next_write_removes_temporaries_of_interrupted_writes(tmp_path: Path) -> None:
    host = socket.gethostname().replace(".", "_")
    hexes = iter(f"{i:032x}" for i in range(1, 10))
    orphan = tmp_path / f".2013-03.parquet.{host}.{_dead_pid()}-{next(hexes)}.tmp"
    legacy = tmp_path / f".items.parquet.{next(hexes)}.tmp"  # written before temporaries named their owner
    running = tmp_path / f".items.parquet.{host}.{os.getpid()}-{next(hexes)}.tmp"
    other_host = tmp_path / f".items.parquet.elsewhere.{_dead_pid()}-{next(hexes)}.tmp"
    for path in (orphan, legacy, running, other_host):
        path.write_bytes(b"")
    assert atomic_write(UPath(tmp_path / "2013-04.parquet"), lambda s: s.write(b"x")) == 1
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["2013-04.parquet", running.name, other_host.name])


def test_scratch_folders_of_killed_processes_are_removed(tmp_path: Path, monkeypatch: object) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # type: ignore[attr-defined]
    host = socket.gethostname().replace(".", "_")
    stale = tmp_path / "recsys-scratch" / f"{host}.{_dead_pid()}-{'a' * 32}" / "interactions"
    stale.mkdir(parents=True)
    (stale / "part.arrow").write_bytes(b"x" * 100)
    with scratch_dir("items") as folder:
        assert folder.is_dir() and not stale.parent.exists()
        mine = folder.parent
    assert not mine.exists()


CHILD = (
    "from recsys_assets.core.processes import die_with_parent; die_with_parent(); "
    "print('armed', flush=True); import time; time.sleep(60)"
)


def _parent(then: str, blocked: bool = False) -> subprocess.Popen[str]:
    """A process that starts a child handed its pid (as ``LocalJobRunner`` does), prints the
    child's pid, then runs ``then``; ``blocked``: with SIGTERM blocked and ignored, which the
    child inherits (as from a thread of an event loop that receives signals)."""
    mask = (
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM]); "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    )
    code = textwrap.dedent(
        f"""
        import os, signal, subprocess, sys, time
        {mask if blocked else ""}
        from recsys_assets.core.processes import PARENT_PID_ENV
        env = {{**os.environ, PARENT_PID_ENV: str(os.getpid())}}
        child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], env=env)
        print(child.pid, flush=True)
        {then}
        """
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("blocked", [False, True], ids=["plain", "sigterm-blocked"])
def test_a_child_dies_with_its_parent(blocked: bool) -> None:
    parent = _parent("time.sleep(60)", blocked)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    # The child's own word that it watches its parent (it shares the parent's stdout), however
    # long its imports took on a busy machine.
    assert parent.stdout.readline().strip() == "armed"
    assert not _gone(child, within=0.1)
    parent.kill()
    parent.wait()
    assert _gone(child, within=10), "the child outlived its parent"


def test_a_child_whose_parent_died_before_it_could_watch_dies_too() -> None:
    # The parent is gone before the child has imported anything: getppid() then names another
    # process, but the pid the parent handed it does not.
    parent = _parent("os._exit(0)")
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.wait()
    assert _gone(child, within=60), "the child outlived a parent that died before it armed"
    assert parent.stdout.read() == ""  # it never got to say it was armed


SLOW_DEFINITIONS = """
import os, time
from pathlib import Path
from dagster import Definitions, asset
from recsys_assets.defs.environments import SettingsResource
from recsys_assets.settings import Settings

@asset
def slow(settings: SettingsResource) -> None:
    Path(os.environ["STEP_PID_FILE"]).write_text(str(os.getpid()))
    time.sleep(120)

defs = Definitions(assets=[slow], resources={"settings": SettingsResource.of(Settings.from_env({}))})
"""


def test_killing_the_cli_ends_the_step_process(tmp_path: Path) -> None:
    definitions = tmp_path / "slow_defs.py"
    definitions.write_text(SLOW_DEFINITIONS)
    home = tmp_path / "home"
    home.mkdir()
    pid_file = tmp_path / "step.pid"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")},
        "DAGSTER_HOME": str(home),
        "STEP_PID_FILE": str(pid_file),
        "PYTHONPATH": str(REPO),
    }
    cli = subprocess.Popen(
        [DAGSTER, "asset", "materialize", "-f", str(definitions), "--select", "slow"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists():
            assert cli.poll() is None, "the CLI exited before the step started"
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.2)
        step = int(pid_file.read_text())
        assert step != cli.pid  # the multiprocess executor ran it in its own process
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait()
        assert _gone(step, within=15), "the step process outlived the CLI"
    finally:
        if cli.poll() is None:
            cli.kill()
