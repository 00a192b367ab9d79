# Artifacts (parquet, embeddings, models, serving versions), Pipes messages and compute logs.
resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:Access logs would go to a second bucket; Cloud Audit Logs (data access) cover reads.
  project                     = var.project
  name                        = var.bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.artifact_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["pipes/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Google-managed keys encrypt at rest; customer-managed keys are an organisation's choice (add encryption_configuration with its KMS key).
  project       = var.project
  location      = var.region
  repository_id = var.repository
  format        = "DOCKER"
  description   = "recsys images: code location, Vertex AI jobs, API."
  depends_on    = [google_project_service.enabled]
}
