"""The artifact catalogue: every file the pipeline writes, declared once with the asset that writes it.

IO managers, assets, job modules, the API and the benchmarks all take paths from here, so a
rename is one edit and a stale path fails where it is imported rather than at run time. A path
may hold fields (``models/{model}/users.npy``); ``{partition}`` is the partition key of a
partitioned asset. ``writer`` names the asset (or job) that writes the file, with the same
fields where it depends on them.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from recsys_assets.core.io.storage import join

PARTITION = "partition"


@dataclass(frozen=True)
class Artifact:
    path: str
    writer: str
    description: str = ""

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.path) if name)

    @property
    def extension(self) -> str:
        return PurePosixPath(self.path).suffix

    @property
    def partitioned(self) -> bool:
        return PARTITION in self.fields

    @property
    def storage_path(self) -> str:
        """The path an IO manager stores under: without its extension, and for a partitioned
        artifact the folder its partition files go in."""
        stem = self.path.removesuffix(self.extension)
        return stem.removesuffix("/{" + PARTITION + "}") if self.partitioned else stem

    def relative(self, **fields: Any) -> str:
        missing = sorted(set(self.fields) - set(fields))
        if missing:
            raise KeyError(f"artifact {self.path}: no value for {missing}")
        return self.path.format(**fields)

    def pattern(self) -> re.Pattern[str]:
        """Matches the relative paths of this artifact's files."""
        parts = re.split(r"\{(\w+)\}", self.path)
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
        return re.compile(f"^{regex}$")


class Artifacts:
    """Artifact URIs under one root (a folder or ``gs://bucket/prefix``)."""

    def __init__(self, root: str):
        self.root = root

    def uri(self, artifact: Artifact, **fields: Any) -> str:
        return join(self.root, artifact.relative(**fields))

    def folder(self, artifact: Artifact) -> str:
        """The folder holding a partitioned artifact's files."""
        if not artifact.partitioned:
            raise ValueError(f"artifact {artifact.path} is not partitioned")
        return join(self.root, artifact.storage_path)


# catalogue
ITEMS = Artifact("items.parquet", "items", "One row per catalogue item.")
ITEMS_QUARANTINE = Artifact("quarantine/items.parquet", "items_quarantine", "Metadata records not staged.")
INTERACTIONS = Artifact("interactions/{partition}.parquet", "interactions", "One file per month of reviews.")
INTERACTIONS_QUARANTINE = Artifact(
    "quarantine/interactions/{partition}.parquet", "interactions_quarantine", "Review records not staged."
)

# embeddings
TEXT_EMBEDDINGS = Artifact("embeddings/txt.npy", "item_text_embeddings", "384-d rows in items order.")
TEXT_META = Artifact("embeddings/txt_meta.json", "item_text_embeddings", "Encoder, throughput, counts.")
IMAGE_EMBEDDINGS = Artifact("embeddings/img.npy", "item_image_embeddings", "One row per embedded image.")
IMAGE_ITEMS = Artifact(
    "embeddings/img_items.parquet", "item_image_embeddings", "The item of each img.npy row."
)
IMAGE_META = Artifact("embeddings/img_meta.json", "item_image_embeddings", "Encoder, failures by reason.")
FUSED_EMBEDDINGS = Artifact("embeddings/fused.npy", "item_fused_embeddings", "128-d rows in items order.")
FUSION_CONFIG = Artifact("embeddings/fusion_config.json", "item_fused_embeddings", "MLP settings, losses.")
FUSION_WEIGHTS = Artifact(
    "embeddings/fusion_mlp.safetensors", "item_fused_embeddings", "The MLP's weights, to embed new items."
)
FUSION_TRAINED_ON = Artifact(
    "embeddings/fusion_trained_on.npy", "item_fused_embeddings", "Hashes of the train rows the MLP fitted on."
)
#: The item embeddings a model can take as its items' input, by name.
ITEM_FEATURES = {"txt": TEXT_EMBEDDINGS, "fused": FUSED_EMBEDDINGS}

# graphs
SPLITS = Artifact("splits/interactions.parquet", "interaction_splits", "Interactions with their split.")
NODE_MAPS = Artifact("graphs/node_maps.json", "node_maps", "User and item ids by node index.")
UI_EDGES = Artifact("graphs/ui_edges.npz", "ui_edges", "Train user -> item edges.")
II_EDGES = {
    name: Artifact(f"graphs/ii_edges_{name}.npz", f"ii_edges_{name}", f"Item-item kNN edges over {name}.")
    for name in ITEM_FEATURES
}
GRAPH_QA = Artifact("graphs/qa_report.json", "graph_qa_report", "Counts, degrees, orphans, samples.")

