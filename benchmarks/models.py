"""The models through the real asset graph: every registered model, evaluated by eval_report.

    python -m benchmarks.models synthetic   # the local default (synthetic small preset)
    python -m benchmarks.models movielens   # MovieLens-100k converted to the 2014 dumps

Each run materializes ``all_assets``, then the ``cold_start`` job (and with ``--ablation`` the
``gat_ablation`` job) with ``python -m recsys_assets.defs.materialize`` into ``data/bench/<name>/``
(git-ignored), reads ``eval/eval.json``, ``eval/cold_start.json`` and ``eval/ablation.json``,
evaluates the same models once more with the test protocol before 0.2.0 (the history read at
test time stopping before the validation interactions) and writes its section of RESULTS.md.
``make bench-models`` trains every model with a random initialisation with 3 seeds.
Targets: the served model is the validation-best or the cheapest to serve among the models it
does not beat significantly; on the synthetic default the GAT (fused,
BPR) beats LightGCN, MF-BPR and popularity on test NDCG@20 and fused beats text-only; on
MovieLens-100k (item text = title + genres + year) the promoted model's test NDCG@20 matches
the same model fitted directly within 0.002; on cold items the GAT reaches 1.2x the
content-only peer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.movielens import RECBOLE, fetch_ml100k
from benchmarks.results import machine, now, verdict, write_section
from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models.report import across_seeds, with_ci
from recsys_assets.core.serving.export import fallback_model

ROOT = Path(__file__).resolve().parent.parent


def materialize(
    workdir: Path, env: dict[str, str], jobs: tuple[str, ...], fresh: bool = True, select: str = ""
) -> dict[str, float]:
    """Run ``jobs`` one after the other in a fresh instance (``fresh``: in ``workdir``'s own, over
    its artifacts; ``select``: only those assets); seconds of each."""
    home = workdir / "dagster_home"
    if fresh:
        shutil.rmtree(workdir, ignore_errors=True)
        home.mkdir(parents=True)
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    full_env = {
        **os.environ,
        **env,
        "DAGSTER_HOME": str(home),
        "RECSYS_ARTIFACTS_ROOT": str(workdir / "artifacts"),
    }
    seconds = {}
    for job in jobs:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "recsys_assets.defs.materialize",
                "--job",
                job,
                *(["--select", select] if select else []),
            ],
            env=full_env,
            cwd=ROOT,
            check=True,
        )
        seconds[job] = time.perf_counter() - start
    return seconds


def model_rows(report: dict[str, Any]) -> list[list[Any]]:
    from recsys_assets.core.models.report import versus

    rows = []
    for name, model in report["models"].items():
        test, train = model["test"], model["train"]
        rows.append(
            [
                f"**{name}** (served)" if name == report["candidate"] else name,
                with_ci(model["val"]),
                with_ci(test),
                versus(model.get("vs_served", {}).get("test", {}).get("ndcg@20")),
                across_seeds(model) or "one seed",
                f"{test['recall@20']:.4f}",
                f"{test['ndcg@10']:.4f}",
                f"{test['coverage@20']:.3f}",
                f"{test['slices']['cold_start'].get('ndcg@20', float('nan')):.4f}",
                train.get("best_epoch") or "-",
                f"{train['train_seconds']:.1f}",
                f"{train['seconds_per_epoch']:.2f}" if train.get("seconds_per_epoch") else "-",
            ]
        )
    return rows


MODEL_HEADER = [
    "model", "val NDCG@20 (95% CI)", "test NDCG@20 (95% CI)", "test vs served (95% CI)",
    "test NDCG@20 across seeds", "test Recall@20", "test NDCG@10", "coverage@20", "cold-start NDCG@20",
    "best epoch", "train s", "s/epoch",
]  # fmt: skip


def evaluate_in_process(root: Path, output: str, **evaluation: Any) -> dict[str, Any]:
    """``eval_report``'s job run here on the artifacts under ``root`` with ``evaluation``
    settings changed, its report written to ``eval/<output>`` (the asset's own file untouched)."""
    import logging
    from types import SimpleNamespace

    from recsys_assets.core.io.artifacts import Artifacts
    from recsys_assets.defs.assets.models import evaluate_params
    from recsys_assets.pipes import evaluate
    from recsys_assets.settings import load_settings

    tree = load_settings().with_changes(
        {"artifacts": {"root": str(root)}, "models": {"evaluation": evaluation}}
    )
    params = evaluate_params(Artifacts(str(root)), tree).model_copy(
        update={"output_uri": str(root / "eval" / output), "table_uri": str(root / "eval" / f"{output}.md")}
    )
    evaluate.run(params, SimpleNamespace(log=logging.getLogger("bench"), run_id="bench"))  # type: ignore[arg-type]
    return dict(json.loads((root / "eval" / output).read_text()))


def protocol_lines(report: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """Test NDCG@20 of every model when the test history holds the validation interactions (as
    now) and when it stops before them (as before 0.2.0), beside validation."""
    rows = [
        [name, f"{m['val']['ndcg@20']:.4f}", with_ci(m["test"]), with_ci(before["models"][name]["test"]),
         f"{m['test']['ndcg@20'] / max(m['val']['ndcg@20'], 1e-12):.2f}",
         f"{before['models'][name]['test']['ndcg@20'] / max(m['val']['ndcg@20'], 1e-12):.2f}"]
        for name, m in report["models"].items()
        if m["kind"] != "ranker"  # its test scores are made by its fit, with the train+val history
    ]  # fmt: skip
    return [
        "Both test protocols (same models, same split): the history read at test time with the "
        "validation interactions (the default since 0.2.0) and without them (before):",
        "",
        markdown_table(
            [
                "model",
                "val NDCG@20",
                "test, train+val history",
                "test, train history",
                "test/val now",
                "test/val before",
            ],
            rows,
        ),
    ]


def flipped(comparison: dict[str, Any]) -> dict[str, Any]:
    """A comparison of a against b as one of b against a: the relative difference and its interval
    inverted (b / a - 1 = 1 / (1 + r) - 1, monotone, so the bounds swap), the difference negated."""
    r, ci, d, dci = (comparison[k] for k in ("relative", "relative_ci", "difference", "difference_ci"))
    return {
        **comparison,
        "relative": 1 / (1 + r) - 1,
        "relative_ci": [1 / (1 + ci[1]) - 1, 1 / (1 + ci[0]) - 1] if ci else None,
        "difference": -d,
        "difference_ci": [-dci[1], -dci[0]] if dci else None,
    }


def comparison_lines(report: dict[str, Any], a: str, b: str) -> list[str]:
    """``a`` against ``b`` on validation and test, from the report's pairwise comparisons."""
    from recsys_assets.core.models.uncertainty import describe

    pairs = report.get("pairwise_ndcg@20", {})
    lines = []
    for split, label in (("val", "validation"), ("test", "test")):
        found = pairs.get(split, {})
        comparison = found.get(f"{a} vs {b}") or (
            flipped(found[f"{b} vs {a}"]) if f"{b} vs {a}" in found else None
        )
        if comparison is None:
            continue
        words = describe(a, b, comparison, f"{label} NDCG@20", report["uncertainty"]["confidence"])
        lines.append(f"- {words} (Holm across all {len(found)} pairs)")
    return lines


ABLATION_HEADER = [
    "variant", "features", "val NDCG@20", "test NDCG@20", "test Recall@20", "best epoch", "readout chosen",
    "train s",
]  # fmt: skip


def ablation_rows(ablation: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            v["variant"],
            v["features"],
            f"{v['val_ndcg@20']:.4f}",
            f"{v['test_ndcg@20']:.4f}",
            f"{v['test_recall@20']:.4f}",
            v["best_epoch"],
            f"{v.get('recency_readout', 0.0):g}",
            f"{v['train_seconds']:.1f}",
        ]
        for v in ablation["variants"]
    ]


#: The asset graph's numbers must match the benchmark's, fitted directly, within this.
MATCH = 0.002


def direct_test(model: str) -> float:
    """``model``'s test NDCG@20 on MovieLens-100k fitted outside the asset graph (default settings,
    its use of order chosen on validation), as the asset graph's eval.json should report it."""
    from benchmarks.movielens import gat_inputs, ml100k
    from recsys_assets.core.models import registry, training
    from recsys_assets.core.models.evaluation import evaluate
    from recsys_assets.settings.models import ModelSettings

    split, items, maps, data = ml100k()
    settings = ModelSettings()
    spec = registry.spec(model)
    content = gat_inputs(split, items, maps, data) if spec.content else None
    fitting = training.Fitting(order=settings.order, content=content)
    trained = training.train(model, data, spec.config(settings), fitting)
    return float(evaluate(trained.model.scoring(data.n_items, trained.order), data)["test"]["ndcg@20"])


def cached_direct_test(model: str, report: dict[str, Any], cache: Path) -> float:
    """``direct_test(model)``, reused while the served model is the same training run (a rerun of
    other jobs does not retrain it, and the direct fit takes minutes)."""
    key = f"{model}:{report['models'][model].get('run_id')}"
    cached = json.loads(cache.read_text()) if cache.is_file() else {}
    if key not in cached:
        cached = {key: direct_test(model)}
        cache.write_text(json.dumps(cached))
    return float(cached[key])


#: The GAT's cold-item NDCG@20 must reach this multiple of the best content-only peer's.
COLD_TARGET = 1.2


def cold_start_lines(cold: dict[str, Any]) -> list[str]:
    """The ``cold_start`` job's table and its targets."""
    from recsys_assets.core.models.uncertainty import describe

    rows = {r["model"]: r for r in cold["models"]}
    test = {m: r["test"]["ndcg@20"] for m, r in rows.items()}
    content = {m: v for m, v in test.items() if m.startswith("content")}
    # The content peer that a user would pick is the one better on cold validation.
    peer = max(content, key=lambda m: rows[m]["val"]["ndcg@20"])
    gat = next(m for m in test if m.startswith("gat"))
    protocol = {k: v for k, v in cold["protocol"].items() if k != "fused"}
    lines = [
        "Item cold start (`cold_start` job, `eval/cold_start.json`): "
        + ", ".join(f"{k} {v}" for k, v in protocol.items())
        + (
            f". Content (fused) and the GAT's fused input: {cold['protocol']['fused']}"
            if "fused" in cold["protocol"]
            else ""
        ),
        "",
        markdown_table(
            [
                "model",
                "order",
                "cold val NDCG@20 (95% CI)",
                "cold test NDCG@20 (95% CI)",
                "held-out share of the top 20",
            ],
            [
                [
                    m,
                    r["settings"],
                    with_ci(r["val"]),
                    with_ci(r["test"]),
                    f"{r['test']['held_out_share_of_top']:.3f}",
                ]
                for m, r in rows.items()
            ],
        ),
        "",
        "Paired over the users with a cold test target (bootstrap interval, paired t-test, Holm across "
        "these):",
        "",
        *(
            f"- {describe(a, b, c, 'cold test NDCG@20', 0.95)}"
            for (a, b), c in (
                (key.split(" vs ", 1), c)
                for key, c in cold.get("comparisons_ndcg@20", {}).get("test", {}).items()
            )
        ),
        "",
        f"Target, the GAT at least {COLD_TARGET}x the content-only peer ({peer}, chosen on cold validation): "
        f"{verdict(test[gat] >= COLD_TARGET * test[peer])} ({test[gat]:.4f} = "
        f"{test[gat] / max(test[peer], 1e-12):.2f}x {test[peer]:.4f}); popularity {test['popularity']:.4f}.",
    ]
    if "ranker" in test:
        lines.append(
            f"Target, the two-stage ranker at least {COLD_TARGET}x the content-only peer: "
            f"{verdict(test['ranker'] >= COLD_TARGET * test[peer])} ({test['ranker']:.4f} = "
            f"{test['ranker'] / max(test[peer], 1e-12):.2f}x {test[peer]:.4f})."
        )
    return lines


#: Issue 30's targets: the ranker against the best single model of the same run.
RANKER_TARGET = {"movielens": 1.08, "synthetic": 1.10}


def ranker_lines(report: dict[str, Any], name: str) -> list[str]:
    """The two-stage ranker against the best single model and the blend, its head and tail, its
    candidates' recall and its cost."""
    models = report["models"]
    if "ranker" not in models:
        return []
    test = {m: r["test"]["ndcg@20"] for m, r in models.items()}
    singles = [m for m, r in models.items() if r["kind"] != "ranker"]
    best = max(singles, key=lambda m: test[m])
    val_best = max(singles, key=lambda m: models[m]["val"]["ndcg@20"])
    ranker, target = test["ranker"], RANKER_TARGET[name]
    part = {m: {s: models[m]["test"]["slices"][s].get("ndcg@20", 0.0) for s in ("head", "tail")}
            for m in ("ranker", "ease", "gat")}  # fmt: skip
    head_ok = part["ranker"]["head"] >= part["ease"]["head"]
    tail_ok = part["ranker"]["tail"] >= part["gat"]["tail"]
    meta = json.loads(Path(models["ranker"]["files"]["meta_uri"]).read_text())
    recall = {r["source"]: r["recall"] for r in meta["recall"]}
    lines = [
        "The two-stage ranker (`ranker_model`: candidates from every model and content, LightGBM "
        "LambdaRank learnt from validation, settings by K-fold over users) against the best single "
        "model and the blend of the two best (`blend_model`):",
        "",
        *comparison_lines(report, "ranker", best),
        *([] if val_best == best else comparison_lines(report, "ranker", val_best)),
        *comparison_lines(report, "ranker", "blend"),
        "",
        f"Target, at least {target}x the best single model ({best}, test {test[best]:.4f}): "
        f"{verdict(ranker >= target * test[best])} ({ranker:.4f} = {ranker / max(test[best], 1e-12):.3f}x); "
        f"above the blend ({test['blend']:.4f}, {models['blend']['order_settings_chosen']}): "
        f"{verdict(ranker > test['blend'])}.",
        f"Head NDCG@20: ranker {part['ranker']['head']:.4f}, EASE {part['ease']['head']:.4f} (no worse: "
        f"{verdict(head_ok)}); tail: ranker {part['ranker']['tail']:.4f}, the GAT {part['gat']['tail']:.4f} "
        f"(no worse: {verdict(tail_ok)}).",
        f"Candidates: {meta['config']['per_source']} per source; validation recall of the union "
        f"{recall['union']:.4f} (the ranker's ceiling), best single source "
        f"{max(v for k, v in recall.items() if k != 'union'):.4f}. Time on this machine: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in meta["seconds"].items())
        + f" (blend {models['blend']['train']['train_seconds']:.1f} s).",
        "",
    ]
    return lines


#: Issue 30: without the GAT's candidates and score the ranker loses at least this much, significantly.
GNN_LOSS = 0.02


def ranker_ablation_lines(ablation: dict[str, Any]) -> list[str]:
    """The ``ranker_ablation`` asset's table and whether removing the GNN costs anything."""
    from recsys_assets.core.models.ranker.ablation import ablation_table

    lines = [
        "Ranker ablation (`ranker_ablation` asset in the `ablation` job; each variant refit and compared "
        "with the full ranker, paired over users, Holm across the variants):",
        "",
        ablation_table(ablation["variants"], ablation["comparisons_ndcg@20"]),
        "",
    ]
    gnn = ablation["comparisons_ndcg@20"]["test"].get("without the GAT")
    if gnn is not None:
        costs = gnn["relative"] <= -GNN_LOSS and gnn["significant"]
        lines.append(
            f"Target, without the GAT's candidates and score the ranker loses at least {GNN_LOSS:.0%}, "
            f"significant: {verdict(costs)} ({gnn['relative']:+.1%}, p_holm {gnn['p_holm']:.3f})."
        )
    return [*lines, ""]


def beats_baselines(ndcg: float, test: dict[str, float]) -> bool:
    return all(ndcg > test[m] for m in ("lightgcn", "mf", "popularity"))


def run(
    name: str, report_only: bool, jobs: tuple[str, ...], rerun: tuple[str, ...] = (), select: str = ""
) -> None:
    workdir = ROOT / "data" / "bench" / name
    env: dict[str, str] = {}
    if name == "movielens":
        from recsys_assets.devdata.movielens import read_ratings, write_amazon_2014

        env = write_amazon_2014(read_ratings(fetch_ml100k()), workdir.parent / "ml-100k-raw")
        env["RECSYS_GAT_FEATURES"] = "txt"  # no images: the item text is title + genres + year
    timings = workdir.parent / f"{name}-seconds.json"  # beside the run's folder, which a run replaces
    if report_only or rerun:
        seconds = json.loads(timings.read_text()) if timings.is_file() else {}
        if rerun:
            seconds |= {
                f"{job} ({select})" if select else job: s
                for job, s in materialize(workdir, env, rerun, fresh=False, select=select).items()
            }
            timings.write_text(json.dumps(seconds))
    else:
        seconds = materialize(workdir, env, jobs)
        timings.write_text(json.dumps(seconds))
    artifacts = workdir / "artifacts"
    report = json.loads((artifacts / "eval" / "eval.json").read_text())
    ablation_file = artifacts / "eval" / "ablation.json"
    ablation = json.loads(ablation_file.read_text()) if ablation_file.is_file() else {"variants": []}
    test = {m: r["test"]["ndcg@20"] for m, r in report["models"].items()}
    variants = {v["variant"]: v for v in ablation["variants"]}
    lines = [
        f"## Models through the asset graph: {name}",
        "",
        f"- command: `make bench-models` (`python -m benchmarks.models {name}`)",
        f"- date: {now()}",
        f"- machine: {machine()}",
        f"- data: {report['data']}",
        "- wall time: "
        + (", ".join(f"{job} {s:.0f} s" for job, s in seconds.items()) or "not measured (report only)"),
        "",
        markdown_table(MODEL_HEADER, model_rows(report)),
        "",
        "Ablation (`gat_ablation` job; one change at a time from the model asset's configuration):",
        "",
        markdown_table(
            ABLATION_HEADER,
            ablation_rows(ablation),
        ),
        "",
    ]
    gat = test["gat"]
    decision = report["decision"]
    lines += [
        f"Served: {report['candidate_reason']}. Target, the served model is the validation-best "
        f"({decision['validation_best']}) or the model cheapest to serve among those it does not beat "
        f"significantly ({', '.join(decision['tied_with_best'])}): "
        f"{verdict(report['candidate'] == decision['tied_with_best'][0])}.",
        "",
        "The GAT and SASRec, the order-aware peer, against EASE with order and each other, paired over "
        "users (bootstrap interval, paired t-test):",
        "",
        *comparison_lines(report, "gat", "ease"),
        *comparison_lines(report, "sasrec", "ease"),
        *comparison_lines(report, "sasrec", "gat"),
        "",
        *ranker_lines(report, name),
        *(
            ranker_ablation_lines(json.loads((artifacts / "eval" / "ranker_ablation.json").read_text()))
            if (artifacts / "eval" / "ranker_ablation.json").is_file()
            else []
        ),
        *protocol_lines(
            report, evaluate_in_process(artifacts, "eval_train_history.json", test_history="train")
        ),
        "",
    ]
    if name == "synthetic":
        baselines = f"{test['lightgcn']:.4f}, {test['mf']:.4f}, {test['popularity']:.4f}"
        lines.append(
            "Target, the GAT (fused) beats LightGCN, MF-BPR and popularity on test NDCG@20: "
            "with BPR (the ablation's `loss=bpr`, the reference configuration) "
            + (
                f"{verdict(beats_baselines(variants['loss=bpr']['test_ndcg@20'], test))} "
                f"({variants['loss=bpr']['test_ndcg@20']:.4f} vs {baselines}); "
                if "loss=bpr" in variants
                else "not run; "
            )
            + f"the `gat_model` asset (default loss, {report['models']['gat']['config'].get('loss')}) "
            f"{verdict(beats_baselines(gat, test))} ({gat:.4f})."
        )
        if {"base", "features=txt"} <= set(variants):
            fused, txt = variants["base"]["test_ndcg@20"], variants["features=txt"]["test_ndcg@20"]
            lines.append(f"Target, fused beats text-only: {verdict(fused > txt)} ({fused:.4f} vs {txt:.4f}).")
    else:
        candidate = report["candidate"]
        # A ranker cannot be fitted alone: the check is of the retriever its version falls back on.
        checked = fallback_model(report) if report["models"][candidate]["kind"] == "ranker" else candidate
        direct = cached_direct_test(checked, report, workdir.parent / f"{name}-direct.json")
        lines += [
            f"Promoted: {report['candidate_reason']}. "
            + (f"Its fallback, {checked}: " if checked != candidate else "")
            + f"test NDCG@20 through the asset graph {test[checked]:.4f}; the same model with the same "
            f"settings fitted directly on the benchmark's split (`benchmarks/movielens.py`) {direct:.4f}: "
            f"within {MATCH}: "
            f"{verdict(abs(test[checked] - direct) <= MATCH)}. GAT {gat:.4f}. Popularity "
            f"{test['popularity']:.4f} (RecBole {RECBOLE['Pop']}). RecBole on this split: "
            + ", ".join(f"{m} {v}" for m, v in RECBOLE.items())
            + ".",
        ]
    cold_file = artifacts / "eval" / "cold_start.json"
    if cold_file.is_file():
        lines += ["", *cold_start_lines(json.loads(cold_file.read_text()))]
    write_section(f"models_{name}", lines)
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", choices=["synthetic", "movielens"])
    parser.add_argument("--report-only", action="store_true", help="re-read the last run's artifacts")
    parser.add_argument("--ablation", action="store_true", help="also the ablation job (12 GAT variants)")
    parser.add_argument(
        "--rerun", nargs="*", default=[], help="run these jobs again over the last run's artifacts"
    )
    parser.add_argument(
        "--select", default="", help="with --rerun: only these assets (comma-separated), e.g. ranker_model"
    )
    args = parser.parse_args()
    jobs = ("all_assets", "cold_start") + (("ablation",) if args.ablation else ())
    run(args.data, args.report_only, jobs, tuple(args.rerun), args.select)


if __name__ == "__main__":
    main()
