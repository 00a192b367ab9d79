# What the code's settings need (README: Production).
output "RECSYS_GCP_PROJECT" {
  value = var.project
}

output "RECSYS_GCS_BUCKET" {
  value = google_storage_bucket.artifacts.name
}

output "RECSYS_BQ_DATASET" {
  value = google_bigquery_dataset.recsys.dataset_id
}

output "RECSYS_VERTEX_REGION" {
  value = var.region
}

output "RECSYS_VERTEX_SERVICE_ACCOUNT" {
  value = google_service_account.jobs.email
}

output "RECSYS_VERTEX_IMAGE" {
  value = "${var.region}-docker.pkg.dev/${var.project}/${var.repository}/jobs:latest"
}

output "image_repository" {
  value = "${var.region}-docker.pkg.dev/${var.project}/${var.repository}"
}

output "pipeline_service_account" {
  value = google_service_account.pipeline.email
}

output "api_url" {
  value = google_cloud_run_v2_service.api.uri
}
