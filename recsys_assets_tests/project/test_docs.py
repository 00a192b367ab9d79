"""The README and the docs: the README stays short, every docs page is reachable from it, no
relative link is broken, and the tables that mirror code are the code's."""

from __future__ import annotations

import re

import pytest

from recsys_assets.devtools import doc_tables
from recsys_assets.settings import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
PAGES = sorted((PROJECT_ROOT / "docs").glob("*.md"))
#: A markdown link or image: its target, without a title.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of ``text``."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_the_readme_is_short_and_reaches_every_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    linked = {target for target in LINK.findall(text)}
    missing = [p.name for p in PAGES if f"docs/{p.name}" not in linked]
    assert PAGES and not missing, f"docs pages the README does not link: {missing}"
    # The quick start is exactly the two commands.
    assert "make run " in text and "make test " in text


@pytest.mark.parametrize("page", [README, *PAGES, PROJECT_ROOT / "ARCHITECTURE.md"], ids=lambda p: p.name)
def test_no_relative_link_is_broken(page) -> None:  # type: ignore[no-untyped-def]
    text = page.read_text()
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not followed offline
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (
            anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text())
        ):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


@pytest.mark.parametrize("name", doc_tables.TABLES)
def test_tables_that_mirror_code_are_generated_from_it(name: str) -> None:
    page, generate = doc_tables.TABLES[name]
    assert doc_tables.current(name) == generate().strip(), (
        f"docs/{page}: the {name} table is stale; regenerate: "
        "python -m recsys_assets.devtools.doc_tables --write"
    )
