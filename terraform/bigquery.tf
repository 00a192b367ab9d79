# The warehouse: request and feedback logs (written by the API), drift metrics (written by the
# drift_metrics asset) and experiment metrics (the experiment_report asset). Schemas come from
# recsys_assets/core/warehouse/tables.py via `make terraform-schemas`; a test fails when these
# files, partitions or clustering drift from it.

resource "google_bigquery_dataset" "recsys" {
  #checkov:skip=CKV_GCP_81:Google-managed keys encrypt at rest; customer-managed keys are an organisation's choice (add encryption_configuration with its KMS key).
  project     = var.project
  dataset_id  = var.bq_dataset
  location    = var.bq_location
  description = "recsys request logs and drift metrics."
}

resource "google_bigquery_table" "recommendation_requests" {
  #checkov:skip=CKV_GCP_80:Google-managed keys encrypt at rest; customer-managed keys are an organisation's choice (add encryption_configuration with its KMS key).
  project             = var.project
  dataset_id          = google_bigquery_dataset.recsys.dataset_id
  table_id            = "recommendation_requests"
  description         = "Every answered recommendation request (written by the API)."
  deletion_protection = true
  schema              = file("${path.module}/schemas/recommendation_requests.json")
  clustering          = ["strategy", "model_version"]

  time_partitioning {
    type  = "DAY"
    field = "ts"
  }
}

resource "google_bigquery_table" "feedback_events" {
  #checkov:skip=CKV_GCP_80:Google-managed keys encrypt at rest; customer-managed keys are an organisation's choice (add encryption_configuration with its KMS key).
  project             = var.project
  dataset_id          = google_bigquery_dataset.recsys.dataset_id
  table_id            = "feedback_events"
  description         = "Impressions, clicks and purchases reported for served recommendations."
  deletion_protection = true
  schema              = file("${path.module}/schemas/feedback_events.json")
  clustering          = ["event"]

  time_partitioning {
    type  = "DAY"
    field = "ts"
  }
}

resource "google_bigquery_table" "drift_metrics" {
  #checkov:skip=CKV_GCP_80:Google-managed keys encrypt at rest; customer-managed keys are an organisation's choice (add encryption_configuration with its KMS key).
  project             = var.project
  dataset_id          = google_bigquery_dataset.recsys.dataset_id
  table_id            = "drift_metrics"
  description         = "One row per drift metric and day (written by the drift_metrics asset)."
  deletion_protection = true
  schema              = file("${path.module}/schemas/drift_metrics.json")
  clustering          = ["metric_name", "status"]

  time_partitioning {
    type  = "DAY"
    field = "metric_date"
  }
}

resource "google_bigquery_table" "experiment_metrics" {
  #checkov:skip=CKV_GCP_80:Google-managed keys encrypt at rest; customer-managed keys are an organisation's choice (add encryption_configuration with its KMS key).
  project             = var.project
  dataset_id          = google_bigquery_dataset.recsys.dataset_id
  table_id            = "experiment_metrics"
  description         = "Per experiment, arm and day: click-through, latency, coverage, tests (experiment_report)."
  deletion_protection = true
  schema              = file("${path.module}/schemas/experiment_metrics.json")
  clustering          = ["experiment", "arm"]

  time_partitioning {
    type  = "DAY"
    field = "metric_date"
  }
}
