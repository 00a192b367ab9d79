"""The API examples of ``docs/serving.md``, from a real run: the API is started over the local artifacts'
serving version, each example is sent, and the console block shows the commands and what came
back (``--write`` puts it in docs/serving.md between its markers).

    python -m recsys_assets.devtools.readme_examples [--write]

The ids in the examples come from the version itself (its first user, the first item it is
recommended), so they stay valid as the data changes;
``recsys_assets_tests/pipeline/test_readme_examples.py`` checks that the README's commands are
the ones this produces.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from recsys_assets.core.io.artifacts import SERVING_MANIFEST, Artifacts
from recsys_assets.core.serving.bundle import load_bundle
from recsys_assets.devtools.local_api import local_api, wait_for
from recsys_assets.settings import PROJECT_ROOT, load_settings

#: The page the examples sit in.
README = PROJECT_ROOT / "docs" / "serving.md"
BEGIN, END = "<!-- api-examples:begin -->", "<!-- api-examples:end -->"
#: How the examples address the API (``make run`` and ``make serve`` listen there).
SHOWN = "localhost:8000"


@dataclass
class Example:
    method: str
    path: str
    body: dict[str, object] | None = None

    def command(self) -> str:
        if self.body is None:
            quoted = f"'{SHOWN}{self.path}'" if "?" in self.path else f"{SHOWN}{self.path}"
            return f"curl -s {quoted}"
        return (
            f"curl -s -X POST {SHOWN}{self.path} -H 'content-type: application/json' "
            f"-d '{json.dumps(self.body)}'"
        )

    def send(self, client: httpx.Client) -> str:
        response = client.request(self.method, self.path, json=self.body)
        return response.text


def examples_block(manifest: Path) -> str:
    """The console block: every example sent to an API over ``manifest``."""
    bundle = load_bundle(str(manifest))
    user = bundle.user_ids[0]
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as scratch, local_api(manifest, f"{scratch}/warehouse.duckdb") as url:
        wait_for(url, lambda body: body.get("status") == "ready", "load the serving version")
        with httpx.Client(base_url=url, timeout=30) as client:

            def show(example: Example) -> str:
                out = example.send(client)
                lines.extend([f"$ {example.command()}", out, ""])
                return out

            first = json.loads(show(Example("POST", "/recommend", {"user_id": user, "k": 3})))
            item = first["items"][0]["item_id"]  # an item the model ranks, so it has neighbours
            show(Example("POST", "/recommend", {"user_id": "newcomer", "k": 3, "recent_items": [item]}))
            show(Example("POST", "/recommend", {"user_id": "newcomer", "k": 2}))
            show(Example("GET", f"/items/{item}/similar?k=2"))
            show(Example("GET", "/popular?k=2"))
            for who in (user, "someone-else"):  # accepted; refused: the id was issued to another user
                event = {
                    "request_id": first["request_id"],
                    "user_id": who,
                    "item_id": item,
                    "event": "click",
                }
                show(Example("POST", "/feedback", event))
            health, ready = client.get("/healthz").text, client.get("/readyz").text
            lines.extend([f"$ curl -s {SHOWN}/healthz; curl -s {SHOWN}/readyz", health, ready, ""])
            show(Example("POST", "/recommend", {"user_id": "u", "k": 500}))
            show(Example("GET", "/items/NOPE/similar"))
            counted = [
                line for line in client.get("/metrics").text.splitlines()
                if line.startswith("recsys_http_requests_total") and 'route="/recommend"' in line
            ]  # fmt: skip
            lines.extend([f"$ curl -s {SHOWN}/metrics | grep 'requests_total.*recommend'", *counted])
    return "```console\n" + "\n".join(lines) + "\n```"


def commands(block: str) -> list[str]:
    """The commands of a console block (what the examples run, whatever they answered)."""
    return [line for line in block.splitlines() if line.startswith("$ ")]


def readme_block(text: str) -> str:
    found = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, flags=re.S)
    if found is None:
        raise ValueError(f"docs/serving.md has no {BEGIN} ... {END} block")
    return found.group(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="replace the block in docs/serving.md")
    args = parser.parse_args(argv)
    manifest = Path(Artifacts(load_settings().artifacts.root).uri(SERVING_MANIFEST))
    block = examples_block(manifest)
    if args.write:
        text = README.read_text()
        README.write_text(text.replace(readme_block(text), block))
    print(block)


if __name__ == "__main__":
    main()
