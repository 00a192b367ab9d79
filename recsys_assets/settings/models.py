"""The recommenders' hyperparameters, the GAT's item input, and the promotion gate."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import model_validator

from recsys_assets.settings.base import Section, section, setting

GATLoss = Literal["bpr", "bce", "softmax"]
LOSSES: tuple[GATLoss, ...] = ("bpr", "bce", "softmax")
#: Negatives drawn when ``negatives`` is 0, by loss: BPR and BCE with 16 rather than 1 (better on
#: both the synthetic default and MovieLens-100k, benchmarks/RESULTS.md); the softmax shares 512.
DEFAULT_NEGATIVES: dict[str, int] = {"bpr": 16, "bce": 16, "softmax": 512}
EPOCHS_DOC = "Most training epochs of MF, LightGCN and the GAT (early stopping may end sooner)."


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
    epochs: int = setting(200, EPOCHS_DOC, env="RECSYS_MAX_EPOCHS", ge=1)
    eval_every: int = setting(1, "Epochs between validations.", ge=1)
    patience: int = setting(20, "Validations without improvement before stopping.", ge=1)
    seed: int = setting(0, "Random seed.")


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
    recency_decay: float = setting(20.0, "Recency weight exp(decay * (recency - 1)) in the readout.", ge=0)
    fanouts: tuple[int, ...] = setting(
        (), "Neighbours sampled per node, relation and hop (one per layer); empty: full batch."
    )
    val_users: int = setting(0, "Early stopping on a fixed random sample of this many users (0: all).", ge=0)
    # The sampled softmax won on validation on MovieLens-100k and the synthetic default
    # (benchmarks/RESULTS.md); BPR and BCE remain a setting away.
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
    epochs: int = setting(200, EPOCHS_DOC, env="RECSYS_MAX_EPOCHS", ge=1)
    eval_every: int = setting(1, "Epochs between validations.", ge=1)
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
        return self


class ModelSettings(Section):
    gat_features: Literal["fused", "txt"] = setting(
        "fused",
        "Item input of the GAT: `fused` (text + image) or `txt` embeddings.",
        env="RECSYS_GAT_FEATURES",
    )
    mf: MFConfig = section(MFConfig, "MF-BPR, the collaborative-filtering baseline.")
    lightgcn: LightGCNConfig = section(LightGCNConfig, "LightGCN, the graph baseline.")
    gat: GATConfig = section(
        GATConfig, "Any GAT hyperparameter, as a JSON object (e.g. `{\"temperature\": 0.1}`).",
        env="RECSYS_GAT_CONFIG",
    )  # fmt: skip
    promotion_tolerance: float = setting(
        0.02,
        "Relative drop of test NDCG@20 / Recall@20 below the blessed report that still passes the gate.",
        env="RECSYS_PROMOTION_TOLERANCE", ge=0, lt=1,
    )  # fmt: skip
