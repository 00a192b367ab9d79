"""The Vertex AI job runner: exact CustomJob requests, Pipes over the GCS emulator, cancel, retry.

Vertex AI's job API has no local stand-in, so ``FakeJobService`` plays it: it records every
request and "runs" a created job by starting the container's command as a local process
with the container's environment, which is what Vertex AI does on its VM. Everything else
(Pipes context and messages through GCS) is real, against gcp-storage-emulator.
"""

import os
import subprocess
import sys
from typing import Any

import pytest
from dagster import (
    AssetExecutionContext,
    DagsterExecutionInterruptedError,
    DagsterInstance,
    Definitions,
    MaterializeResult,
    asset,
)
from google.cloud import aiplatform_v1

from recsys_assets_tests.conftest import GCS_BUCKET
from recsys_assets_tests.pipes_echo_job import EchoParams
from resources.job_runners import JobRunner, LocalJobRunner, VertexJobRunner
from resources.vertex_pipes import VertexJobFailedError, console_url

State = aiplatform_v1.JobState
PROJECT, REGION = "test-project", "europe-west4"


@pytest.fixture(autouse=True)
def _short_pipes_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    # A preempted attempt never writes messages; Dagster then waits 10 s for late ones
    # before closing the session. One second is plenty against a local emulator.
    import dagster._core.pipes.utils as pipes_utils

    monkeypatch.setattr(pipes_utils, "WAIT_FOR_LOGS_AFTER_EXECUTION_INTERVAL", 1)


class FakeJobService:
    """Records create/get/cancel calls; runs jobs as local processes."""

    def __init__(self, preempt_first: int = 0, interrupt_on_poll: bool = False):
        self.created: list[tuple[str, aiplatform_v1.CustomJob]] = []
        self.cancelled: list[str] = []
        self.polls = 0
        self.preempt_first = preempt_first
        self.interrupt_on_poll = interrupt_on_poll
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def create_custom_job(self, parent: str, custom_job: aiplatform_v1.CustomJob) -> aiplatform_v1.CustomJob:
        self.created.append((parent, custom_job))
        job = aiplatform_v1.CustomJob(custom_job)
        job.name = f"{parent}/customJobs/{1000 + len(self.created)}"
        job.state = State.JOB_STATE_PENDING
        if len(self.created) <= self.preempt_first:
            return job  # never started: reported preempted on the next poll
        container = custom_job.job_spec.worker_pool_specs[0].container_spec
        env = {**os.environ, **{e.name: e.value for e in container.env}}
        command = [sys.executable if c == "python" else c for c in container.command]
        self.processes[job.name] = subprocess.Popen([*command, *container.args], env=env)
        return job

    def get_custom_job(self, name: str) -> aiplatform_v1.CustomJob:
        self.polls += 1
        if self.interrupt_on_poll:
            raise DagsterExecutionInterruptedError()  # what Dagster raises when a run is terminated
        job = aiplatform_v1.CustomJob(name=name)
        process = self.processes.get(name)
        if process is None:
            job.state = State.JOB_STATE_FAILED
            job.error.code = 14
            job.error.message = "The replica workerpool0-0 was preempted (Spot VM reclaimed)."
        elif process.poll() is None:
            job.state = State.JOB_STATE_RUNNING
        elif process.returncode == 0:
            job.state = State.JOB_STATE_SUCCEEDED
        else:
            job.state = State.JOB_STATE_FAILED
            job.error.message = (
                f"The replica workerpool0-0 exited with a non-zero status of {process.returncode}."
            )
        return job

    def cancel_custom_job(self, name: str) -> None:
        self.cancelled.append(name)
        process = self.processes.get(name)
        if process is not None:
            process.kill()
            process.wait()


