"""The asset -> job boundary: one typed params object per job module.

An asset builds the params (artifact URIs from the catalogue, configs from the settings tree),
the job runner sends them as Pipes extras, and the job validates them back into the same class,
so a missing or mistyped field fails on either side with its name. Each contract names the
module that runs it and the checks that module reports: the asset declares those checks
(blocking) from the same list. Imports no Dagster and nothing heavy: assets import it to build
params, job containers to read them.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, TypeAdapter, create_model, field_validator

from recsys_assets.core.models import registry
from recsys_assets.settings.base import Section
from recsys_assets.settings.embeddings import FusionConfig, ImageConfig, TextEncoderConfig
from recsys_assets.settings.graphs import KnnConfig
from recsys_assets.settings.models import (
    ColdStartConfig,
    EASEConfig,
    EvaluationConfig,
    GATConfig,
    OrderConfig,
    RankerConfig,
    SearchConfig,
)

Features = Literal["fused", "txt"]


class JobParams(Section):
    #: The module ``python -m`` runs.
    module: ClassVar[str]
    #: Check name suffix -> description; the job reports ``<asset>_<suffix>`` for each.
    checks: ClassVar[dict[str, str]] = {}

    #: The asset whose materialization (and checks) the job reports.
    asset: str


class TextEmbeddingParams(JobParams):
    module = "recsys_assets.pipes.text_embeddings"
    checks: ClassVar[dict[str, str]] = {
        "aligned": "One finite unit-length 384-d row per items row, in items order."
    }

    items_uri: str
    output_uri: str
    meta_uri: str
    encoder: TextEncoderConfig
    model_cache: str


class ImageEmbeddingParams(JobParams):
    module = "recsys_assets.pipes.image_embeddings"
    checks: ClassVar[dict[str, str]] = {
        "aligned": "One finite unit-length row per row of img_items.parquet.",
        "failure_rate": "The share of images that could not be fetched or decoded stays under the limit.",
    }

    items_uri: str
    #: The monthly interactions folder: reviewed items are embedded first under the cap.
    interactions_uri: str
    output_uri: str
    items_output_uri: str
    meta_uri: str
    image: ImageConfig
    model_cache: str


class TrainingInputs(Section):
    """What every learned component trains (train rows) and measures itself (validation rows) on."""

    splits_uri: str
    node_maps_uri: str


class FusionParams(JobParams):
    module = "recsys_assets.pipes.fused_embeddings"
    checks: ClassVar[dict[str, str]] = {
        "aligned": "One finite unit-length 128-d row per items row, in items order.",
        "beat_text": "Fused neighbours agree with the split's validation co-review at least as often as "
        "text neighbours.",
    }

    data: TrainingInputs
    text_uri: str
    image_uri: str
    image_items_uri: str
    output_uri: str
    config_uri: str
    weights_uri: str
    #: The hashes of the train rows the MLP was fitted on (``core/leakage.py``).
    trained_on_uri: str
    fusion: FusionConfig


class ModelFiles(Section):
    """A trained model's files (``models/<name>/``): vectors for embedding models, neighbour
    lists for item-item ones, a checkpoint for a model that keeps one; ``meta.json`` says which."""

    users_uri: str
    items_uri: str
    neighbours_uri: str
    meta_uri: str
    #: The hashes of the train rows the model was fitted on (``core/leakage.py``).
    trained_on_uri: str
    #: Its weights (a network the files alone cannot rebuild: the GAT, an encoder of histories;
    #: a ranker's LightGBM model).
    checkpoint_uri: str = ""
    #: A ranker's scores of each split's candidates.
    scores_uri: str = ""


class ContentInputs(Section):
    """The items' content and the graph, for a model that reads them (``ModelSpec.content``)."""

    features: Features
    features_uri: str
    ui_edges_uri: str
    ii_edges_uri: str

    def load(self, data: Any) -> tuple[Any, Any]:
        """(item features, graph), checked against ``data`` (``TrainingData``)."""
        from recsys_assets.core.models.gat.inputs import load_gat_inputs

        return load_gat_inputs(self.features_uri, self.ui_edges_uri, self.ii_edges_uri, data)


class RankerSources(Section):
    """What a ranker reads (``ModelSpec.kind == "ranker"``): the trained models' files and the
    content vectors by space."""

    models: dict[str, ModelFiles]
    content_uris: dict[str, str]

    def load(self, data: Any, splits_uri: str, node_maps_uri: str) -> Any:
        """``RankerInputs``: each model with its chosen use of order, the content, the timeline."""
        from recsys_assets.core.models.ranker.load import load_ranker_inputs

        models = {name: files.to_dict() for name, files in self.models.items()}
        return load_ranker_inputs(models, self.content_uris, data, splits_uri, node_maps_uri)


class TrainParams(JobParams):
    """What the training job gets for any model; each registered model's params class
    (``TRAIN_CONTRACTS``) adds its name and its settings section's type."""

    module = "recsys_assets.pipes.train_model"
    checks: ClassVar[dict[str, str]] = {
        "vectors": "Finite user and item vectors, one per node, or finite neighbour lists over the items."
    }

    model: str
    #: The model's settings section (typed by its params class); None for a model without one.
    config: Any = None
    data: TrainingInputs
    output: ModelFiles
    #: The items' content and the graph, for a model that reads them.
    inputs: ContentInputs | None = None
    #: The trained models and content a ranker reads.
    sources: RankerSources | None = None
    #: The search result whose best settings the config holds ("": none).
    tuned_from: str = ""
    #: The uses of order tried on validation (``core/models/recency.py``).
    order: OrderConfig = Field(default_factory=OrderConfig)
    #: Seeds a model with random initialisation trains with (the first is the model); its
    #: metrics on each are recorded for the report's spread.
    seeds: int = Field(default=1, ge=1)
    #: How each seed is evaluated (the test history), as ``eval_report`` does.
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @property
    def spec(self) -> registry.ModelSpec:
        return registry.spec(self.model)


