"""The artifact catalogue against what the graph really wrote: every file is an entry of the
catalogue, written by the entry's one writer; every entry the graph writes was written."""

from __future__ import annotations

import pytest

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.core.io.codecs import read_json
from recsys_assets.core.models import registry
from recsys_assets.core.serving.bundle import FILES, kind_of
from recsys_assets_tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.xdist_group("pipeline")
#: Entries written outside the main job: the bless, ablation, search and cold-start jobs, the daily
#: drift asset.
ELSEWHERE = {
    catalogue.BLESSED_REPORT, catalogue.ABLATION, catalogue.RANKER_ABLATION, catalogue.DRIFT_PLOT,
    catalogue.SEARCH_JOURNAL, catalogue.SEARCH_BEST, catalogue.COLD_START_REPORT,
}  # fmt: skip


def test_every_file_is_a_catalogue_entry_of_a_materialized_writer(pipeline: Pipeline) -> None:
    pipeline.require("faiss_index", "graph_qa_report", "items", "interactions")
    files = sorted(p.relative_to(pipeline.root).as_posix() for p in pipeline.root.rglob("*") if p.is_file())
    seen: set[catalogue.Artifact] = set()
    for relative in files:
        matches = catalogue.match(relative)
        assert len(matches) == 1, f"{relative} matches {len(matches)} catalogue entries: {matches}"
        ((artifact, fields),) = matches
        writer = artifact.writer.format(**fields)
        assert writer in pipeline.metadata, f"{relative}: written by {writer}, which did not materialize"
        seen.add(artifact)
    # A version holds the files of the kind of model it serves (vectors and an index, or neighbour lists).
    served = kind_of(read_json(pipeline.artifacts.uri(catalogue.SERVING_MANIFEST)))
    other_kind = {catalogue.SERVING_FILES[name] for name in set(catalogue.SERVING_FILES) - set(FILES[served])}
    assert other_kind and set(catalogue.CATALOGUE) - seen == ELSEWHERE | other_kind
    # Partitioned artifacts: one file per month, each recorded as its own partition.
    months = [p for p in files if catalogue.INTERACTIONS.pattern().match(p)]
    assert len(months) == pipeline.partitions["interactions"] == 24


def test_the_whole_graph_materialized_with_every_check_passing(pipeline: Pipeline) -> None:
    assert pipeline.failures == {}, "\n\n".join(pipeline.failures.values())
    assert pipeline.success
    failed = {name: check.description for name, check in pipeline.checks.items() if not check.passed}
    assert failed == {}
    # 23 on the data, the embeddings, the graphs and the gate; per registered model its vectors and
    # its leakage check, and the fusion's leakage check (assets/leakage.py).
    models = len(registry.MODELS)
    assert len(pipeline.checks) == 23 + 2 * models + 1 and len(pipeline.metadata) == 16 + models
