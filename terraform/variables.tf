variable "project" {
  description = "The GCP project (RECSYS_GCP_PROJECT)."
  type        = string
}

variable "region" {
  description = "Region of regional resources (RECSYS_VERTEX_REGION)."
  type        = string
  default     = "us-central1"
}

variable "bq_dataset" {
  description = "BigQuery dataset of request logs and drift metrics (RECSYS_BQ_DATASET)."
  type        = string
  default     = "recsys"
}

variable "bq_location" {
  description = "BigQuery dataset location."
  type        = string
  default     = "US"
}

variable "bucket" {
  description = "The artifact bucket (RECSYS_GCS_BUCKET); globally unique."
  type        = string
}

variable "repository" {
  description = "Artifact Registry repository of the images (code, jobs, api)."
  type        = string
  default     = "recsys"
}

variable "api_image_tag" {
  description = "Tag of the API image in the repository, deployed to Cloud Run."
  type        = string
  default     = "latest"
}

variable "api_invokers" {
  description = "Members allowed to call the API (e.g. serviceAccount:frontend@...); empty keeps it private."
  type        = list(string)
  default     = []
}

variable "explorer" {
  description = "Serve the recommendations explorer (/explorer, RECSYS_EXPLORER) on the public API: it shows any user's history, so off unless the API is private."
  type        = bool
  default     = false
}

variable "request_id_key" {
  description = "Signs the API's request ids (RECSYS_REQUEST_ID_KEY), so /feedback accepts only ids it issued. Set it (e.g. openssl rand -hex 16): without it each instance has its own key, and feedback reaching another instance is refused."
  type        = string
  default     = ""
  sensitive   = true
}

variable "artifact_retention_days" {
  description = "Noncurrent object versions older than this are deleted."
  type        = number
  default     = 30
}
