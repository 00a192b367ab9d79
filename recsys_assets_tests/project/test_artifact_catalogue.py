"""The artifact catalogue: one path per artifact, each written by exactly one asset (or job) of
the definitions, and the IO manager stores each asset at its own entry."""

from __future__ import annotations

from collections import Counter

import pytest

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.definitions import defs
from recsys_assets.defs.assets.models import MODEL_ASSETS
from recsys_assets.defs.io_manager import ARTIFACT_KEY


def _writers(artifact: catalogue.Artifact) -> set[str]:
    if "{model}" in artifact.writer:
        return {artifact.writer.format(model=model) for model in MODEL_ASSETS}
    return {artifact.writer}


def test_every_entry_has_its_own_path_and_a_real_writer() -> None:
    paths = Counter(a.path for a in catalogue.CATALOGUE)
    assert [p for p, n in paths.items() if n > 1] == []
    assets = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    jobs = {job.name for job in defs.jobs or []}
    for artifact in catalogue.CATALOGUE:
        assert _writers(artifact) <= assets | jobs, artifact
        # A writer's fields are the path's fields: the path says which writer wrote a file.
        assert {f for f in ("model",) if "{" + f + "}" in artifact.writer} <= set(artifact.fields)


def test_io_managed_assets_are_stored_at_their_own_entry() -> None:
    graph = defs.resolve_asset_graph()
    stored = {}
    for key in graph.get_all_asset_keys():
        path = (graph.get(key).metadata or {}).get(ARTIFACT_KEY)
        if path:
            stored[key.to_user_string()] = path
    entries = {a.path: a for a in catalogue.CATALOGUE}
    assert sorted(stored) == [
        "graph_qa_report", "ii_edges_fused", "ii_edges_txt", "interaction_splits", "interactions",
        "interactions_quarantine", "items", "items_quarantine", "node_maps", "ui_edges",
    ]  # fmt: skip
    for asset, path in stored.items():
        assert entries[path].writer == asset


@pytest.mark.parametrize(
    ("relative", "entry", "fields"),
    [
        ("items.parquet", catalogue.ITEMS, {}),
        ("interactions/2013-01.parquet", catalogue.INTERACTIONS, {"partition": "2013-01"}),
        (
            "quarantine/interactions/2013-01.parquet",
            catalogue.INTERACTIONS_QUARANTINE,
            {"partition": "2013-01"},
        ),
        ("models/gat/users.npy", catalogue.MODEL_USERS, {"model": "gat"}),
        ("models/gat.pt", catalogue.MODEL_CHECKPOINT, {"model": "gat"}),
        ("serving/versions/v1/index.faiss", catalogue.SERVING_FILES["index.faiss"], {"version": "v1"}),
    ],
)
def test_a_file_matches_exactly_its_entry(relative: str, entry: catalogue.Artifact, fields: dict) -> None:
    assert catalogue.match(relative) == [(entry, fields)]
    assert entry.relative(**fields) == relative


def test_paths_and_storage_paths() -> None:
    artifacts = catalogue.Artifacts("gs://bucket/prefix/")
    assert artifacts.uri(catalogue.MODEL_META, model="mf") == "gs://bucket/prefix/models/mf/meta.json"
    assert artifacts.folder(catalogue.INTERACTIONS) == "gs://bucket/prefix/interactions"
    assert catalogue.INTERACTIONS.storage_path == "interactions" and catalogue.ITEMS.storage_path == "items"
    with pytest.raises(KeyError, match=r"artifact models/\{model\}/users.npy: no value for \['model'\]"):
        artifacts.uri(catalogue.MODEL_USERS)
    with pytest.raises(ValueError, match=r"artifact items\.parquet is not partitioned"):
        artifacts.folder(catalogue.ITEMS)
    assert catalogue.match("notes.txt") == []
