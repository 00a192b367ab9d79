"""The whole asset graph materialized once (per test worker) on a small synthetic catalogue, job
modules running as real subprocesses that may not reach the network.

The fixture records what happened and asserts nothing: each test asks for the assets it reads
(``Pipeline.require``), so a broken step fails the tests of that step and of what depends on it,
each naming the step's own error, while the rest of the graph's tests still pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, Definitions, ExecuteInProcessResult, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from recsys_assets.core.io.artifacts import Artifacts
from recsys_assets.core.models import registry
from recsys_assets.defs.assets import catalogue, embeddings, graphs, leakage, models, serving
from recsys_assets.devdata.synthetic import METADATA_FILE, REVIEWS_FILE, generate
from recsys_assets.settings import Settings
from recsys_assets_tests.conftest import make_resources, make_settings

SMALL = {"n_items": 400, "n_users": 200, "n_reviews": 4_000, "n_reviewed_items": 260}
EPOCHS = 15
ASSETS = [
    catalogue.raw_metadata, catalogue.raw_reviews, catalogue.items, catalogue.interactions,
    embeddings.item_text_embeddings, embeddings.item_image_embeddings, embeddings.item_fused_embeddings,
    graphs.interaction_splits, graphs.node_maps, graphs.ui_edges, graphs.ii_edges_txt, graphs.ii_edges_fused,
    graphs.graph_qa_report,
    *models.MODEL_ASSETS.values(), models.eval_report,
    serving.item_embeddings_export, serving.faiss_index,
]  # fmt: skip

NETWORK_GUARD = """
import os, socket
_connect = socket.socket.connect
def _guarded(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
        with open(os.environ["NETWORK_GUARD_LOG"], "a") as log:
            log.write(f"{os.getpid()} {address}\\n")
        raise OSError(f"network access to {address} is forbidden in this test")
    return _connect(self, address)
socket.socket.connect = _guarded
"""


def guarded_env(base: Path) -> dict[str, str]:
    """Environment for job subprocesses in which any non-loopback connection fails and is logged."""
    guard = base / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NETWORK_GUARD)
    return {
        "PYTHONPATH": os.pathsep.join([str(guard), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "NETWORK_GUARD_LOG": str(base / "network.log"),
    }


@dataclass
class Pipeline:
    base: Path
    settings: Settings
    resources: dict[str, Any]
    success: bool
    #: Asset -> its materializations' metadata (the last one), for the assets that materialized.
    metadata: dict[str, dict[str, Any]]
    checks: dict[str, Any]
    #: Step -> its error, for the steps that failed.
    failures: dict[str, str]
    images: int
    network_log: Path
    run_id: str = ""
    partitions: dict[str, int] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return Path(self.settings.artifacts.root)

    @property
    def artifacts(self) -> Artifacts:
        return Artifacts(self.settings.artifacts.root)

    def require(self, *assets: str) -> None:
        """Fail (naming the cause) unless every one of ``assets`` materialized."""
        for name in assets:
            if name not in self.metadata:
                cause = (
                    self.failures.get(name) or f"not run: an upstream step failed ({sorted(self.failures)})"
                )
                pytest.fail(f"{name} did not materialize: {cause}")


def execute_graph(
    assets: list[Any], resources: dict[str, Any], instance: DagsterInstance
) -> ExecuteInProcessResult:
    """``assets`` and the leakage checks in one run over the synthetic presets' months."""
    job = Definitions(
        assets=assets, asset_checks=leakage.LEAKAGE_CHECKS, resources=resources
    ).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: "2012-08", ASSET_PARTITION_RANGE_END_TAG: "2014-07"},
        raise_on_error=False,
    )


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    base = tmp_path_factory.mktemp("pipeline")
    env = guarded_env(base)
    raw = base / "raw"
    generate("small", raw, overrides=SMALL)
    # Two broken image URLs: one missing file, one corrupt file.
    images = sorted((raw / "images").iterdir())
    images[0].unlink()
    images[1].write_bytes(b"not an image")
    epochs = {"epochs": EPOCHS}
    settings = make_settings(
        base,
        data={"reviews_uri": str(raw / REVIEWS_FILE), "metadata_uri": str(raw / METADATA_FILE)},
        embeddings={"image": {"workers": 4}, "model_cache": str(base / "onnx")},
        # Every model trained by epochs, capped (the registry says which).
        models={spec.settings: epochs for spec in registry.MODELS if spec.epochs and spec.settings},
    )
    resources = make_resources(settings, runner_env=env)
    with DagsterInstance.ephemeral() as instance:
        result = execute_graph(ASSETS, resources, instance)
        metadata: dict[str, dict[str, Any]] = {}
        partitions: dict[str, int] = {}
        for event in result.get_asset_materialization_events():
            key = event.asset_key.to_user_string()
            metadata[key] = dict(event.materialization.metadata)
            partitions[key] = partitions.get(key, 0) + 1
        failures = {}
        for event in result.all_events:
            if event.is_step_failure and event.step_key and event.step_failure_data.error:
                failures[event.step_key] = event.step_failure_data.error.to_string()
        return Pipeline(
            base=base,
            settings=settings,
            resources=resources,
            success=result.success,
            metadata=metadata,
            checks={e.check_name: e for e in result.get_asset_check_evaluations()},
            failures=failures,
            images=len(images),
            network_log=Path(env["NETWORK_GUARD_LOG"]),
            run_id=result.run_id,
            partitions=partitions,
        )


def pinned_export(pipeline: Pipeline, root: Path, pinned: str) -> Artifacts:
    """The pipeline's artifacts copied to ``root``, evaluated again with ``pinned`` as the
    candidate, and exported and published from there."""

    pipeline.require("faiss_index")
    shutil.copytree(pipeline.root, root)
    settings = pipeline.settings.with_changes(
        {"artifacts": {"root": str(root)}, "models": {"candidate": pinned}}
    )
    with DagsterInstance.ephemeral() as instance:
        result = materialize([models.eval_report, serving.item_embeddings_export, serving.faiss_index],
                             resources=make_resources(settings), instance=instance)  # fmt: skip
    assert result.success
    return Artifacts(str(root))


@pytest.fixture(scope="session")
def ranker_version(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """The pipeline's artifacts with the two-stage ranker pinned, exported and published."""
    return pinned_export(pipeline, tmp_path_factory.mktemp("ranker") / "artifacts", "ranker")


@pytest.fixture(scope="session", autouse=True)
def _network_guard_works(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A job process that tries to reach the internet is stopped and logged (else the
    pipeline's 'no network' result would mean nothing)."""
    env = guarded_env(tmp_path_factory.mktemp("guard"))
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('8.8.8.8', 53), timeout=2)"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 1 and "is forbidden in this test" in probe.stderr
    assert Path(env["NETWORK_GUARD_LOG"]).read_text().strip()
