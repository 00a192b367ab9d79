"""A Dagster Pipes client for Vertex AI CustomJobs, modelled on ``PipesDataprocJobClient``.

Dagster has no Vertex AI integration. This client opens a Pipes session whose context and
messages travel through GCS (``dagster_gcp.pipes``), puts the bootstrap parameters into the
container's environment, creates the CustomJob, polls it to a terminal state, cancels it
when the Dagster run is terminated, and re-creates a SPOT job that was preempted (with
exponential backoff). Failures raise with the job's own error and its console URL.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetObservation,
    DagsterExecutionInterruptedError,
    MetadataValue,
    OpExecutionContext,
    PipesClient,
)
from dagster._core.pipes.client import PipesClientCompletedInvocation
from dagster._core.pipes.utils import open_pipes_session
from dagster_gcp.pipes import PipesGCSContextInjector, PipesGCSMessageReader
from google.cloud import aiplatform_v1

JobState = aiplatform_v1.JobState
TERMINAL_STATES = {
    JobState.JOB_STATE_SUCCEEDED,
    JobState.JOB_STATE_FAILED,
    JobState.JOB_STATE_CANCELLED,
    JobState.JOB_STATE_EXPIRED,
    JobState.JOB_STATE_PARTIALLY_SUCCEEDED,
}
# How Vertex AI reports a reclaimed Spot VM; such a failure is worth another attempt.
_PREEMPTION_MARKERS = ("preempt", "stockout", "spot vm", "reclaimed")


def is_preempted(job: aiplatform_v1.CustomJob) -> bool:
    return job.state == JobState.JOB_STATE_FAILED and any(
        marker in (job.error.message or "").lower() for marker in _PREEMPTION_MARKERS
    )


def console_url(job_name: str) -> str:
    """``projects/P/locations/R/customJobs/ID`` -> the job's page in the Cloud console."""
    parts = job_name.split("/")
    project, region, job_id = parts[1], parts[3], parts[5]
    return f"https://console.cloud.google.com/vertex-ai/locations/{region}/training/{job_id}/cpu?project={project}"


class VertexJobFailedError(RuntimeError):
    """A CustomJob ended in a state other than SUCCEEDED."""


