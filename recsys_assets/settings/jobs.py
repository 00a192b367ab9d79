"""Where job modules run in gcp: Vertex AI CustomJobs, with Pipes messages through GCS."""

from __future__ import annotations

from recsys_assets.settings.base import Section, setting


class JobSettings(Section):
    region: str = setting("us-central1", "Vertex AI region.", env="RECSYS_VERTEX_REGION")
    image: str = setting(
        "us-central1-docker.pkg.dev/recsys-project/recsys/jobs:latest", "The job container image.",
        env="RECSYS_VERTEX_IMAGE",
    )  # fmt: skip
    service_account: str = setting(
        "recsys-jobs@recsys-project.iam.gserviceaccount.com", "Identity of the jobs.",
        env="RECSYS_VERTEX_SERVICE_ACCOUNT",
    )  # fmt: skip
    pipes_bucket: str = setting(
        description="Bucket for the Pipes context and message chunks of Vertex AI jobs.",
        env="RECSYS_PIPES_BUCKET", default_doc="`$RECSYS_GCS_BUCKET`",
    )  # fmt: skip
    pipes_prefix: str = setting("pipes/", "Key prefix of the Pipes objects in that bucket.")
    poll_interval_s: float = setting(15.0, "Seconds between polls of a running job.", gt=0)
    max_preemption_retries: int = setting(3, "Times a preempted SPOT job is created again.", ge=0)
    retry_backoff_s: float = setting(60.0, "Wait before the first re-creation; doubled each time.", ge=0)
