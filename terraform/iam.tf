# One identity per role, each with the narrowest grants it needs (no primitive roles).

resource "google_service_account" "pipeline" {
  project      = var.project
  account_id   = "recsys-pipeline"
  display_name = "recsys Dagster (webserver, daemon, code location, runs)"
}

resource "google_service_account" "jobs" {
  project      = var.project
  account_id   = "recsys-jobs"
  display_name = "recsys Vertex AI jobs (RECSYS_VERTEX_SERVICE_ACCOUNT)"
}

resource "google_service_account" "api" {
  project      = var.project
  account_id   = "recsys-api"
  display_name = "recsys recommendation API (Cloud Run)"
}

# Pipeline: reads and writes artifacts, runs drift queries and writes drift metrics, starts
# Vertex AI jobs as the jobs identity.
resource "google_storage_bucket_iam_member" "pipeline_artifacts" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.pipeline.email}"
}

resource "google_bigquery_dataset_iam_member" "pipeline_dataset" {
  project    = var.project
  dataset_id = google_bigquery_dataset.recsys.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.pipeline.email}"
}

resource "google_project_iam_member" "pipeline_queries" {
  project = var.project
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.pipeline.email}"
}

resource "google_project_iam_member" "pipeline_vertex" {
  project = var.project
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.pipeline.email}"
}

# Dagster's Postgres is Cloud SQL, reached through the Cloud SQL Auth Proxy; the Dagster host
# pulls the code image.
resource "google_project_iam_member" "pipeline_cloudsql" {
  project = var.project
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.pipeline.email}"
}

resource "google_artifact_registry_repository_iam_member" "pipeline_pull" {
  project    = var.project
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.pipeline.email}"
}

resource "google_service_account_iam_member" "pipeline_acts_as_jobs" {
  service_account_id = google_service_account.jobs.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.pipeline.email}"
}

# Jobs: read inputs and write their outputs and Pipes messages in the bucket; pull their image.
resource "google_storage_bucket_iam_member" "jobs_artifacts" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.jobs.email}"
}

resource "google_artifact_registry_repository_iam_member" "jobs_pull" {
  project    = var.project
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.jobs.email}"
}

# API: reads serving versions, appends request and feedback logs.
resource "google_storage_bucket_iam_member" "api_artifacts" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.api.email}"
}

resource "google_bigquery_table_iam_member" "api_logs" {
  for_each   = toset([google_bigquery_table.recommendation_requests.table_id, google_bigquery_table.feedback_events.table_id])
  project    = var.project
  dataset_id = google_bigquery_dataset.recsys.dataset_id
  table_id   = each.value
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.api.email}"
}
