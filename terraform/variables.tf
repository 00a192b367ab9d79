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