# models
MODEL_USERS = Artifact("models/{model}/users.npy", "{model}_model", "User vectors (score = dot product).")
MODEL_ITEMS = Artifact("models/{model}/items.npy", "{model}_model", "Item vectors.")
MODEL_NEIGHBOURS = Artifact(
    "models/{model}/neighbours.npz", "{model}_model", "Item-item neighbour lists (sparse rows, weights)."
)
MODEL_META = Artifact("models/{model}/meta.json", "{model}_model", "Config, timings, validation history.")
MODEL_TRAINED_ON = Artifact(
    "models/{model}/trained_on.npy", "{model}_model", "Hashes of the train rows the model fitted on."
)
MODEL_SCORES = Artifact(
    "models/{model}/scores.npz",
    "{model}_model",
    "A ranker's scores of each split's candidates (validation out of fold).",
)
RANKER_BOOSTER = Artifact(
    "models/{model}/lightgbm.txt", "{model}_model", "A ranker's LightGBM model, as text."
)
MODEL_CHECKPOINT = Artifact(
    "models/{model}.pt", "{model}_model", "Its weights, for a model that keeps them (the GAT)."
)
EVAL_REPORT = Artifact("eval/eval.json", "eval_report", "Every model's metrics; the promotion verdict.")
EVAL_TABLE = Artifact(
    "eval/eval_table.md", "eval_report", "Every model's metrics as one wide markdown table."
)
BLESSED_REPORT = Artifact(
    "eval/blessed.json", "bless_eval_report", "The report candidates are gated against."
)
SEARCH_JOURNAL = Artifact(
    "search/{model}/journal.log", "hyperparameter_search", "The model's Optuna study (every trial)."
)
SEARCH_BEST = Artifact(
    "search/{model}/best.json", "hyperparameter_search", "The best settings found, as overrides."
)
COLD_START_REPORT = Artifact(
    "eval/cold_start.json", "cold_start_report", "Models on items held out entirely, side by side."
)
ABLATION = Artifact("eval/ablation.json", "gat_ablation", "GAT variants side by side.")
RANKER_ABLATION = Artifact(
    "eval/ranker_ablation.json", "ranker_ablation", "The ranker without each group of retrievers, paired."
)

# serving: a version is complete once the manifest, written last, names it
SERVING_MANIFEST = Artifact("serving/manifest.json", "faiss_index", "The published version and its files.")
SERVING_PENDING = Artifact("serving/pending.json", "item_embeddings_export", "The version being prepared.")
SERVING_VERSION_MANIFEST = Artifact(
    "serving/versions/{version}/manifest.json", "faiss_index",
    "A published version's own manifest (experiments load treatments and shadows by it).",
)  # fmt: skip
_EXPORTED = ("items.npy", "users.npy", "neighbours.npz", "ids.json", "history.npz", "popular.npy",
             "ranker.json", "ranker.npz", "ranker.txt")  # fmt: skip
SERVING_FILES = {
    name: Artifact(
        f"serving/versions/{{version}}/{name}",
        "faiss_index" if name == "index.faiss" else "item_embeddings_export",
    )
    for name in (*_EXPORTED, "index.faiss")
}

# monitoring
DRIFT_PLOT = Artifact("monitoring/drift_{day}.png", "drift_metrics", "The last 30 days of drift metrics.")

CATALOGUE: tuple[Artifact, ...] = (
    ITEMS, ITEMS_QUARANTINE, INTERACTIONS, INTERACTIONS_QUARANTINE,
    TEXT_EMBEDDINGS, TEXT_META, IMAGE_EMBEDDINGS, IMAGE_ITEMS, IMAGE_META,
    FUSED_EMBEDDINGS, FUSION_CONFIG, FUSION_WEIGHTS, FUSION_TRAINED_ON,
    SPLITS, NODE_MAPS, UI_EDGES, *II_EDGES.values(), GRAPH_QA,
    MODEL_USERS, MODEL_ITEMS, MODEL_NEIGHBOURS, MODEL_META, MODEL_TRAINED_ON, MODEL_CHECKPOINT,
    MODEL_SCORES, RANKER_BOOSTER,
    EVAL_REPORT, EVAL_TABLE, BLESSED_REPORT, SEARCH_JOURNAL, SEARCH_BEST, COLD_START_REPORT, ABLATION,
    RANKER_ABLATION,
    SERVING_MANIFEST, SERVING_PENDING, SERVING_VERSION_MANIFEST, *SERVING_FILES.values(),
    DRIFT_PLOT,
)  # fmt: skip


def match(relative: str) -> list[tuple[Artifact, dict[str, str]]]:
    """The catalogue entries a relative path is a file of, with its field values."""
    found = []
    for artifact in CATALOGUE:
        hit = artifact.pattern().match(relative)
        if hit:
            found.append((artifact, hit.groupdict()))
    return found
