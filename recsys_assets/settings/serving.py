"""The serving index the pipeline publishes, and the API that serves it."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from recsys_assets.settings.base import Section, section, setting

#: How a newly published version starts to serve (``core/serving/rollout.py``).
Rollout = Literal["replace", "ab", "interleave", "shadow"]

IndexKind = Literal["auto", "flat", "hnsw", "ivf"]


class IndexConfig(Section):
    """How the item index is built (``core/serving/index.py``)."""

    kind: IndexKind = setting(
        "auto",
        "Serving index: `auto` (exact below `exact_below` items, HNSW above), `flat`, `hnsw` or `ivf`.",
        env="RECSYS_INDEX_KIND",
    )
    exact_below: int = setting(
        50_000, "With `auto`: exact search below this many items, HNSW from there.", ge=1
    )
    hnsw_m: int = setting(32, "HNSW links per node.", ge=1)
    hnsw_ef_construction: int = setting(80, "HNSW candidate list while building.", ge=1)
    hnsw_ef_search: int = setting(128, "HNSW candidate list while searching.", ge=1)
    ivf_nlist: int = setting(0, "IVF lists; 0: 4 sqrt(items), at most items / 39.", ge=0)
    ivf_nprobe: int = setting(32, "IVF lists probed per query.", ge=1)
    recall_queries: int = setting(1_000, "User vectors (a seeded sample) whose recall@k is measured.", ge=1)
    recall_k: int = setting(20, "k of the measured recall.", ge=1)
    seed: int = setting(0, "Random seed of the query sample.")


class ServingSettings(Section):
    index: IndexConfig = section(IndexConfig, "The item index of a serving version.")
    min_index_recall: float = setting(
        0.9, "`faiss_index` publishes nothing when its recall@20 vs exact search is lower.",
        env="RECSYS_MIN_INDEX_RECALL", ge=0, le=1,
    )  # fmt: skip
    rollout: Rollout = setting(
        "replace", "How a newly published version serves: `replace` the current one, `ab` (it takes "
        "`treatment_share` of the users), `interleave` (team-draft with the current one) or `shadow` "
        "(scored and logged, never shown); `core/serving/rollout.py`.", env="RECSYS_ROLLOUT",
    )  # fmt: skip
    treatment_share: float = setting(
        0.1, "Share of the users a new version gets under the `ab` rollout.", env="RECSYS_TREATMENT_SHARE",
        gt=0, lt=1,
    )  # fmt: skip
    manifest_uri: str = setting(
        "", "The manifest the API follows (local or `gs://`); empty: the artifact root's.",
        env="RECSYS_SERVING_MANIFEST", default_doc="`$RECSYS_ARTIFACTS_ROOT/serving/manifest.json`",
    )  # fmt: skip
    reload_interval_s: float = setting(
        10.0, "Seconds between the API's checks for a new version.", env="RECSYS_RELOAD_INTERVAL_S", gt=0
    )
    # Hashing every file of a version costs a read of it (hundreds of MB at the reference scale),
    # so on a timer of its own rather than every reload check.
    verify_interval_s: float = setting(
        600.0, "Seconds between re-verifications of the served version's files against their checksums "
        "(a file corrupted in place is logged and counted); 0: never.", env="RECSYS_VERIFY_INTERVAL_S", ge=0,
    )  # fmt: skip
    # Excluded from dumps: the Dagster UI shows the settings it runs with, and has no use for it.
    admin_api_key: SecretStr = setting(
        SecretStr(""), "Enables `POST /admin/reload` for callers sending it as `X-API-Key`; empty: off.",
        env="RECSYS_ADMIN_API_KEY", exclude=True,
    )  # fmt: skip
    request_id_key: SecretStr = setting(
        SecretStr(""),
        "Signs request ids so `/feedback` accepts only ids the API issued, for their user; empty: a key per "
        "process (set it when several workers or instances serve).",
        env="RECSYS_REQUEST_ID_KEY", exclude=True,
    )  # fmt: skip
    log_sink: Literal["duckdb", "bigquery", "none"] = setting(
        "duckdb", "Where the API writes request and feedback logs: `duckdb`, `bigquery` or `none`.",
        env="RECSYS_LOG_SINK", default_doc="`duckdb` (local), `bigquery` (gcp)",
    )  # fmt: skip
    log_batch_rows: int = setting(5_000, "Log rows per warehouse write.", env="RECSYS_LOG_BATCH_ROWS", ge=1)
    # Each DuckDB write pays a fixed cost whatever its size (open, checkpoint on close), so fewer,
    # larger writes: monitoring reads days, not seconds.
    log_flush_s: float = setting(5.0, "Seconds between log writes.", env="RECSYS_LOG_FLUSH_S", gt=0)
    log_buffer_rows: int = setting(
        100_000, "Log rows held while the warehouse is down (beyond: the oldest are dropped and counted).",
        env="RECSYS_LOG_BUFFER_ROWS", ge=1,
    )  # fmt: skip
    shadow_in_flight: int = setting(
        64, "Shadow rankings running at once per API process; beyond it they are skipped and counted.",
        env="RECSYS_SHADOW_IN_FLIGHT", ge=1,
    )  # fmt: skip
    shadow_share: float = setting(
        0.25, "Share of requests a shadow version also ranks (chosen by request id). Every shadow ranking is "
        "a second search: at full load, 1 costs as much CPU again as the live traffic.",
        env="RECSYS_SHADOW_SHARE", ge=0, le=1,
    )  # fmt: skip
    explorer: bool = setting(
        True, "Serve the recommendations explorer (`/explorer`), which shows any user's history, to people "
        "looking at the model; the gcp deployment turns it off on its public API.", env="RECSYS_EXPLORER",
    )  # fmt: skip
    search_threads: int = setting(
        0, "FAISS searches in flight at once per API process, each in a thread; 0: none, the event loop "
        "searches (no thread hop: best with one worker per core, or one CPU). Set N to use N cores from one "
        "process.", env="RECSYS_SEARCH_THREADS", ge=0,
    )  # fmt: skip
