"""The layers hold: the ML core (every module, walked recursively) imports without Dagster and
imports nothing above it; job modules need only ``dagster_pipes``; the API loads no training
code; ``resources`` is generic; and no import cycle exists anywhere."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from recsys_assets_tests.conftest import write_gz

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("recsys_assets", "resources", "serving")

BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys

    class Blocked(importlib.abc.MetaPathFinder):
        def __init__(self, prefixes, allowed=()):
            self.prefixes, self.allowed = prefixes, allowed

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.prefixes and name not in self.allowed:
                raise ImportError(f"{name} is blocked in this test")
            return None
    """
)


def _run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_core_runs_without_dagster(tmp_path: Path) -> None:
    meta = write_gz(tmp_path / "meta.json.gz", ["{'asin': 'A1', 'title': 'T'}"])
    script = BLOCK + textwrap.dedent(
        f"""
        sys.meta_path.insert(0, Blocked({{"dagster", "dagster_pipes", "dagster_gcp"}}))
        import importlib, pkgutil
        import recsys_assets.core as core, recsys_assets.settings as settings
        names = [m.name for package in (core, settings)
                 for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
                 if not m.name.endswith(".__main__")]  # a script, not a module
        for name in names:
            importlib.import_module(name)
        from pathlib import Path
        from recsys_assets.core.catalogue.staging import stage_items
        staged = stage_items({str(meta)!r}, "2014", Path({str(tmp_path / "out")!r}), workers=1)
        assert staged.load_items()["item_id"].tolist() == ["A1"]
        print(" ".join(sorted(names)), flush=True)
        # Done: skip interpreter teardown, where the C++ runtimes imported above (torch,
        # onnxruntime, Arrow's thread pools) occasionally abort on a loaded machine.
        import os
        os._exit(0)
        """
    )
    names = set(_run(script).split())
    # Every domain, and the deepest modules too.
    deepest = ("catalogue.staging", "embeddings.fusion", "graphs.knn", "models.gat.train",
               "models.gat.sampling", "serving.bundle", "monitoring.day", "warehouse.tables", "io.codecs",
               "ann")  # fmt: skip
    for name in deepest:
        assert f"recsys_assets.core.{name}" in names
    assert len(names) > 45


def test_job_modules_need_only_dagster_pipes() -> None:
    """What a Vertex AI container imports: the job modules, with ``dagster_pipes`` allowed."""
    script = BLOCK + textwrap.dedent(
        """
        sys.meta_path.insert(0, Blocked({"dagster", "dagster_gcp"}))
        import importlib, pkgutil
        import recsys_assets.pipes as jobs
        names = sorted(m.name for m in pkgutil.iter_modules(jobs.__path__))
        for name in names:
            importlib.import_module(f"recsys_assets.pipes.{name}")
        print(" ".join(names))
        """
    )
    assert _run(script).split() == [
        "cold_start", "contracts", "evaluate", "fused_embeddings", "gat_ablation", "image_embeddings",
        "pipes_io", "ranker_ablation", "search", "text_embeddings", "train_model",
    ]  # fmt: skip


def test_the_api_loads_no_dagster_and_no_training_code() -> None:
    script = BLOCK + textwrap.dedent(
        """
        blocked = {"dagster", "dagster_pipes", "dagster_gcp", "torch", "torch_geometric"}
        sys.meta_path.insert(0, Blocked(blocked))
        import serving.app
        from recsys_assets.settings import Settings
        environ = {"RECSYS_SERVING_MANIFEST": "missing.json", "RECSYS_LOG_SINK": "none"}
        serving.app.create_app(Settings.from_env(environ))
        print(" ".join(sorted(m for m in sys.modules if m.startswith("recsys_assets"))))
        """
    )
    loaded = _run(script).split()
    assert "recsys_assets.core.serving.bundle" in loaded
    for layer in ("recsys_assets.core.models.", "recsys_assets.core.embeddings.", "recsys_assets.pipes",
                  "recsys_assets.defs.assets", "recsys_assets.core.serving.export"):  # fmt: skip
        assert not [m for m in loaded if m.startswith(layer)], layer


def _imports() -> dict[str, set[str]]:
    """Module -> the project modules it imports (function-local imports too)."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for imported in targets:
                target = imported
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    edges[name].add(target)
    return edges


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph``, or [] (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_import_cycle_between_modules_or_packages() -> None:
    edges = _imports()
    assert _cycle(edges) == []
    packages: dict[str, set[str]] = {}
    for source, targets in edges.items():
        for target in targets:
            if source.split(".")[0] != target.split(".")[0]:
                packages.setdefault(source.split(".")[0], set()).add(target.split(".")[0])
    assert _cycle(packages) == []
    assert "recsys_assets" not in packages.get("resources", set())  # resources is generic


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("recsys_assets.core", ("recsys_assets.defs", "recsys_assets.pipes", "recsys_assets.definitions",
                                "recsys_assets.devdata", "resources", "serving")),
        ("recsys_assets.settings", ("recsys_assets.core", "recsys_assets.defs.assets", "recsys_assets.pipes",
                                    "resources", "serving")),
        ("recsys_assets.pipes", ("recsys_assets.defs.assets", "recsys_assets.defs.environments", "resources",
                                "serving")),
        ("serving", ("recsys_assets.defs.assets", "recsys_assets.pipes", "recsys_assets.core.models",
                     "recsys_assets.core.embeddings", "resources")),
    ],
)  # fmt: skip
def test_each_layer_imports_only_what_lies_below_it(layer: str, forbidden: tuple[str, ...]) -> None:
    bad = {
        (source, target)
        for source, targets in _imports().items()
        if source == layer or source.startswith(layer + ".")
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    }
    assert bad == set()


def test_development_tooling_stays_apart() -> None:
    """Nothing outside ``recsys_assets.devtools`` imports it or Playwright (a dev-only dependency),
    and the built package leaves it out."""
    tooling = "recsys_assets.devtools"
    leaks = {
        (source, target)
        for source, targets in _imports().items()
        if not (source == tooling or source.startswith(tooling + "."))
        for target in targets
        if target == tooling or target.startswith(tooling + ".")
    }
    assert leaks == set()
    playwright = sorted(
        str(path.relative_to(ROOT))
        for package in ("recsys_assets", "resources", "serving")
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"^\s*(from|import) playwright", path.read_text(), flags=re.M)
    )
    assert playwright and all(p.startswith("recsys_assets/devtools/") for p in playwright), playwright
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["exclude"] == [f"{tooling}*"]
