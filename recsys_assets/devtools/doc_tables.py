"""The docs' tables that mirror code, generated from it: the assets (from the definitions and the
artifact catalogue), the models (the registry), the drift metrics and the settings (the settings
tree). Each sits in its page between ``<!-- <name>:begin -->`` and ``<!-- <name>:end -->``.

    python -m recsys_assets.devtools.doc_tables           # fails, naming the stale tables
    python -m recsys_assets.devtools.doc_tables --write   # regenerates them

``recsys_assets_tests/project/test_docs.py`` fails while a table and its code differ.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from recsys_assets.core.io.artifacts import CATALOGUE
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models import registry
from recsys_assets.settings import PROJECT_ROOT, readme_table
from recsys_assets.settings.monitoring import METRICS

DOCS = PROJECT_ROOT / "docs"


def assets_table() -> str:
    """Every asset: its group, what it does (its description), the files it writes and the
    checks on it."""
    from recsys_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    checks: dict[str, list[str]] = {}
    for check in graph.asset_check_keys:
        checks.setdefault(check.asset_key.to_user_string(), []).append(check.name)
    rows = []
    order = _order(graph)
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: order[k.to_user_string()]):
        node = graph.get(key)
        if not node.is_materializable:
            continue
        name = key.to_user_string()
        files = [
            a.path.replace("{model}", name.removesuffix("_model")) if a.writer == "{model}_model" else a.path
            for a in CATALOGUE
            if _writes(a.writer, name)
        ]
        described = (node.description or "").split("\n")[0]
        on = ", ".join(f"`{c}`" for c in sorted(checks.get(name, []))) or "-"
        rows.append(
            [f"`{name}`", node.group_name or "", described, ", ".join(f"`{f}`" for f in files) or "-", on]
        )
    return markdown_table(["asset", "group", "what it does", "files", "checks"], rows)


#: Assets in the order the graph runs: by group, then as each group's module lists them.
_GROUPS = ("catalogue", "embeddings", "graphs", "models", "serving", "monitoring")


def _order(graph: Any) -> dict[str, int]:
    keys = [k.to_user_string() for k in graph.toposorted_asset_keys]
    groups = {k.to_user_string(): graph.get(k).group_name or "" for k in graph.toposorted_asset_keys}
    return {
        k: _GROUPS.index(groups[k]) * 1000 + i if groups[k] in _GROUPS else 10**6 for i, k in enumerate(keys)
    }


def _writes(writer: str, asset: str) -> bool:
    return writer == asset or (writer == "{model}_model" and asset.endswith("_model"))


def models_table() -> str:
    """Every registered model and what its entry declares."""

    def reads(s: registry.ModelSpec) -> str:
        return ", ".join(
            w for w, on in (("content", s.content), ("GPU", s.gpu), ("encoder", s.encoder)) if on
        )

    rows = [
        [f"`{s.name}`", s.kind, s.description, f"`models.{s.settings}`" if s.settings else "-",
         "epochs" if s.epochs else "closed form", "yes" if s.tunable else "no", reads(s) or "-",
         str(registry.SERVING_COST.index(s.name) + 1)]
        for s in registry.MODELS
    ]  # fmt: skip
    return markdown_table(
        ["model", "kind", "what it is", "settings", "trained by", "searchable", "reads", "serving cost"], rows
    )


def metrics_table() -> str:
    """Every drift metric: what it measures, when it breaches, the least sample it is read on."""
    rows = [
        [f"`{m.name}`", m.description, f"{'>' if m.direction == 'max' else '<'} {m.threshold:g}",
         f"{m.min_sample:,} {m.sample.replace('_', ' ')}"]
        for m in METRICS.values()
    ]  # fmt: skip
    return markdown_table(["metric", "what it measures", "breach when", "read on at least"], rows)


#: Table name -> (the page it sits in, its generator).
TABLES: dict[str, tuple[str, Callable[[], str]]] = {
    "assets": ("assets.md", assets_table),
    "models": ("models.md", models_table),
    "drift-metrics": ("monitoring.md", metrics_table),
    "settings": ("settings.md", readme_table),
}


def block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:begin -->\n)(.*?)(\n<!-- {name}:end -->)", flags=re.S)


def current(name: str) -> str:
    """The table as its page holds it now."""
    page, _ = TABLES[name]
    found = block(name).search((DOCS / page).read_text())
    if found is None:
        raise ValueError(f"docs/{page} has no <!-- {name}:begin --> ... <!-- {name}:end --> block")
    return found.group(2).strip()


def write(name: str) -> None:
    page, generate = TABLES[name]
    path = DOCS / page
    current(name)  # the block must exist
    path.write_text(block(name).sub(lambda m: m.group(1) + generate().strip() + m.group(3), path.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="regenerate the tables in docs/")
    args = parser.parse_args(argv)
    stale = [name for name, (_, generate) in TABLES.items() if current(name) != generate().strip()]
    if args.write:
        for name in stale:
            write(name)
        print(f"regenerated: {', '.join(stale) or 'none'}")
        return 0
    for name in stale:
        print(f"docs/{TABLES[name][0]}: the {name} table is stale", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
