"""The materialize command's arguments are checked before anything runs."""

from __future__ import annotations

import pytest

from recsys_assets.defs.materialize import main


def test_select_names_the_assets_the_job_does_not_have(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--select", "ranker_model, nope,eval_report"])
    assert exited.value.code == 2
    assert "--select: ['nope'] not in job all_assets" in capsys.readouterr().err


def test_a_job_over_static_partitions_needs_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--job", "search"])
    assert "job search needs --partition, one of ['itemknn', 'ease', " in capsys.readouterr().err