def _runner(service: FakeJobService, **overrides: Any) -> VertexJobRunner:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    class TestVertexJobRunner(VertexJobRunner):
        def job_service(self) -> Any:
            return service

        def gcs_client(self) -> Any:
            return storage.Client(project=PROJECT, credentials=AnonymousCredentials())

    fields: dict[str, Any] = {
        "project": PROJECT,
        "region": REGION,
        "image_uri": "europe-west4-docker.pkg.dev/test-project/recsys/jobs:v1",
        "service_account": "jobs@test-project.iam.gserviceaccount.com",
        "pipes_bucket": GCS_BUCKET,
        "pipes_prefix": "pipes/",
        "env": {"HF_HUB_OFFLINE": "1"},
        "poll_interval": 0.2,
        "max_preemption_retries": 3,
        "retry_backoff": 0.01,
        **overrides,
    }
    return TestVertexJobRunner(**fields)


def _materialize(runner: JobRunner, params: dict[str, Any], machine: str = "t4-spot") -> Any:
    @asset
    def echoed(context: AssetExecutionContext, job_runner: JobRunner) -> MaterializeResult:
        """Runs the echo job."""
        extras = {"asset": "echoed", **params}
        return job_runner.run(context, EchoParams.module, extras, machine).get_materialize_result()

    job = Definitions(
        assets=[echoed], resources={"job_runner": runner}
    ).resolve_implicit_global_asset_job_def()
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        records = instance.all_logs(result.run_id)
        result.logged = [record.user_message for record in records]
        # An exception inside the job comes back through Pipes as an engine event with its error.
        result.job_errors = [
            r.dagster_event.engine_event_data.error.message
            for r in records
            if r.dagster_event
            and r.dagster_event.event_type_value == "ENGINE_EVENT"
            and r.dagster_event.engine_event_data.error is not None
        ]
        result.observed = [
            r.dagster_event.asset_observation_data.asset_observation.metadata
            for r in records
            if r.dagster_event and r.dagster_event.event_type_value == "ASSET_OBSERVATION"
        ]
    return result


def test_custom_job_requests_for_both_profiles() -> None:
    runner = _runner(FakeJobService())
    image_job = runner.build_custom_job("recsys_assets.pipes.image_embeddings", "t4-spot", "0123456789abcdef")
    pool = image_job.job_spec.worker_pool_specs[0]
    assert pool.machine_spec == aiplatform_v1.MachineSpec(
        machine_type="n1-standard-4", accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1
    )
    assert pool.replica_count == 1
    assert pool.container_spec == aiplatform_v1.ContainerSpec(
        image_uri="europe-west4-docker.pkg.dev/test-project/recsys/jobs:v1",
        command=["python", "-m", "recsys_assets.pipes.image_embeddings"],
        env=[aiplatform_v1.EnvVar(name="HF_HUB_OFFLINE", value="1")],
    )
    assert pool.disk_spec == aiplatform_v1.DiskSpec(boot_disk_type="pd-ssd", boot_disk_size_gb=100)
    assert image_job.job_spec.scheduling.strategy == aiplatform_v1.Scheduling.Strategy.SPOT
    assert image_job.job_spec.service_account == "jobs@test-project.iam.gserviceaccount.com"
    assert dict(image_job.labels) == {
        "dagster-run-id": "0123456789abcdef",
        "job-module": "image_embeddings",
        "machine": "t4-spot",
    }
    assert image_job.display_name.startswith("recsys-image_embeddings-01234567-")

    train_job = runner.build_custom_job("recsys_assets.pipes.gat_training", "l4", "r")
    spec = train_job.job_spec.worker_pool_specs[0].machine_spec
    assert (spec.machine_type, spec.accelerator_type, spec.accelerator_count) == (
        "g2-standard-8", aiplatform_v1.AcceleratorType.NVIDIA_L4, 1,
    )  # fmt: skip
    assert train_job.job_spec.scheduling.strategy == aiplatform_v1.Scheduling.Strategy.STANDARD
    with pytest.raises(ValueError, match="machine profile 'a100': expected one of cpu, t4-spot, l4"):
        runner.build_custom_job("m", "a100", "r")


