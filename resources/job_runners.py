"""Run job module M with params P on machine profile A: locally, or on Vertex AI.

Asset code calls ``job_runner.run(context, module, params, profile)`` and returns the
completed invocation's materialize result; which runner it gets is the only difference
between environments.

* ``LocalJobRunner``: ``dagster.PipesSubprocessClient`` running ``python -m <module>`` (the
  accelerator profile is recorded, the local CPU or GPU is used).
* ``VertexJobRunner``: a CustomJob on the profile's machine, container image from Artifact
  Registry, Pipes over GCS (``resources.vertex_pipes``).
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from dagster import AssetExecutionContext, ConfigurableResource, PipesSubprocessClient
from dagster._core.pipes.client import PipesClientCompletedInvocation
from pydantic import Field

from resources.pipes_files import WholeLineTempFileReader


@dataclass(frozen=True)
class MachineProfile:
    """What one job asks of Vertex AI."""

    machine_type: str
    accelerator_type: str | None = None
    accelerator_count: int = 0
    spot: bool = False
    boot_disk_gb: int = 100


#: The profiles assets name. Image embeddings tolerate preemption (they are re-run from
#: scratch), so they use a SPOT T4; training uses an on-demand L4.
PROFILES: dict[str, MachineProfile] = {
    "cpu": MachineProfile("n1-highcpu-16"),
    "t4-spot": MachineProfile("n1-standard-4", "NVIDIA_TESLA_T4", 1, spot=True),
    "l4": MachineProfile("g2-standard-8", "NVIDIA_L4", 1),
}


def profile(name: str) -> MachineProfile:
    if name not in PROFILES:
        raise ValueError(f"machine profile {name!r}: expected one of {', '.join(PROFILES)}")
    return PROFILES[name]


class JobRunner(ConfigurableResource, ABC):
    """Runs a job module (``python -m <module>``) with Pipes and returns its invocation."""

    @abstractmethod
    def run(
        self, context: AssetExecutionContext, module: str, params: dict[str, Any], machine: str
    ) -> PipesClientCompletedInvocation: ...


class LocalJobRunner(JobRunner):
    """``python -m <module>`` in a subprocess of the run, with the same interpreter."""

    python: str = Field(default=sys.executable, description="Interpreter that runs the job module.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    parent_pid_variable: str = Field(
        default="RECSYS_PARENT_PID",
        description="Variable handing the job this process's pid, so a job can tell that its parent died "
        "before it started watching it (empty: none).",
    )

    def run(
        self, context: AssetExecutionContext, module: str, params: dict[str, Any], machine: str
    ) -> PipesClientCompletedInvocation:
        profile(machine)  # the same names are valid in every environment
        context.log.info(f"running {module} locally (profile {machine})")
        # Idle OpenMP threads sleep instead of spinning. A job's PyTorch threads otherwise spin for
        # cores that other processes hold: with a CPU-bound process per core beside it, make run's
        # GAT epochs took 14 s instead of 1.2 s and the whole run 30.6 min; with this, 2.2 s and
        # 5.9 min, for 4.0 min instead of 3.6 on a quiet machine (benchmarks/make_run.py, 2 cores).
        # A value the user set wins.
        env = {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), **self.env}
        if self.parent_pid_variable:
            env[self.parent_pid_variable] = str(os.getpid())
        return PipesSubprocessClient(env=env, message_reader=WholeLineTempFileReader()).run(
            context=context, command=[self.python, "-m", module], extras=params
        )


class VertexJobRunner(JobRunner):
    """A Vertex AI CustomJob per call; Pipes context and messages through ``pipes_bucket``.

    Every field comes from the deployment's settings (no defaults here to drift from them)."""

    project: str
    region: str
    image_uri: str = Field(
        description="Job container in Artifact Registry, e.g. REGION-docker.pkg.dev/P/R/jobs:TAG"
    )
    service_account: str = Field(description="Service account the job runs as.")
    pipes_bucket: str
    pipes_prefix: str
    env: dict[str, str] = Field(default_factory=dict)
    poll_interval: float = Field(description="Seconds between polls of a running job.")
    max_preemption_retries: int = Field(description="Times a preempted SPOT job is created again.")
    retry_backoff: float = Field(description="Seconds before the first re-creation; doubled each time.")

    def build_custom_job(self, module: str, machine: str, run_id: str) -> Any:
        """The CustomJob request for ``module`` on profile ``machine`` (Pipes env added later)."""
        from google.cloud import aiplatform_v1

        spec = profile(machine)
        machine_spec = aiplatform_v1.MachineSpec(machine_type=spec.machine_type)
        if spec.accelerator_type:
            machine_spec.accelerator_type = getattr(aiplatform_v1.AcceleratorType, spec.accelerator_type)
            machine_spec.accelerator_count = spec.accelerator_count
        scheduling = aiplatform_v1.Scheduling(
            strategy=aiplatform_v1.Scheduling.Strategy.SPOT
            if spec.spot
            else aiplatform_v1.Scheduling.Strategy.STANDARD
        )
        short = module.rsplit(".", 1)[-1]
        return aiplatform_v1.CustomJob(
            display_name=f"recsys-{short}-{run_id[:8]}-{uuid.uuid4().hex[:6]}",
            labels={
                "dagster-run-id": _label(run_id),
                "job-module": _label(short),
                "machine": _label(machine),
            },
            job_spec=aiplatform_v1.CustomJobSpec(
                worker_pool_specs=[
                    aiplatform_v1.WorkerPoolSpec(
                        machine_spec=machine_spec,
                        replica_count=1,
                        disk_spec=aiplatform_v1.DiskSpec(
                            boot_disk_type="pd-ssd", boot_disk_size_gb=spec.boot_disk_gb
                        ),
                        container_spec=aiplatform_v1.ContainerSpec(
                            image_uri=self.image_uri,
                            command=["python", "-m", module],
                            args=[],
                            env=[aiplatform_v1.EnvVar(name=k, value=v) for k, v in sorted(self.env.items())],
                        ),
                    )
                ],
                service_account=self.service_account,
                scheduling=scheduling,
            ),
        )

    def job_service(self) -> Any:
        from google.cloud import aiplatform_v1

        return aiplatform_v1.JobServiceClient(
            client_options={"api_endpoint": f"{self.region}-aiplatform.googleapis.com"}
        )

    def gcs_client(self) -> Any:
        from google.cloud import storage

        return storage.Client(project=self.project)

    def pipes_client(self) -> Any:
        from resources.vertex_pipes import PipesVertexCustomJobClient

        return PipesVertexCustomJobClient(
            job_service=self.job_service(),
            gcs_client=self.gcs_client(),
            bucket=self.pipes_bucket,
            key_prefix=self.pipes_prefix,
            parent=f"projects/{self.project}/locations/{self.region}",
            poll_interval=self.poll_interval,
            max_preemption_retries=self.max_preemption_retries,
            retry_backoff=self.retry_backoff,
        )

    def run(
        self, context: AssetExecutionContext, module: str, params: dict[str, Any], machine: str
    ) -> PipesClientCompletedInvocation:
        custom_job = self.build_custom_job(module, machine, context.run.run_id)
        return self.pipes_client().run(context=context, custom_job=custom_job, extras=params)


def _label(value: str) -> str:
    # Vertex AI labels: lowercase letters, digits, '-' and '_', at most 63 characters.
    return re.sub(r"[^a-z0-9_-]", "-", value.lower())[:63]
