"""The README's API examples: the script that writes them runs against a real API over the
pipeline's serving version, answers as the README shows, and runs the README's commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from recsys_assets.core.io import artifacts as catalogue
from recsys_assets.devtools.readme_examples import README, commands, examples_block, readme_block
from recsys_assets_tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.xdist_group("pipeline")


def _shape(command: str) -> str:
    """A command without what depends on the data: user, item and request ids."""
    command = re.sub(r'"request_id": "[0-9a-f]{32}"', '"request_id": "<id>"', command)
    command = re.sub(r'"user_id": "(?!newcomer"|u"|someone-else")[^"]+"', '"user_id": "<user>"', command)
    return re.sub(r"B\d{9}", "<item>", command)


def test_the_readme_runs_the_examples_the_script_runs(pipeline: Pipeline) -> None:
    pipeline.require("faiss_index")
    block = examples_block(Path(pipeline.artifacts.uri(catalogue.SERVING_MANIFEST)))
    ran = commands(block)
    assert [_shape(c) for c in ran] == [_shape(c) for c in commands(readme_block(README.read_text()))]
    outputs = block.removeprefix("```console\n").removesuffix("\n```").split("\n\n")
    answers = {command: text.splitlines()[1:] for command, text in zip(ran, outputs, strict=False)}
    first = json.loads(answers[ran[0]][0])
    assert (
        first["strategy"] == "user" and len(first["items"]) == 3 and all(i["title"] for i in first["items"])
    )
    assert json.loads(answers[ran[1]][0])["strategy"] == "recent_items"
    assert json.loads(answers[ran[2]][0])["strategy"] == "popular"
    assert answers[ran[5]] == ['{"status":"accepted"}']
    refused = json.loads(answers[ran[6]][0])
    assert (
        refused["status_code"] == 400
        and "was not issued by this API for user 'someone-else'" in refused["detail"]
    )
    assert json.loads(answers[ran[8]][0])["status_code"] == 400
    assert json.loads(answers[ran[9]][0])["status_code"] == 404
    assert any('status="200"} 3.0' in line for line in answers[ran[10]])
