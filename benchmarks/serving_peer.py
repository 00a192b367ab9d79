"""The peer for the serving benchmark: a minimal FastAPI + uvicorn service of the source
project's design (pydantic models; the normalised mean of the recent items' vectors, FAISS
top-k, the recent items filtered out), over the same serving version as our API.

    RECSYS_SERVING_MANIFEST=... uvicorn --factory benchmarks.serving_peer:create_app
"""

from __future__ import annotations

import os

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from recsys_assets.core.serving.bundle import load_bundle


class RecommendRequest(BaseModel):
    user_id: str
    k: int = 20
    recent_items: list[str] = []


class Item(BaseModel):
    item_id: str
    score: float


class RecommendResponse(BaseModel):
    user_id: str
    items: list[Item]


def create_app() -> FastAPI:
    bundle = load_bundle(os.environ["RECSYS_SERVING_MANIFEST"])
    app = FastAPI()

    @app.post("/recommend")
    def recommend(request: RecommendRequest) -> RecommendResponse:
        rows = [bundle.item_index[i] for i in request.recent_items if i in bundle.item_index]
        assert bundle.items is not None
        query = bundle.items[rows].mean(axis=0)
        query /= np.linalg.norm(query)
        scores, found = bundle.index.search(query[None, :].astype(np.float32), request.k + len(rows))
        seen = set(rows)
        items = [
            Item(item_id=bundle.item_ids[i], score=float(s))
            for i, s in zip(found[0], scores[0], strict=True)
            if i >= 0 and i not in seen
        ][: request.k]
        return RecommendResponse(user_id=request.user_id, items=items)

    return app
