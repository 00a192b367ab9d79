"""The recommenders' hyperparameters, the GAT's item input, and the promotion gate."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from recsys_assets.settings.base import Section, section, setting

GATLoss = Literal["bpr", "bce", "softmax"]
LOSSES: tuple[GATLoss, ...] = ("bpr", "bce", "softmax")
#: Negatives drawn when ``negatives`` is 0, by loss: BPR and BCE with 16 rather than 1 (better on
#: both the synthetic default and MovieLens-100k, benchmarks/RESULTS.md); the softmax shares 512.
DEFAULT_NEGATIVES: dict[str, int] = {"bpr": 16, "bce": 16, "softmax": 512}
EPOCHS_DOC = "Most training epochs (early stopping may end sooner)."
#: Each step of LightGCN and the GAT propagates over the graph, so a dense data set (a 1M-rating
#: set has 100 batches of 8192) takes bigger steps, not more; ML-100k and the default keep 8192.
MAX_STEPS = 16
MAX_STEPS_DOC = "Most steps an epoch: a larger train set takes bigger batches instead (0: no limit)."


class MFConfig(Section):
    """Matrix factorisation with BPR (``core/models/mf.py``)."""

    dim: int = setting(64, "Embedding width.", ge=1)
    learning_rate: float = setting(5e-3, "Adam learning rate.", gt=0)
    l2: float = setting(1e-4, "L2 penalty on the batch's embeddings.", ge=0)
    batch_size: int = setting(4096, "Train pairs per step.", ge=1)
    epochs: int = setting(200, EPOCHS_DOC, env="RECSYS_MAX_EPOCHS", ge=1)
    eval_every: int = setting(1, "Epochs between validations.", ge=1)
    patience: int = setting(10, "Validations without improvement before stopping.", ge=1)
    seed: int = setting(0, "Random seed.")


class LightGCNConfig(Section):
    """PyG's LightGCN with BPR (``core/models/lightgcn.py``)."""

    dim: int = setting(64, "Embedding width.", ge=1)
    layers: int = setting(3, "Propagation layers.", ge=1)
    # Large batches: each step propagates over the whole graph, so fewer, bigger steps are what
    # makes an epoch affordable, with a learning rate raised to match (benchmarks/RESULTS.md).
    learning_rate: float = setting(1e-2, "Adam learning rate.", gt=0)
    l2: float = setting(1e-4, "L2 penalty on the batch's base embeddings.", ge=0)
    batch_size: int = setting(8192, "Train edges per step.", ge=1)
    max_steps: int = setting(MAX_STEPS, MAX_STEPS_DOC, ge=0)
    epochs: int = setting(200, EPOCHS_DOC, env="RECSYS_MAX_EPOCHS", ge=1)
    eval_every: int = setting(1, "Epochs between validations.", ge=1)
    patience: int = setting(20, "Validations without improvement before stopping.", ge=1)
    seed: int = setting(0, "Random seed.")


class SASRecConfig(Section):
    """SASRec, causal self-attention over each user's items in time (``core/models/sasrec.py``)."""

    dim: int = setting(64, "Width of the item embeddings and every state.", ge=1)
    layers: int = setting(2, "Self-attention blocks.", ge=1)
    heads: int = setting(1, "Attention heads per block (they split the width).", ge=1)
    max_length: int = setting(50, "Latest items of a user's history read (the paper's n).", ge=2)
    dropout: float = setting(0.2, "Dropout on the inputs and inside every block.", ge=0, lt=1)
    negatives: int = setting(
        512, "Items sampled per batch each position's target competes with (all, when fewer).", ge=1
    )
    # 3e-3 over the paper's 1e-3: validation NDCG@20 0.1798 vs 0.1718 on MovieLens-100k (and in a
    # third of the epochs); benchmarks/RESULTS.md.
    learning_rate: float = setting(3e-3, "Adam learning rate.", gt=0)
    l2: float = setting(0.0, "Adam weight decay.", ge=0)
    batch_size: int = setting(128, "User sequences per step.", ge=1)
    epochs: int = setting(200, EPOCHS_DOC, env="RECSYS_MAX_EPOCHS", ge=1)
    eval_every: int = setting(1, "Epochs between validations.", ge=1)
    patience: int = setting(20, "Validations without improvement before stopping.", ge=1)
    seed: int = setting(0, "Random seed.")

    @model_validator(mode="after")
    def _heads_split_the_width(self) -> Self:
        if self.dim % self.heads:
            raise ValueError(f"sasrec: dim {self.dim} is not a multiple of heads {self.heads}")
        return self


