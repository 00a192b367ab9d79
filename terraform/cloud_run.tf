# The API on Cloud Run: private (only var.api_invokers may call it), scales to zero.
resource "google_cloud_run_v2_service" "api" {
  project             = var.project
  name                = "recsys-api"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = true

  template {
    service_account = google_service_account.api.email
    scaling {
      min_instance_count = 0
      max_instance_count = 10
    }
    containers {
      image = "${var.region}-docker.pkg.dev/${var.project}/${var.repository}/api:${var.api_image_tag}"
      ports {
        container_port = 8080
      }
      env {
        name  = "RECSYS_ENV"
        value = "gcp"
      }
      env {
        name  = "RECSYS_GCP_PROJECT"
        value = var.project
      }
      env {
        name  = "RECSYS_BQ_DATASET"
        value = google_bigquery_dataset.recsys.dataset_id
      }
      env {
        name  = "RECSYS_REQUEST_ID_KEY"
        value = var.request_id_key
      }
      # The explorer shows any user's history: not on the public API unless asked for.
      env {
        name  = "RECSYS_EXPLORER"
        value = var.explorer ? "true" : "false"
      }
      env {
        name  = "RECSYS_SERVING_MANIFEST"
        value = "gs://${google_storage_bucket.artifacts.name}/recsys/serving/manifest.json"
      }
      resources {
        limits = {
          cpu    = "1"
          memory = "2Gi"
        }
      }
      startup_probe {
        http_get {
          path = "/readyz"
        }
        failure_threshold = 30
        period_seconds    = 5
      }
      liveness_probe {
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = toset(var.api_invokers)
  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.api.name
  role     = "roles/run.invoker"
  member   = each.value
}
