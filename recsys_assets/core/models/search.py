"""Hyper-parameter search with Optuna: TPE over each model's key settings, trials pruned on
their validation curve, every choice on validation NDCG@20 only.

A study lives in one journal file (``search/<model>/journal.log``), so a later search resumes
it, adding trials to those already run; wherever the artifacts live, the journal is copied to
a local file for the study and back after every trial. ``best.json`` holds the best trial's
settings as overrides of the model's section, which the model assets then train with.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys_assets.core.markdown import markdown_table
from recsys_assets.core.models import registry
from recsys_assets.core.models.gat.graph import Graph
from recsys_assets.core.models.metrics import validation_ndcg
from recsys_assets.core.models.ranker.inputs import RankerInputs
from recsys_assets.core.models.training_data import TrainingData
from recsys_assets.core.plots import png, pyplot
from recsys_assets.settings.models import OrderConfig, SearchConfig

if TYPE_CHECKING:
    import optuna

#: ``fit(overrides, report)`` trains with ``overrides`` of the model's settings, calls
#: ``report(epoch, val_ndcg20)`` as it goes (which raises to prune) and returns the best
#: validation NDCG@20.
Fit = Callable[[dict[str, Any], Callable[[int, float], None]], float]


def suggest(model: str, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    """The trial's settings for ``model`` (its registered search space), as overrides of its
    settings section."""
    return registry.spec(model).search_space()(trial)


def current_params(model: str, base: dict[str, Any]) -> dict[str, Any]:
    """The model's current settings (``base``, its settings section) as the search's parameters,
    those inside the search space: the first trial of a new study, so the search starts from
    what already works and pruning has a reference from its first trial. Empty for the
    closed-form models, whose settings are grids the search replaces with one value a trial; the
    ranker's are its candidates per retriever and its grid's first LightGBM setting."""
    import optuna

    spec = registry.spec(model)
    if spec.kind == "ranker":
        base = {**base, **(base.get("grid") or [{}])[0]}
    elif not spec.epochs:
        return {}
    trial = optuna.trial.FixedTrial(base)
    with warnings.catch_warnings():  # "out of the range": filtered out below
        warnings.simplefilter("ignore")
        suggest(model, trial)

    def within(name: str, value: Any) -> bool:
        d = trial.distributions[name]
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            return value in d.choices
        return bool(d.low <= value <= d.high)  # type: ignore[attr-defined]

    return {name: value for name, value in trial.params.items() if within(name, value)}


def model_fit(
    model: str,
    base: dict[str, Any],
    order: OrderConfig,
    data: TrainingData,
    content: tuple[np.ndarray, Graph] | None = None,
    trial_epochs: int = 0,
    ranker: RankerInputs | None = None,
) -> Fit:
    """``Fit`` for ``model``: train with a trial's overrides of ``base`` (the model's settings
    section), reporting each epoch's validation NDCG@20, for at most ``trial_epochs`` epochs
    (0: the section's own); closed-form models choose their use of order inside the trial."""
    from recsys_assets.core.models.training import Fitting, Trained

    spec = registry.spec(model)
    if not spec.tunable or spec.config_class is None:
        raise ValueError(f"no search for model {model!r}; tunable: {list(registry.TUNABLE)}")
    if spec.content and content is None:
        raise ValueError(f"search {model}: needs the item features and the graph")
    if spec.kind == "ranker" and ranker is None:
        raise ValueError(f"search {model}: needs the trained retrievers and the content (RankerInputs)")
    if trial_epochs and spec.epochs:
        base = {**base, "epochs": min(int(base.get("epochs", trial_epochs)), trial_epochs)}
    config = spec.config_class.model_validate(base)
    fit = spec.fit_function()

    def trial(overrides: dict[str, Any], report: Callable[[int, float], None]) -> float:
        fitting = Fitting(
            order=order,
            progress=lambda record: report(int(record["epoch"]), record["val_ndcg@20"]),
            content=content,
            ranker=ranker,
        )
        trained: Trained = fit(data, config.with_changes(overrides, f"search {model} trial"), fitting)
        scorers = trained.model.split_scorers()
        if scorers is not None:  # a ranker: its out-of-fold validation scores, fully ranked
            return validation_ndcg(scorers["val"], data.train, data.val, data.n_items)
        if trained.fit is not None:
            return trained.fit.best_val_ndcg20
        assert trained.choice is not None  # closed-form fits choose their order
        return trained.choice.best.val_ndcg20

    return trial


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_value: float
    #: One row per trial of the study (this run's and earlier ones); a pruned trial's value is
    #: its last reported one.
    trials: list[dict[str, Any]]
    new_trials: int
    seconds: float

    def table(self) -> str:
        keys = sorted({k for t in self.trials for k in t["params"]})
        return markdown_table(
            ["trial", "state", "val NDCG@20", "epochs reported", "seconds", *keys],
            [
                [t["number"], t["state"], "-" if t["value"] is None else f"{t['value']:.4f}", t["epochs"],
                 f"{t['seconds']:.1f}", *(_fmt(t["params"].get(k)) for k in keys)]
                for t in self.trials
            ],
        )  # fmt: skip


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_search(
    model: str,
    fit: Fit,
    config: SearchConfig,
    journal: Path,
    after_trial: Callable[[], None] = lambda: None,
    progress: Callable[[str], None] = lambda _: None,
    first: dict[str, Any] | None = None,
) -> SearchResult:
    """Run ``config.trials`` more trials of ``model``'s study kept in ``journal`` (created if
    missing); ``after_trial`` runs after each (to copy the journal back to the artifacts);
    ``first``: the parameters of a new study's first trial (``current_params``)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.create_study(
        study_name=model,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=config.startup_trials),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=config.prune_after, n_warmup_steps=config.warmup_epochs
        ),
    )
    before = len(study.trials)
    if first and not before:
        study.enqueue_trial(first)
    started = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        overrides = suggest(model, trial)

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: val NDCG@20 {value:.4f} below the median")

        return fit(overrides, report)

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        after_trial()
        value = "-" if trial.value is None else f"{trial.value:.4f}"
        complete = optuna.trial.TrialState.COMPLETE
        best = study.best_value if any(t.state == complete for t in study.trials) else float("nan")
        progress(
            f"trial {trial.number} ({len(study.trials) - before} of {config.trials}): {trial.state.name}, "
            f"val NDCG@20 {value}, best so far {best:.4f}; {trial.params}"
        )

    study.optimize(
        objective,
        n_trials=config.trials,
        timeout=config.timeout_s or None,
        callbacks=[callback],
        catch=(),
    )
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise RuntimeError(f"search {model}: no trial completed (all {len(study.trials)} pruned or failed)")
    best = study.best_trial
    return SearchResult(
        best_params=suggest(model, optuna.trial.FixedTrial(best.params)),
        best_value=float(best.value or 0.0),
        trials=[_row(t) for t in study.trials],
        new_trials=len(study.trials) - before,
        seconds=time.perf_counter() - started,
    )


def _row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    seconds = (
        (trial.datetime_complete - trial.datetime_start).total_seconds()
        if trial.datetime_complete and trial.datetime_start
        else 0.0
    )
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "value": trial.value,
        "params": trial.params,
        "epochs": len(trial.intermediate_values),
        "seconds": seconds,
    }


def history_plot(result: SearchResult) -> bytes:
    """Each completed trial's validation NDCG@20 and the best so far, by trial number (PNG)."""
    plt = pyplot()

    done = [t for t in result.trials if t["state"] == "complete"]
    numbers = [t["number"] for t in done]
    values = [t["value"] for t in done]
    best = [max(values[: i + 1]) for i in range(len(values))]
    figure, axis = plt.subplots(figsize=(6, 3))
    axis.scatter(numbers, values, s=14, label="trial")
    axis.step(numbers, best, where="post", color="C1", label="best so far")
    pruned = [t["number"] for t in result.trials if t["state"] == "pruned"]
    if pruned:
        axis.scatter(pruned, [min(values)] * len(pruned), marker="x", color="grey", s=14, label="pruned")
    axis.set_xlabel("trial")
    axis.set_ylabel("val NDCG@20")
    axis.set_title("optimisation history")
    axis.legend(loc="lower right", fontsize=8)
    return png(figure)
