"""The catalogue assets materialized into a temporary folder, then read back."""

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import (
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    asset,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from recsys_assets.defs.assets import catalogue
from recsys_assets.defs.partitions import interaction_months
from recsys_assets.devdata.synthetic import METADATA_FILE, PRESETS, REVIEWS_FILE, generate
from recsys_assets_tests.conftest import make_resources, make_settings

MONTHS = interaction_months.get_partition_keys()
# At this size the small preset's shares plant 2 duplicate reviews, 3 repeated metadata
# lines and 3 blank lines, and no wrong-typed record: the quarantine of invalid records
# starts empty and each test adds its own.
TINY = {"n_items": 300, "n_users": 120, "n_reviews": 3_000, "n_reviewed_items": 200}
#: Staged rows: the reviews and the small preset's re-reviews (0.2%: later events of a pair, rows
#: of their own until the split collapses them).
ROWS = TINY["n_reviews"] + round(PRESETS["small"].re_review_share * TINY["n_reviews"])


@pytest.fixture(scope="module")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    manifest = generate("small", out, image_files=False, overrides=TINY)
    assert manifest["months"] == [MONTHS[0], MONTHS[-1]]
    return out


@asset
def interaction_counts(interactions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """A stand-in for the next layer: it must never run on data a blocking check rejected."""
    return pd.DataFrame({"month": list(interactions), "rows": [len(f) for f in interactions.values()]})


def _resources(root: Path, raw: Path, max_quarantine_rate: float = 0.001) -> dict[str, Any]:
    data = {
        "reviews_uri": str(raw / REVIEWS_FILE),
        "metadata_uri": str(raw / METADATA_FILE),
        "parser_workers": 1,
        "max_quarantine_rate": max_quarantine_rate,
    }
    return make_resources(make_settings(root, data=data))


def _run(
    instance: DagsterInstance, resources: dict[str, Any], first: str, last: str, downstream: bool = False
) -> ExecuteInProcessResult:
    assets = [catalogue.raw_metadata, catalogue.raw_reviews, catalogue.items, catalogue.interactions]
    defs = Definitions(assets=[*assets, interaction_counts] if downstream else assets, resources=resources)
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
        raise_on_error=False,
    )


def _checks(result: ExecuteInProcessResult) -> dict[str, Any]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_materialize_everything_and_read_back(tmp_path: Path, tiny_raw: Path) -> None:
    with DagsterInstance.ephemeral() as instance:
        result = _run(instance, _resources(tmp_path, tiny_raw), MONTHS[0], MONTHS[-1])
    assert result.success
    assert all(e.passed for e in _checks(result).values()), {
        k: e.description for k, e in _checks(result).items() if not e.passed
    }
    assert len(_checks(result)) == 12

    artifacts = tmp_path / "artifacts"
    items = pd.read_parquet(artifacts / "items.parquet")
    assert len(items) == TINY["n_items"]
    assert items["item_id"].is_unique
    assert list(items.columns) == [
        "item_id",
        "title",
        "description",
        "brand",
        "categories",
        "price",
        "image_url",
    ]
    months = sorted(p.stem for p in (artifacts / "interactions").glob("*.parquet"))
    assert months == MONTHS
    total = sum(len(pd.read_parquet(artifacts / "interactions" / f"{m}.parquet")) for m in months)
    assert total == ROWS == 3_006
    march = pd.read_parquet(artifacts / "interactions" / "2013-03.parquet")
    assert (march["ts"].dt.strftime("%Y-%m") == "2013-03").all()
    assert march["ts"].is_monotonic_increasing
    # The month's quarantine holds only its duplicate reviews, each naming the line kept.
    march_q = pd.read_parquet(artifacts / "quarantine" / "interactions" / "2013-03.parquet")
    assert set(march_q["code"]) <= {"duplicate"} and march_q["kept_line"].notna().all()
    quarantined = pd.concat(pd.read_parquet(p) for p in (artifacts / "quarantine" / "interactions").glob("*"))
    assert quarantined["code"].value_counts().to_dict() == {"duplicate": 2}
    items_q = pd.read_parquet(artifacts / "quarantine" / "items.parquet")
    assert items_q["code"].value_counts().to_dict() == {"repeated_item": 3}

    rows_md = {
        m.partition: m.materialization.metadata["rows"].value
        for m in result.get_asset_materialization_events()
        if m.asset_key.path == ["interactions"]
    }
    assert rows_md["2013-03"] == len(march)
    assert sum(rows_md.values()) == ROWS
    table = (
        next(m for m in result.get_asset_materialization_events() if m.partition == "2013-03")
        .materialization.metadata["rows_by_month"]
        .value
    )
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    assert {month: int(rows) for month, rows, *_ in cells} == rows_md
    assert sum(int(duplicates) for _, _, duplicates, _ in cells) == 2


def _rewrite_reviews(src: Path, dst: Path, edit: Any) -> None:
    with gzip.open(src / REVIEWS_FILE, "rt") as fh:
        lines = fh.read().splitlines()
    lines = edit(lines)
    with gzip.open(dst / REVIEWS_FILE, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def _month(line: str) -> str:
    if not line.strip():
        return ""  # the blank lines the generator plants
    ts = json.loads(line)["unixReviewTime"]
    return str(pd.Timestamp(ts, unit="s").strftime("%Y-%m"))


def test_rematerializing_a_month_replaces_exactly_that_month(tmp_path: Path, tiny_raw: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    resources = _resources(tmp_path, raw)
    parts = tmp_path / "artifacts" / "interactions"
    with DagsterInstance.ephemeral() as instance:
        assert _run(instance, resources, MONTHS[0], MONTHS[-1]).success
        before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in parts.iterdir()}

        # The raw dump changes: March 2013 loses all but its first three reviews.
        def keep_three_of_march(lines: list[str]) -> list[str]:
            march = [i for i, line in enumerate(lines) if _month(line) == "2013-03"]
            drop = set(march[3:])
            return [line for i, line in enumerate(lines) if i not in drop]

        _rewrite_reviews(tiny_raw, raw, keep_three_of_march)
        result = _run(instance, resources, "2013-03", "2013-03")
        assert result.success
        after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in parts.iterdir()}

        assert set(after) == set(before)
        changed = sorted(name for name in after if after[name] != before[name])
        assert changed == ["2013-03.parquet"]
        assert len(pd.read_parquet(parts / "2013-03.parquet")) == 3
        # The drop from ~100 rows to 3 is flagged against February, as a warning only.
        warn = _checks(result)["interactions_row_count_vs_previous_month"]
        assert not warn.passed and warn.severity == AssetCheckSeverity.WARN
        assert "2013-03: 3 rows vs" in warn.description

        # Running the same month again on the same input gives byte-identical output.
        first_bytes = (parts / "2013-03.parquet").read_bytes()
        assert _run(instance, resources, "2013-03", "2013-03").success
        assert (parts / "2013-03.parquet").read_bytes() == first_bytes


def _append(line: dict[str, Any] | str) -> Any:
    text = line if isinstance(line, str) else json.dumps(line)
    return lambda lines: [*lines, text]


def _replace_first_rating(lines: list[str]) -> list[str]:
    record = json.loads(lines[0])
    record["overall"] = 7.0
    return [json.dumps(record), *lines[1:]]


MARCH_TS = 1362700800  # 2013-03-08


@pytest.mark.parametrize(
    ("edit", "failing_check", "message"),
    [
        (_append("{this is not json"), "interactions_quarantine_rate", "invalid_record x1"),
        (
            _replace_first_rating,
            "interactions_rating_in_range",
            f"1 of {ROWS:,} rows violate: rating in [1, 5]",
        ),
        (
            _append({"reviewerID": "AX", "overall": 4.0, "unixReviewTime": MARCH_TS}),
            "interactions_quarantine_rate",
            "missing field: asin",
        ),
        (
            _append({"reviewerID": "AX", "asin": "B999999999", "overall": 4.0, "unixReviewTime": MARCH_TS}),
            "interactions_item_in_items",
            f"1 of {ROWS + 1:,} rows have a item_id that is not in items",
        ),
        (
            _append({"reviewerID": "AX", "asin": "B000000001", "overall": 4.0, "unixReviewTime": 1924992000}),
            "interactions_ts_in_month",
            "ts 2031-01-01T00:00:00Z outside the partitioned months 2012-08..2014-07",
        ),
    ],
    ids=["garbage-line", "rating-7", "missing-asin", "unknown-item", "ts-outside-months"],
)
def test_corrupted_reviews_fail_the_right_check(
    tmp_path: Path, tiny_raw: Path, edit: Any, failing_check: str, message: str
) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    _rewrite_reviews(tiny_raw, raw, edit)
    with DagsterInstance.ephemeral() as instance:
        result = _run(
            instance, _resources(tmp_path, raw, max_quarantine_rate=0.0), MONTHS[0], MONTHS[-1], True
        )

    assert not result.success
    checks = _checks(result)
    failed = sorted(
        name for name, e in checks.items() if not e.passed and e.severity == AssetCheckSeverity.ERROR
    )
    assert failing_check in failed
    assert message in checks[failing_check].description
    assert "offending_rows" in checks[failing_check].metadata
    # Nothing downstream of the rejected asset ran.
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "interaction_counts" not in materialized
    assert not (tmp_path / "artifacts" / "interaction_counts.parquet").exists()
    # The good rows and the quarantine are on storage, intact.
    artifacts = tmp_path / "artifacts"
    stored = pd.concat(pd.read_parquet(p) for p in (artifacts / "interactions").glob("*.parquet"))
    quarantined = pd.concat(
        pd.read_parquet(p) for p in (artifacts / "quarantine" / "interactions").glob("*.parquet")
    ).drop_duplicates("line")
    quarantined = quarantined[quarantined["code"] != "duplicate"]
    assert len(stored) + len(quarantined) == ROWS + (failing_check != "interactions_rating_in_range")


def test_corrupted_metadata_stops_interactions(tmp_path: Path, tiny_raw: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw, raw)
    with gzip.open(tiny_raw / METADATA_FILE, "rt") as fh:
        lines = fh.read().splitlines()
    lines.insert(5, "{'title': 'no asin', 'price': 1.0}")
    with gzip.open(raw / METADATA_FILE, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    with DagsterInstance.ephemeral() as instance:
        result = _run(
            instance, _resources(tmp_path, raw, max_quarantine_rate=0.0), MONTHS[0], MONTHS[-1], True
        )
    assert not result.success
    check = _checks(result)["items_quarantine_rate"]
    assert not check.passed
    assert f"{raw / METADATA_FILE} line 6: missing field: asin" in check.description
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert materialized == {"items", "items_quarantine"}
    quarantine = pd.read_parquet(tmp_path / "artifacts" / "quarantine" / "items.parquet")
    invalid = quarantine[quarantine["code"] != "repeated_item"]
    assert invalid[["line", "code"]].values.tolist() == [[6, "missing_field"]]
    assert len(pd.read_parquet(tmp_path / "artifacts" / "items.parquet")) == TINY["n_items"]