class PipesVertexCustomJobClient(PipesClient):
    """Run a ``CustomJob`` with Pipes over GCS.

    Args:
        job_service: an ``aiplatform_v1.JobServiceClient`` (regional endpoint).
        gcs_client: a ``google.cloud.storage.Client`` for the Pipes context and messages.
        bucket / key_prefix: where the Pipes context and message chunks are written.
        parent: ``projects/P/locations/R``.
    """

    def __init__(
        self,
        *,
        job_service: Any,
        gcs_client: Any,
        bucket: str,
        parent: str,
        key_prefix: str = "pipes/",
        poll_interval: float = 15.0,
        message_interval: float = 5.0,
        max_preemption_retries: int = 3,
        retry_backoff: float = 60.0,
        forward_termination: bool = True,
    ):
        self.job_service = job_service
        self.gcs_client = gcs_client
        self.bucket = bucket
        self.parent = parent
        self.key_prefix = key_prefix
        self.poll_interval = poll_interval
        self.message_interval = message_interval
        self.max_preemption_retries = max_preemption_retries
        self.retry_backoff = retry_backoff
        self.forward_termination = forward_termination

    def run(  # type: ignore[override]  # Pipes clients each take their own job description
        self,
        *,
        context: AssetExecutionContext | OpExecutionContext,
        custom_job: aiplatform_v1.CustomJob,
        extras: Mapping[str, Any] | None = None,
    ) -> PipesClientCompletedInvocation:
        attempt = 0
        while True:
            attempt += 1
            invocation, job = self._run_once(context, custom_job, extras, attempt)
            if job.state == JobState.JOB_STATE_SUCCEEDED:
                assert invocation is not None  # set whenever the job succeeded
                return invocation
            url = console_url(job.name)
            if is_preempted(job) and attempt <= self.max_preemption_retries:
                delay = self.retry_backoff * 2 ** (attempt - 1)
                context.log.warning(
                    f"[pipes] Vertex AI job {job.name} was preempted ({job.error.message}); "
                    f"attempt {attempt + 1} of {self.max_preemption_retries + 1} in {delay:g}s. {url}"
                )
                time.sleep(delay)
                continue
            message = (
                f"Vertex AI job {job.name} ended {JobState(job.state).name} after {attempt} attempt(s): "
                f"{job.error.message or 'no error message'} (see {url})"
            )
            context.log.error(f"[pipes] {message}")
            self._observe_failure(context, job, attempt)
            raise VertexJobFailedError(message)

    def _run_once(
        self,
        context: AssetExecutionContext | OpExecutionContext,
        custom_job: aiplatform_v1.CustomJob,
        extras: Mapping[str, Any] | None,
        attempt: int,
    ) -> tuple[PipesClientCompletedInvocation | None, aiplatform_v1.CustomJob]:
        # One Pipes session per attempt: a re-created job writes its message chunks afresh.
        with open_pipes_session(
            context=context,
            context_injector=PipesGCSContextInjector(
                bucket=self.bucket, client=self.gcs_client, key_prefix=self.key_prefix
            ),
            message_reader=PipesGCSMessageReader(
                bucket=self.bucket, client=self.gcs_client, interval=self.message_interval
            ),
            extras=dict(extras or {}),
        ) as session:
            request = self.with_bootstrap(custom_job, session.get_bootstrap_env_vars(), attempt)
            job = self.job_service.create_custom_job(parent=self.parent, custom_job=request)
            url = console_url(job.name)
            context.log.info(f"[pipes] Vertex AI job {job.name} created (attempt {attempt}): {url}")
            try:
                job = self._wait(context, job)
            except DagsterExecutionInterruptedError:
                if self.forward_termination:
                    context.log.warning(f"[pipes] run interrupted: cancelling Vertex AI job {job.name}")
                    self.job_service.cancel_custom_job(name=job.name)
                raise
            if job.state != JobState.JOB_STATE_SUCCEEDED:
                return None, job
            metadata: dict[str, Any] = {
                "vertex_job": job.name,
                "vertex_console_url": url,
                "vertex_attempts": attempt,
                "machine_type": request.job_spec.worker_pool_specs[0].machine_spec.machine_type,
            }
            return PipesClientCompletedInvocation(session, metadata=metadata), job

    @staticmethod
    def _observe_failure(
        context: AssetExecutionContext | OpExecutionContext, job: aiplatform_v1.CustomJob, attempt: int
    ) -> None:
        """Record the failed job on the asset's page (a failed step has no materialization)."""
        if not context.has_assets_def:
            return
        metadata = {
            "vertex_job": job.name,
            "vertex_state": JobState(job.state).name,
            "vertex_error": job.error.message or "no error message",
            "vertex_console_url": MetadataValue.url(console_url(job.name)),
            "vertex_attempts": attempt,
        }
        for key in context.selected_asset_keys:
            context.log_event(AssetObservation(asset_key=key, metadata=metadata))

    @staticmethod
    def with_bootstrap(
        custom_job: aiplatform_v1.CustomJob, bootstrap_env: Mapping[str, str], attempt: int
    ) -> aiplatform_v1.CustomJob:
        """A copy of ``custom_job`` whose containers carry the Pipes bootstrap variables."""
        job = aiplatform_v1.CustomJob(custom_job)
        for pool in job.job_spec.worker_pool_specs:
            pool.container_spec.env.extend(
                [aiplatform_v1.EnvVar(name=k, value=v) for k, v in bootstrap_env.items()]
            )
        job.labels["attempt"] = str(attempt)
        return job

    def _wait(
        self, context: AssetExecutionContext | OpExecutionContext, job: aiplatform_v1.CustomJob
    ) -> aiplatform_v1.CustomJob:
        state = job.state
        while job.state not in TERMINAL_STATES:
            time.sleep(self.poll_interval)
            job = self.job_service.get_custom_job(name=job.name)
            if job.state != state:
                state = job.state
                context.log.info(f"[pipes] Vertex AI job {job.name}: {JobState(state).name}")
        return job
