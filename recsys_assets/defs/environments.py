"""The resources of each environment, picked by ``RECSYS_ENV`` (``local`` by default).

Asset code is identical everywhere; only this module (and the environment defaults of the
settings tree, ``recsys_assets/settings``) differ by environment. Three resources:

* ``settings``: the settings tree, as read when the definitions loaded, shown whole in the UI
  and overridable per run from the launchpad (``overrides``);
* ``io_manager``: the artifact IO manager on the artifact root (a folder, or ``gs://``);
* ``job_runner``: where job modules run: a local subprocess, or a Vertex AI CustomJob.
"""

from __future__ import annotations

import multiprocessing
from functools import cached_property
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from recsys_assets.core.catalogue.bigquery_staging import BigQueryStaging
from recsys_assets.core.io.artifacts import Artifacts
from recsys_assets.core.processes import die_with_parent
from recsys_assets.core.warehouse.clients import Warehouse, bigquery_client, open_warehouse
from recsys_assets.defs.io_manager import ArtifactIOManagerFactory
from recsys_assets.settings import Settings, load_settings
from recsys_assets.settings.base import merged
from resources.job_runners import JobRunner, LocalJobRunner, VertexJobRunner


class SettingsResource(ConfigurableResource):
    """The settings tree (``recsys_assets/settings``): every ``RECSYS_*`` value as read when the
    definitions loaded, plus this run's overrides."""

    values: dict[str, Any] = Field(description="The settings tree as read from the environment.")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description='Changes for this run, by section, e.g. {"models": {"gat": {"heads": 4}}}.',
    )

    @classmethod
    def of(cls, settings: Settings) -> SettingsResource:
        return cls(values=settings.model_dump(mode="json"))

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # A step that runs in its own process (the multiprocess executor) ends with the run's
        # process: killing the CLI or the run worker, even with -9, leaves no step writing.
        if multiprocessing.parent_process() is not None:
            die_with_parent()

    @cached_property
    def tree(self) -> Settings:
        """The validated tree, overrides applied; an invalid override is named."""
        return Settings.model_validate(merged(self.values, self.overrides))

    @property
    def artifacts(self) -> Artifacts:
        return Artifacts(self.tree.artifacts.root)

    def warehouse(self) -> Warehouse:
        return open_warehouse(self.tree.warehouse, self.tree.gcp.project)

    def bigquery_staging(self) -> BigQueryStaging:
        """Where ``data.staging_engine = bigquery`` works: the warehouse's dataset, and
        ``gs://<bucket>/staging`` for the numbered shards and the exports."""
        tree = self.tree
        client = bigquery_client(tree.gcp.project, tree.warehouse.endpoint)
        return BigQueryStaging(client, tree.warehouse.dataset, f"gs://{tree.gcp.bucket}/staging")


def job_runner(settings: Settings) -> JobRunner:
    if settings.env == "local":
        return LocalJobRunner()
    jobs = settings.jobs
    return VertexJobRunner(
        project=settings.gcp.project,
        region=jobs.region,
        image_uri=jobs.image,
        service_account=jobs.service_account,
        pipes_bucket=jobs.pipes_bucket,
        pipes_prefix=jobs.pipes_prefix,
        poll_interval=jobs.poll_interval_s,
        max_preemption_retries=jobs.max_preemption_retries,
        retry_backoff=jobs.retry_backoff_s,
    )


def build_resources(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or load_settings()
    # gcsfs picks up Application Default Credentials (workload identity on GCP); the project is
    # named so that requester-pays buckets and quotas bill the right one.
    storage_options = {"project": settings.gcp.project} if settings.env == "gcp" else {}
    return {
        "settings": SettingsResource.of(settings),
        "io_manager": ArtifactIOManagerFactory(
            base_path=settings.artifacts.root, storage_options=storage_options
        ),
        "job_runner": job_runner(settings),
    }