def test_pipes_context_and_messages_travel_through_gcs(gcs_emulator: str) -> None:
    service = FakeJobService()
    result = _materialize(_runner(service), {"message": "hello from vertex"})
    assert result.success
    ((parent, request),) = service.created
    assert parent == f"projects/{PROJECT}/locations/{REGION}"
    env = {e.name: e.value for e in request.job_spec.worker_pool_specs[0].container_spec.env}
    assert env["HF_HUB_OFFLINE"] == "1"
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= set(env)
    assert request.labels["attempt"] == "1"
    (materialization,) = result.asset_materializations_for_node("echoed")
    metadata = materialization.metadata
    assert metadata["echo"].value == "hello from vertex"
    assert metadata["transport"].value == "gcs"
    assert metadata["run_id"].value == result.run_id
    assert metadata["vertex_job"].value == f"projects/{PROJECT}/locations/{REGION}/customJobs/1001"
    assert metadata["vertex_console_url"].value == console_url(
        f"projects/{PROJECT}/locations/{REGION}/customJobs/1001"
    )
    assert metadata["vertex_attempts"].value == 1
    # The job's own log line came back through the GCS message chunks.
    assert "echo job says hello from vertex" in result.logged
    assert any(
        "Vertex AI job projects/test-project" in m and "created (attempt 1)" in m for m in result.logged
    )


def test_preempted_spot_job_is_recreated(gcs_emulator: str) -> None:
    service = FakeJobService(preempt_first=2)
    result = _materialize(_runner(service), {"message": "third time lucky"})
    assert result.success
    assert len(service.created) == 3
    assert [r.labels["attempt"] for _, r in service.created] == ["1", "2", "3"]
    (materialization,) = result.asset_materializations_for_node("echoed")
    assert materialization.metadata["vertex_attempts"].value == 3
    assert sum("was preempted" in m for m in result.logged) == 2


def test_preemption_retries_run_out(gcs_emulator: str) -> None:
    service = FakeJobService(preempt_first=5)
    result = _materialize(_runner(service, max_preemption_retries=1), {"message": "never"})
    assert not result.success
    assert len(service.created) == 2
    error = result.failure_data_for_node("echoed").error.cause
    assert error.cls_name == VertexJobFailedError.__name__
    assert (
        "ended JOB_STATE_FAILED after 2 attempt(s): The replica workerpool0-0 was preempted" in error.message
    )
    assert (
        "https://console.cloud.google.com/vertex-ai/locations/europe-west4/training/1002/cpu" in error.message
    )
    # The failure is also on the asset's page, as an observation with the job's error and URL.
    (observation,) = result.observed
    assert observation["vertex_job"].value == f"projects/{PROJECT}/locations/{REGION}/customJobs/1002"
    assert observation["vertex_state"].value == "JOB_STATE_FAILED"
    assert observation["vertex_error"].value.startswith("The replica workerpool0-0 was preempted")
    assert observation["vertex_console_url"].value == console_url(observation["vertex_job"].value)
    assert observation["vertex_attempts"].value == 2


def test_failed_job_reports_its_error_and_is_not_retried(gcs_emulator: str) -> None:
    service = FakeJobService()
    result = _materialize(_runner(service), {})  # no "message": the job refuses its params
    assert not result.success
    assert len(service.created) == 1
    message = result.failure_data_for_node("echoed").error.cause.message
    assert "exited with a non-zero status of 1" in message


def test_the_local_runner_talks_pipes_through_temp_files() -> None:
    result = _materialize(LocalJobRunner(), {"message": "hello from here"}, "cpu")
    assert result.success
    (materialization,) = result.asset_materializations_for_node("echoed")
    assert materialization.metadata["transport"].value == "temp files"
    assert materialization.metadata["echo"].value == "hello from here"
    assert "echo job says hello from here" in result.logged
    # PyTorch's idle threads sleep in local jobs rather than spin (a busy laptop's cores).
    assert materialization.metadata["omp_wait_policy"].value == os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    refused = _materialize(LocalJobRunner(), {"message": 3.5}, "cpu")
    assert not refused.success
    assert any("invalid job params: message: Input should be a valid string" in m for m in refused.job_errors)


def test_terminated_run_cancels_the_remote_job(gcs_emulator: str) -> None:
    service = FakeJobService(interrupt_on_poll=True)
    result = _materialize(_runner(service), {"message": "long", "sleep": 30})
    assert not result.success
    (job_name,) = service.cancelled
    assert job_name == f"projects/{PROJECT}/locations/{REGION}/customJobs/1001"
    assert service.processes[job_name].returncode is not None
