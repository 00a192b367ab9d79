"""The warehouse of request logs and drift metrics: the tables, and DuckDB and BigQuery clients."""