class BlendConfig(Section):
    """The blend peer: a per-user z-scored blend of the two models best on validation
    (``core/models/ranker/blend.py``), the floor a learned ranker must clear."""

    weights: tuple[float, ...] = setting(
        tuple(round(0.1 * k, 1) for k in range(11)), "Weights of the better model tried on validation."
    )
    keep: int = setting(
        100, "Items kept per user and split (a metric at K up to this reads nothing below).", ge=20
    )
    val_users: int = setting(10_000, "Validation users the choices are made on (0: all).", ge=0)
    seed: int = setting(0, "Seed of that sample.")

    @model_validator(mode="after")
    def _tried(self) -> Self:
        _grid(self.weights, "blend.weights")
        if any(not 0 <= w <= 1 for w in self.weights):
            raise ValueError(f"blend.weights: each weight must be within [0, 1], got {list(self.weights)}")
        return self


class RankerConfig(Section):
    """The two-stage ranker: candidates from every trained model and from content, a LightGBM
    LambdaRank learnt from validation (``core/models/ranker/``)."""

    per_source: int = setting(50, "Candidates each retriever proposes per user (N).", ge=1)
    sources: tuple[str, ...] = setting(
        (), "Models whose candidates and scores the ranker reads; empty: every trained model."
    )
    content: tuple[Literal["txt", "fused"], ...] = setting(
        ("fused", "txt"),
        "Content spaces that propose candidates (kNN of the user's weighted mean vector) and give "
        "similarity features; the first also proposes the items with few or no train interactions.",
    )
    content_decay: float = setting(
        5.0, "Recency decay of the content retrievers' user vector (``recency.py``'s weights).", ge=0
    )
    recent_items: int = setting(20, "Latest history items the content similarities read.", ge=1)
    recent_decay: float = setting(
        0.2, "Weight exp(-decay * k) of the k-th latest item in the recency-weighted similarity.", ge=0
    )
    window_days: float = setting(30.0, "Window of the item's recent-interaction count.", gt=0)
    folds: int = setting(5, "K of the K-fold over validation users that chooses the settings.", ge=2)
    grid: tuple[dict[str, int | float | str], ...] = setting(
        (
            {"learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 50},
            {"learning_rate": 0.05, "num_leaves": 63, "min_data_in_leaf": 100},
        ),
        "LightGBM settings tried (each a dict of LightGBM parameters); the best mean fold NDCG@20 wins.",
    )
    max_rounds: int = setting(500, "Most boosting rounds.", ge=1)
    patience: int = setting(30, "Rounds without a better fold NDCG@20 before a fold stops.", ge=1)
    cold_dropout: float = setting(
        0.0,
        "Share of training rows whose interaction features (scores of the models that read no content, "
        "the item's counts) are dropped so the ranker learns to rank by content; when above 0, an item "
        "with at most 2 train interactions always has them dropped (DropoutNet).",
        ge=0, lt=1,
    )  # fmt: skip
    threads: int = setting(0, "LightGBM threads (0: every core).", ge=0)
    seed: int = setting(0, "Seed of the folds and of LightGBM's sampling.")

    @model_validator(mode="after")
    def _tried(self) -> Self:
        _grid(self.grid, "ranker.grid")
        return self


def _grid(values: tuple[Any, ...], name: str) -> None:
    if not values:
        raise ValueError(f"{name}: expected at least one value to try")


class EASEConfig(Section):
    """EASE, the closed-form linear item-item model (``core/models/item_item.py``)."""

    l2: tuple[PositiveFloat, ...] = setting(
        (50.0, 100.0, 200.0, 500.0, 1000.0), "L2 strengths (lambda) tried; validation picks one."
    )
    max_items: int = setting(
        10_000,
        "Largest dense item-item problem: above it EASE models only this many most-interacted items "
        "(the rest score 0); 0 skips EASE.",
        ge=0,
    )
    neighbours: int = setting(
        1000,
        "Weights kept per item (largest magnitude; 0: all): what is evaluated is what serves.",
        ge=0,
    )

    @model_validator(mode="after")
    def _tried(self) -> Self:
        _grid(self.l2, "ease.l2")
        return self


class ItemKNNConfig(Section):
    """Item-based kNN over cosine similarity of the interaction columns (``core/models/item_item.py``)."""

    neighbours: tuple[PositiveInt, ...] = setting(
        (50, 100, 200), "Neighbours kept per item (top k by similarity) tried; validation picks one."
    )
    shrink: tuple[NonNegativeFloat, ...] = setting(
        (0.0, 10.0), "Shrinkage added to the cosine's denominator, tried; validation picks one."
    )

    @model_validator(mode="after")
    def _tried(self) -> Self:
        _grid(self.neighbours, "itemknn.neighbours")
        _grid(self.shrink, "itemknn.shrink")
        return self


class OrderConfig(Section):
    """Order-awareness shared by every model (``core/models/recency.py``): each of a user's
    train items weighted by floor + exp(decay * (r - 1)), r its place in time from 0 (first)
    to 1 (last); every combination is tried on validation, per model."""

    decays: tuple[NonNegativeFloat, ...] = setting(
        (0.0, 1.0, 2.0, 5.0, 10.0, 20.0), "Decays tried; 0 is order-free. `[0]` switches order off.",
        env="RECSYS_ORDER_DECAYS",
    )  # fmt: skip
    floors: tuple[NonNegativeFloat, ...] = setting(
        (0.0, 0.1, 0.5), "Floors tried (a weight every item keeps)."
    )
    readout: tuple[NonNegativeFloat, ...] = setting(
        (0.0, 0.5, 1.0, 2.0),
        "Embedding models: weights of the history readout tried (a user's vector plus w times the "
        "weighted mean of their items' vectors); 0 is off.",
    )
    val_users: int = setting(
        10_000, "The choice is made on a fixed random sample of this many validation users (0: all).", ge=0
    )
    seed: int = setting(0, "Seed of that sample.")

    @model_validator(mode="after")
    def _tried(self) -> Self:
        for name in ("decays", "floors", "readout"):
            _grid(getattr(self, name), f"order.{name}")
        return self


class SearchConfig(Section):
    """Hyper-parameter search with Optuna (``core/models/search.py``, the ``hyperparameter_search`` asset)."""

    trials: int = setting(
        20, "Trials each search run adds to the model's study.", env="RECSYS_SEARCH_TRIALS", ge=1
    )
    timeout_s: float = setting(0.0, "Stop starting trials after this many seconds (0: no limit).", ge=0)
    startup_trials: int = setting(
        5, "Random trials before TPE (after a new study's first, the current settings).", ge=0
    )
    # A new study's first trial is the model's current settings (MF, LightGCN, the GAT): from
    # the second on, a trial whose validation curve falls below the median of the completed
    # ones is stopped, rather than five random startup trials each running every epoch (one
    # GAT trial ran 22 min on MovieLens-100k on 2 cores).
    prune_after: int = setting(1, "Completed trials before pruning starts.", ge=0)
    warmup_epochs: int = setting(5, "Epochs a trial always runs before it may be pruned.", ge=0)
    # A GAT trial with a small learning rate would otherwise run all 200 epochs (over 20 min on
    # MovieLens-100k on 2 cores); the model asset trains the best settings with its own epochs.
    trial_epochs: int = setting(
        60, "Most epochs a trial of MF, LightGCN or the GAT trains (0: the model's own `epochs`).", ge=0
    )
    seed: int = setting(0, "Sampler seed.")
    use_best: bool = setting(
        True,
        "Model assets train with the best settings a search found (`search/<model>/best.json`) when "
        "there is one, over the settings here.",
        env="RECSYS_USE_SEARCH",
    )


class ColdStartConfig(Section):
    """The item-cold-start protocol (``core/models/cold_start.py``, the ``cold_start_report`` asset)."""

    share: float = setting(0.1, "Share of the items with interactions held out entirely.", gt=0, lt=1)
    seed: int = setting(0, "Seed of the held-out items.")


class EvaluationConfig(Section):
    """Intervals, paired tests and the promotion rule (``core/models/uncertainty.py``,
    ``core/models/promotion.py``)."""

    resamples: int = setting(
        1000,
        "Bootstrap resamples over users for every interval (shared by all models, so comparisons are "
        "paired); 0: no intervals (point estimates and p-values only).",
        env="RECSYS_BOOTSTRAP_RESAMPLES", ge=0,
    )  # fmt: skip
    confidence: float = setting(
        0.95,
        "Confidence of the intervals; a difference is significant when its Holm-corrected p is "
        "below 1 - this.",
        gt=0, lt=1,
    )  # fmt: skip
    seed: int = setting(0, "Seed of the resamples.")
    margin: float = setting(
        0.0,
        "A model replaces the blessed one (or a cheaper one tied with it) only when the lower bound of "
        "the paired interval of its relative validation NDCG@20 gain is above this, and the gain is "
        "significant.",
        env="RECSYS_PROMOTION_MARGIN",
    )
    serving_cost: tuple[str, ...] = setting(
        (),
        "Models from the cheapest to serve to the costliest: a tie on validation goes to the first "
        "(empty: each model's `serving_cost` in `core/models/registry.py`).",
    )
    test_history: Literal["train+val", "train"] = setting(
        "train+val",
        "History a model reads when tested: train and validation (as deployed; the models stay fitted "
        "on train), or train alone (the protocol before 0.2.0: validation and test then scored "
        "different tasks).",
        env="RECSYS_TEST_HISTORY",
    )


class GATConfig(Section):
    """The multi-modal GATv2 recommender (``core/models/gat/``)."""

    hidden: int = setting(64, "Width of every node state.", ge=1)
    heads: int = setting(1, "Attention heads per GATv2 layer (averaged).", env="RECSYS_GAT_HEADS", ge=1)
    layers: int = setting(2, "GATv2 layers.", env="RECSYS_GAT_LAYERS", ge=1)
    dropout: float = setting(0.0, "Dropout on the attention coefficients.", ge=0, lt=1)
    id_embedding: bool = setting(True, "Items also get a learned id embedding.")
    item_item: bool = setting(True, "Message passing over the item-item kNN edges too.")
    edge_features: bool = setting(
        True, "Edge attributes (rating weight, recency; kNN similarity) feed the attention."
    )
    item_bias: bool = setting(False, "A learned per-item bias, exported as one more dimension.")
    recency_readout: tuple[float, ...] = setting(
        (0.0, 1.0, 2.0),
        "Weights tried for the recency readout (inference only: a user's vector adds w times the "
        "recency-weighted mean of their items' vectors); validation picks one, 0 is off.",
    )
    recency_decay: float = setting(
        20.0, "Recency weight exp(decay * (recency - 1)) in the readout (and of the sequence context).", ge=0
    )
    # Both uses of order in training won on validation on MovieLens-100k (benchmarks/RESULTS.md).
    sequence: bool = setting(
        True,
        "Train each edge against the items the user reviewed just before it (a next-item objective, "
        "`core/models/gat/sequence.py`); the readout weight is then learned.",
    )
    sequence_window: int = setting(20, "Items of sequence context per train edge.", ge=1)
    id_dropout: float = setting(
        0.0,
        "Share of items that train on their content alone in each step (their id embedding dropped), "
        "so items nobody reviewed get useful vectors.",
        ge=0,
        lt=1,
    )
    next_edges: bool = setting(
        True, "Message passing over item-item edges of items reviewed one after the other, too."
    )
    fanouts: tuple[int, ...] = setting(
        (),
        "Neighbours sampled per node, relation and hop (one per layer); empty: the whole graph up to "
        "`full_graph_edges`, and 10 then 5 per hop above it.",
    )
    # A step over the whole graph costs its edges: at 2.5M (a 1M-rating set, both directions and
    # next-item edges) that is ~7 s a step on 2 cores, sampled neighbourhoods ~1 s.
    full_graph_edges: int = setting(
        1_000_000, "Graphs with more edges than this train on sampled neighbourhoods.", ge=0
    )
    val_users: int = setting(0, "Early stopping on a fixed random sample of this many users (0: all).", ge=0)
    # The sampled softmax wins on validation on MovieLens-100k; on the synthetic default BPR does
    # (benchmarks/RESULTS.md). The search (`make search MODEL=gat`) tries both on a user's data.
    loss: GATLoss = setting(
        "softmax",
        "`softmax` (sampled, shared negatives, over cosine / temperature), `bpr` or `bce`.",
        env="RECSYS_GAT_LOSS",
    )
    negatives: int = setting(
        0, "Negatives per positive (bpr, bce) or shared by the batch (softmax); 0: 16, or 512 for softmax.",
        ge=0,
    )  # fmt: skip
    temperature: float = setting(0.2, "Softmax temperature over cosine scores.", gt=0)
    learning_rate: float = setting(1e-2, "Adam learning rate.", gt=0)
    l2: float = setting(1e-4, "L2 penalty on the batch's input vectors.", ge=0)
    batch_size: int = setting(8192, "Train edges per step.", ge=1)
    max_steps: int = setting(MAX_STEPS, MAX_STEPS_DOC, ge=0)
    epochs: int = setting(200, EPOCHS_DOC, env="RECSYS_MAX_EPOCHS", ge=1)
    # Training on sampled neighbourhoods makes a step cheap, but validation still embeds the whole
    # graph: every epoch it cost a third of the GAT's time on a 1M-rating set (benchmarks/RESULTS.md).
    eval_every: int = setting(
        0, "Epochs between validations; 0: every epoch over the whole graph, every 2nd on sampled "
        "neighbourhoods (`patience` then counts pairs of epochs).", ge=0,
    )  # fmt: skip
    patience: int = setting(20, "Validations without improvement before stopping.", ge=1)
    seed: int = setting(0, "Random seed.")

    @model_validator(mode="before")
    @classmethod
    def _negatives_by_loss(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("negatives"):
            loss = data.get("loss", cls.model_fields["loss"].default)
            data = {**data, "negatives": DEFAULT_NEGATIVES.get(loss, 1)}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.recency_readout or min(self.recency_readout) < 0:
            raise ValueError(f"recency_readout {list(self.recency_readout)}: expected weights >= 0")
        if self.fanouts and len(self.fanouts) != self.layers:
            raise ValueError(f"fanouts {list(self.fanouts)}: expected one per layer ({self.layers})")
        if self.sequence and self.item_bias:
            raise ValueError(
                "sequence and item_bias: the sequence context reads out unbiased item states only"
            )
        return self


class ModelSettings(Section):
    gat_features: Literal["fused", "txt"] = setting(
        "fused",
        "Item input of the GAT: `fused` (text + image) or `txt` embeddings.",
        env="RECSYS_GAT_FEATURES",
    )
    mf: MFConfig = section(MFConfig, "MF-BPR, the collaborative-filtering baseline.")
    ease: EASEConfig = section(EASEConfig, "EASE, the linear item-item peer.")
    itemknn: ItemKNNConfig = section(ItemKNNConfig, "ItemKNN, the neighbourhood peer.")
    order: OrderConfig = section(OrderConfig, "The recency-weighted history every model may use.")
    search: SearchConfig = section(SearchConfig, "Hyper-parameter search (Optuna).")
    cold_start: ColdStartConfig = section(ColdStartConfig, "The item-cold-start protocol.")
    lightgcn: LightGCNConfig = section(LightGCNConfig, "LightGCN, the graph baseline.")
    sasrec: SASRecConfig = section(SASRecConfig, "SASRec, the order-aware sequential peer.")
    blend: BlendConfig = section(BlendConfig, "The score blend of the two best models (the ranker's floor).")
    ranker: RankerConfig = section(
        RankerConfig, "Any ranker setting, as a JSON object (e.g. `{\"per_source\": 100}`).",
        env="RECSYS_RANKER_CONFIG",
    )  # fmt: skip
    gat: GATConfig = section(
        GATConfig, "Any GAT hyperparameter, as a JSON object (e.g. `{\"temperature\": 0.1}`).",
        env="RECSYS_GAT_CONFIG",
    )  # fmt: skip
    seeds: int = setting(
        1,
        "Seeds each model trained by epochs from a random start trains with: the first is the model, "
        "the report shows the mean and spread of all (benchmarks use 3).",
        env="RECSYS_MODEL_SEEDS", ge=1,
    )  # fmt: skip
    evaluation: EvaluationConfig = section(EvaluationConfig, "Intervals, paired tests and promotion.")
    candidate: str = setting(
        "",
        "The model to serve and gate (`gat`, `ease`, ...); empty: chosen on validation by significant gains.",
        env="RECSYS_CANDIDATE",
    )
    promotion_tolerance: float = setting(
        0.02,
        "Relative drop of test NDCG@20 / Recall@20 below the blessed report that still passes the gate.",
        env="RECSYS_PROMOTION_TOLERANCE", ge=0, lt=1,
    )  # fmt: skip