def _train_contract(spec: registry.ModelSpec) -> type[TrainParams]:
    fields: dict[str, Any] = {"model": (Literal[spec.name], spec.name)}
    config = spec.config_class
    fields["config"] = (config, ...) if config is not None else (None, None)
    fields["inputs"] = (ContentInputs, ...) if spec.content else (None, None)
    fields["sources"] = (RankerSources, ...) if spec.kind == "ranker" else (None, None)
    name = "".join(part.title() for part in spec.name.split("_")) + "Params"
    return create_model(name, __base__=TrainParams, __module__=__name__, **fields)


#: Each registered model's training params, by model name.
TRAIN_CONTRACTS: dict[str, type[TrainParams]] = {spec.name: _train_contract(spec) for spec in registry.MODELS}
#: Any model's training params, told apart by ``model``: what the training job validates.
TRAIN_PARAMS: TypeAdapter[TrainParams] = TypeAdapter(
    Annotated[Union[tuple(TRAIN_CONTRACTS.values())], Field(discriminator="model")]  # type: ignore[arg-type] # noqa: UP007
)


class EvaluateParams(JobParams):
    module = "recsys_assets.pipes.evaluate"
    checks: ClassVar[dict[str, str]] = {
        "promotion_gate": "The model that serves (chosen on validation by significant gains, or pinned): its "
        "test NDCG@20 and Recall@20 are not below the blessed report's beyond the tolerance."
    }

    data: TrainingInputs
    models: dict[str, ModelFiles]
    #: The model that serves and that the promotion gate judges; empty: the servable model with
    #: the best validation NDCG@20.
    candidate: str = ""
    output_uri: str
    #: Every model's metrics as one wide markdown table (too wide for the UI's metadata panel).
    table_uri: str
    #: The blessed report; it may not exist yet.
    blessed_uri: str
    tolerance: float
    #: Intervals, paired tests, the promotion margin and the test history.
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    #: The catalogue (items.parquet): the display names of the example recommendations.
    items_uri: str
    #: Data and code versions the asset knows, recorded in the report.
    versions: dict[str, Any]


class SearchParams(JobParams):
    module = "recsys_assets.pipes.search"

    model: str
    data: TrainingInputs
    #: The model's settings section the trials override.
    base: dict[str, Any]
    order: OrderConfig = Field(default_factory=OrderConfig)
    #: The GAT's inputs (its search only).
    inputs: ContentInputs | None = None
    #: The ranker's retrievers and content (its search only).
    sources: RankerSources | None = None
    search: SearchConfig
    #: The study's journal (resumed when it exists) and the best settings found.
    journal_uri: str
    best_uri: str

    @field_validator("model")
    @classmethod
    def _tunable(cls, model: str) -> str:
        if model not in registry.TUNABLE:
            raise ValueError(f"model {model!r} is not tunable; tunable: {list(registry.TUNABLE)}")
        return model


class ColdStartParams(JobParams):
    module = "recsys_assets.pipes.cold_start"

    data: TrainingInputs
    gat: GATConfig
    inputs: ContentInputs
    #: The text vectors (a content-only peer, and the fusion's input).
    text_uri: str
    #: The fusion's image input: vectors and their items.
    image_uri: str
    image_items_uri: str
    #: The fusion MLP is refit without the held-out items, and its kNN edges rebuilt.
    fusion: FusionConfig
    knn: KnnConfig
    order: OrderConfig = Field(default_factory=OrderConfig)
    #: The intervals and paired comparisons of the cold table.
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    protocol: ColdStartConfig
    #: The two-stage ranker's settings, and EASE's (one of its retrievers); None: no ranker row.
    ranker: RankerConfig | None = None
    ease: EASEConfig = Field(default_factory=EASEConfig)
    output_uri: str


class AblationParams(JobParams):
    module = "recsys_assets.pipes.gat_ablation"

    data: TrainingInputs
    ui_edges_uri: str
    features_uris: dict[str, str]
    ii_edges_uris: dict[str, str]
    base: GATConfig
    features: Features
    #: Variant name -> overrides of ``base`` (``features`` switches the item input); empty:
    #: ``core/models/gat/ablation.default_variants``.
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    output_uri: str


class RankerAblationParams(JobParams):
    module = "recsys_assets.pipes.ranker_ablation"

    data: TrainingInputs
    sources: RankerSources
    base: RankerConfig
    #: Variant name -> overrides of ``base``; empty: ``core/models/ranker/ablation.default_variants``
    #: (the full ranker, without the GAT, without EASE and ItemKNN, without content).
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    output_uri: str


#: Every contract a job module runs, for the asset side and the tests.
CONTRACTS: tuple[type[JobParams], ...] = (
    TextEmbeddingParams, ImageEmbeddingParams, FusionParams, *TRAIN_CONTRACTS.values(), EvaluateParams,
    SearchParams, ColdStartParams, AblationParams, RankerAblationParams,
)  # fmt: skip
