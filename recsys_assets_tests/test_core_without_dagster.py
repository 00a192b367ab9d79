"""The ML core imports and runs in a process where Dagster cannot be imported at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from recsys_assets_tests.conftest import write_gz

BLOCK_DAGSTER = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoDagster(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "dagster" or name.startswith(("dagster.", "dagster_")):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, NoDagster())
    """
)


def test_core_runs_without_dagster(tmp_path: Path) -> None:
    meta = write_gz(tmp_path / "meta.json.gz", ["{'asin': 'A1', 'title': 'T'}"])
    script = BLOCK_DAGSTER + textwrap.dedent(
        f"""
        import pkgutil, importlib
        import recsys_assets.core as core
        names = [m.name for m in pkgutil.iter_modules(core.__path__)]
        for name in names:
            importlib.import_module(f"recsys_assets.core.{{name}}")
        import resources.settings
        # The API runs in its own container, without Dagster.
        import serving.app
        serving.app.create_app(serving.settings.ServingSettings(manifest_uri="missing.json", log_sink="none"))
        from recsys_assets.core.staging import stage_items
        staged = stage_items({str(meta)!r}, "2014", workers=1)
        assert staged.items["item_id"].tolist() == ["A1"]
        try:
            import dagster
        except ImportError:
            print("blocked", sorted(names))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("blocked")
    for module in (
        "amazon",
        "blocks",
        "quality",
        "staging",
        "synthetic",
        "text",
        "uris",
        "fusion",
        "artifacts",
        "gat",
        "gat_sampling",
        "evaluation",
        "movielens",
        "serving_index",
        "warehouse_tables",
    ):
        assert f"'{module}'" in done.stdout


def test_job_modules_need_only_dagster_pipes() -> None:
    """What a Vertex AI container imports: the job modules, with ``dagster_pipes`` allowed."""
    allow_pipes = BLOCK_DAGSTER.replace(
        'if name == "dagster" or name.startswith(("dagster.", "dagster_")):',
        'if name == "dagster" or name.startswith(("dagster.", "dagster_")) and name != "dagster_pipes":',
    )
    script = allow_pipes + textwrap.dedent(
        """
        import pkgutil, importlib
        import recsys_assets.jobs as jobs
        names = sorted(m.name for m in pkgutil.iter_modules(jobs.__path__))
        for name in names:
            importlib.import_module(f"recsys_assets.jobs.{name}")
        print(" ".join(names))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "evaluate", "fused_embeddings", "gat_ablation", "image_embeddings", "pipes_io", "text_embeddings",
        "train_model",
    ]  # fmt: skip
