"""What the ranker reads besides the split: the trained models it takes candidates and scores
from, the items' content vectors and, when the interactions carry times, the timeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from recsys_assets.core.models.ranker.timeline import Timeline
from recsys_assets.core.models.recency import Order
from recsys_assets.core.models.scoring import Scorable


@dataclass(frozen=True)
class RankerInputs:
    #: Each retriever model by name, with the use of order it chose on validation.
    models: Mapping[str, tuple[Scorable, Order]]
    #: Content space name -> one vector per item node (``txt``, ``fused``).
    content: Mapping[str, np.ndarray]
    timeline: Timeline | None = None
