"""The BigQuery tables Terraform creates match the code's table definitions: schema files,
partitioning, clustering and descriptions (parsed with python-hcl2)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hcl2

from recsys_assets.core.warehouse.tables import TABLES

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def _tables() -> dict[str, dict[str, Any]]:
    parsed = hcl2.load((TERRAFORM / "bigquery.tf").open())
    found = {}
    for block in parsed["resource"]:
        for kind, resources in block.items():
            if _unquote(kind) != "google_bigquery_table":
                continue
            for body in resources.values():
                found[_unquote(body["table_id"])] = body
    return found


def test_every_table_is_declared_as_the_code_defines_it() -> None:
    declared = _tables()
    assert sorted(declared) == sorted(TABLES)
    for name, table in TABLES.items():
        body = declared[name]
        (partitioning,) = body["time_partitioning"]
        assert _unquote(partitioning["type"]) == "DAY" and _unquote(partitioning["field"]) == table.partition
        assert _unquote(body["clustering"]) == list(table.cluster)
        assert _unquote(body["description"]) == table.description
        schema_file = re.search(r"\$\{path\.module\}/(schemas/[\w.]+\.json)", body["schema"])
        assert schema_file is not None, body["schema"]
        on_disk = json.loads((TERRAFORM / schema_file.group(1)).read_text())
        # Regenerate with `make terraform-schemas` when this fails.
        assert on_disk == table.bigquery_schema(), f"{schema_file.group(1)} differs from warehouse_tables.py"


def test_every_file_parses_and_outputs_name_the_settings() -> None:
    outputs = set()
    for path in sorted(TERRAFORM.glob("*.tf")):
        parsed = hcl2.load(path.open())
        for block in parsed.get("output", []):
            outputs |= {_unquote(k) for k in block}
    assert {"RECSYS_GCP_PROJECT", "RECSYS_GCS_BUCKET", "RECSYS_BQ_DATASET", "RECSYS_VERTEX_REGION",
            "RECSYS_VERTEX_SERVICE_ACCOUNT", "RECSYS_VERTEX_IMAGE", "api_url"} <= outputs  # fmt: skip


def test_no_primitive_roles_are_granted() -> None:
    text = "\n".join(p.read_text() for p in TERRAFORM.glob("*.tf"))
    roles = set(re.findall(r'role\s*=\s*"([^"]+)"', text))
    assert roles and not roles & {"roles/owner", "roles/editor", "roles/viewer"}


def test_checkov_finds_no_failed_check_and_every_skip_is_justified() -> None:
    import subprocess

    for skip in re.findall(r"#checkov:skip=(.*)", "\n".join(p.read_text() for p in TERRAFORM.glob("*.tf"))):
        check, _, why = skip.partition(":")
        assert re.fullmatch(r"CKV_\w+", check) and len(why.strip()) > 20, f"unjustified skip: {skip}"
    checkov = TERRAFORM.parent / ".venv-tools" / "bin" / "checkov"
    assert checkov.exists(), "checkov is installed by `make tools` (make test runs it first)"
    done = subprocess.run(
        [str(checkov), "-d", str(TERRAFORM), "--framework", "terraform", "--output", "json", "--quiet",
         "--skip-download"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and not failed, failed
    assert summary["passed"] >= 20
