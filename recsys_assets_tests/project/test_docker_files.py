"""The container files, checked offline: hadolint on every Dockerfile, pinned bases, the smaller
images' requirement lists pinned by the lock and covering what the API imports, and the compose
file wired to the production instance's settings."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _names(path: Path) -> list[str]:
    return [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]


def test_dockerfiles_pass_hadolint() -> None:
    assert [p.name for p in DOCKERFILES] == ["api.Dockerfile", "code.Dockerfile", "jobs.Dockerfile"]
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run(
        [str(hadolint), *map(str, DOCKERFILES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_images_are_pinned_and_stages_run_as_a_user() -> None:
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        bases = re.findall(r"^FROM (\S+)", text, flags=re.M)
        assert bases, dockerfile
        for base in bases:
            assert re.search(r":\d+\.\d+\.\d+", base), f"{dockerfile.name}: {base} is not pinned to a version"
        assert re.search(r"^USER 10001$", text, flags=re.M), f"{dockerfile.name} runs as root"
        assert "HEALTHCHECK" in text or dockerfile.name == "jobs.Dockerfile"


def test_image_requirements_are_pinned_by_the_lock() -> None:
    locked = _locked()
    for listing in ("api-requirements.in", "jobs-requirements.in"):
        for name in _names(DOCKER / listing):
            assert re.sub(r"[-_.]+", "-", name).lower() in locked, (
                f"{listing}: {name} is not in requirements.lock"
            )


def copied_tree(dockerfile: str, target: Path) -> Path:
    """The files the Dockerfile's final stage copies from the repository, at their image paths
    (relative to its WORKDIR), under ``target``."""
    final = (DOCKER / dockerfile).read_text().rsplit("\nFROM ", 1)[1]
    for line in final.splitlines():
        if not line.startswith("COPY ") or "--from=" in line:
            continue
        *sources, destination = [part for part in line.split()[1:] if not part.startswith("--")]
        for source in sources:
            into = target / destination
            if destination.endswith("/"):
                into = into / Path(source).name
            into.parent.mkdir(parents=True, exist_ok=True)
            copy = shutil.copytree if (ROOT / source).is_dir() else shutil.copyfile
            copy(ROOT / source, into)
    return target


def test_the_jobs_image_holds_every_module_the_jobs_import(tmp_path: Path) -> None:
    """Every job module imports from the files the jobs image copies (Dagster blocked, the
    project's editable install out of the way), and the image holds no Dagster layer."""
    tree = copied_tree("jobs.Dockerfile", tmp_path / "app")
    script = textwrap.dedent(
        """
        import sys, importlib, pkgutil
        editable = [f for f in sys.meta_path if "Editable" in getattr(f, "__name__", type(f).__name__)]
        sys.meta_path = [f for f in sys.meta_path if f not in editable]
        import recsys_assets.pipes as jobs
        for module in pkgutil.iter_modules(jobs.__path__):
            importlib.import_module("recsys_assets.pipes." + module.name)
        assert "dagster" not in sys.modules, "dagster was imported"
        print(jobs.__file__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tmp_path,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().startswith(str(tree))
    assert (
        not (tree / "recsys_assets" / "assets").exists() and not (tree / "recsys_assets" / "devdata").exists()
    )


def test_the_api_runs_with_only_its_image_requirements(tmp_path: Path) -> None:
    """A venv holding only docker/api-requirements.in (at the lock's versions, from PyPI), and
    only the files the API image copies, the way the image is built, serves a real published
    version: nothing it imports is missing, and no training code is there to import."""
    from recsys_assets_tests.conftest import free_port, stop
    from recsys_assets_tests.serving.versions import manifest_of, publish_ranker_version

    tree = copied_tree("api.Dockerfile", tmp_path / "app")
    assert not (tree / "recsys_assets" / "core" / "models").exists()
    core = tree / "recsys_assets" / "core"
    assert sorted(p.name for p in (core / "serving").iterdir()) == ["__init__.py", "bundle.py"]
    assert sorted(p.name for p in (core / "experiments").iterdir()) == ["__init__.py", "assignment.py"]
    assert {"candidates.py", "features.py", "known.py", "online.py"} <= {
        p.name for p in (core / "ranking").iterdir()
    }

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c",
         str(ROOT / "requirements.lock"), "-r", str(DOCKER / "api-requirements.in")],
        check=True,
    )  # fmt: skip
    # A two-stage version: LightGBM and the ranking code are in the image, torch is not.
    publish_ranker_version(tmp_path, "v1")
    port = free_port()
    env = {
        "PATH": str(venv / "bin"),
        "PYTHONPATH": str(tree),
        "HOME": str(tmp_path),
        "RECSYS_SERVING_MANIFEST": str(manifest_of(tmp_path)),
        "RECSYS_LOG_SINK": "duckdb",
        "RECSYS_WAREHOUSE_DUCKDB": str(tmp_path / "warehouse.duckdb"),
    }
    log = tmp_path / "api.log"
    with log.open("wb") as sink:  # a file, not a pipe nobody reads
        server = subprocess.Popen(
            [str(venv / "bin" / "uvicorn"), "--factory", "serving.app:create_app", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    assert json.loads(response.read()) == {"status": "ready", "model_version": "v1"}
                    break
            except OSError:
                assert time.monotonic() < deadline, "the API did not start"
                time.sleep(0.3)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/recommend", data=json.dumps({"user_id": "t5", "k": 3}).encode(),
            headers={"content-type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            served = json.loads(response.read())
            assert served["strategy"] == "user" and all(item["sources"] for item in served["items"])
    finally:
        stop(server)
    # Neither Dagster nor torch is in the image.
    for module in ("dagster", "torch"):
        probe = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, check=False)
        assert probe.returncode == 1, module


def test_compose_runs_the_stack_with_the_production_instance() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "gcs", "code", "webserver", "daemon", "api"}
    for service in services.values():
        if "build" in service:
            assert (DOCKER / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        if "image" in service and "build" not in service and service["image"].startswith("recsys-"):
            assert any(s.get("image") == service["image"] and "build" in s for s in services.values())
        elif "build" not in service:
            assert re.search(r":\d+\.\d+", service["image"]), f"{service['image']} is not pinned"
    # Every {env: X} of the production dagster.yaml and workspace.yaml is set for the Dagster services.
    wanted = set()
    for name in ("dagster.yaml", "workspace.yaml"):
        wanted |= set(re.findall(r"\{env: (\w+)\}", (DOCKER / "dagster_home" / name).read_text()))
    for name in ("code", "webserver", "daemon"):
        assert wanted <= set(services[name]["environment"]), (
            name,
            wanted - set(services[name]["environment"]),
        )
    assert services["daemon"]["volumes"] == ["/var/run/docker.sock:/var/run/docker.sock"]
    env = services["code"]["environment"]
    assert env["DAGSTER_POSTGRES_PASSWORD"] == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert (DOCKER / "gcs-seed" / env["RECSYS_GCS_BUCKET"]).is_dir()


def test_the_gcp_override_replaces_the_stand_ins_and_sets_every_instance_setting() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!override", lambda loader, node: loader.construct_mapping(node))  # type: ignore[arg-type]
    base = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    gcp = yaml.load((DOCKER / "compose.gcp.yaml").read_text(), Loader=Loader)["services"]
    assert set(gcp) == {"postgres-proxy", "code", "webserver", "daemon"}
    assert set(gcp) - {"postgres-proxy"} <= set(base)
    wanted = set()
    for name in ("dagster.yaml", "workspace.yaml"):
        wanted |= set(re.findall(r"\{env: (\w+)\}", (DOCKER / "dagster_home" / name).read_text()))
    for name in ("code", "webserver", "daemon"):
        env = gcp[name]["environment"]
        assert wanted <= set(env) and env["DAGSTER_POSTGRES_HOST"] == "postgres-proxy"
        assert env["STORAGE_EMULATOR_HOST"] == "" and gcp[name]["pull_policy"] == "always"
    assert re.search(r":\d+\.\d+\.\d+$", gcp["postgres-proxy"]["image"])
