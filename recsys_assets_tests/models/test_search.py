"""Hyper-parameter search: TPE trials on validation, pruning on the curve, a journal that a
later search resumes, and best settings that rebuild the model's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from recsys_assets.core.models import registry
from recsys_assets.core.models.search import history_plot, run_search, suggest
from recsys_assets.settings.models import DEFAULT_NEGATIVES, MFConfig, OrderConfig, SearchConfig


@pytest.mark.parametrize("model", registry.TUNABLE)
def test_every_space_suggests_valid_overrides_of_its_section(model: str) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        overrides = suggest(model, study.ask())
        section = registry.spec(model).config_class
        assert section is not None
        config = section().with_changes(overrides)
        if model == "gat":
            # negatives 0 is "the loss's own count", whichever loss the trial drew.
            assert overrides.pop("negatives") == 0
            assert config.negatives == DEFAULT_NEGATIVES[overrides["loss"]]  # type: ignore[attr-defined]
        assert {k: getattr(config, k) for k in overrides} == {
            k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()
        }
    with pytest.raises(ValueError, match="model 'popularity' has no search space"):
        suggest("popularity", study.ask())


def _curve(overrides: dict[str, Any], report: Any) -> float:
    """A fake training: validation peaks at learning rate 0.01, reported over 10 epochs."""
    quality = 1.0 / (1.0 + abs(overrides["learning_rate"] - 0.01) * 100)
    for epoch in range(1, 11):
        report(epoch, quality * epoch / 10)
    return quality


def test_search_finds_the_peak_prunes_and_resumes_from_its_journal(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    saved: list[int] = []
    config = SearchConfig(trials=12, startup_trials=3, warmup_epochs=2)
    first = run_search(
        "mf", _curve, config, journal, after_trial=lambda: saved.append(journal.stat().st_size)
    )
    assert first.new_trials == 12 and len(first.trials) == 12 and len(saved) == 12
    assert sum(t["state"] == "pruned" for t in first.trials) >= 1
    done = [t for t in first.trials if t["state"] == "complete"]
    assert first.best_value == max(t["value"] for t in done)
    assert first.best_params["learning_rate"] == pytest.approx(
        max(done, key=lambda t: t["value"])["params"]["learning_rate"]
    )
    assert set(first.best_params) == {"learning_rate", "l2", "dim"}
    # A second search adds to the same study.
    second = run_search("mf", _curve, SearchConfig(trials=3), journal)
    assert second.new_trials == 3 and len(second.trials) == 15 and second.best_value >= first.best_value
    assert "| trial | state | val NDCG@20 |" in second.table() and "pruned" in second.table()
    assert history_plot(second).startswith(b"\x89PNG")


def test_a_search_where_nothing_completes_says_so(tmp_path: Path) -> None:
    def failing(overrides: dict[str, Any], report: Any) -> float:
        raise optuna.TrialPruned("always")

    with pytest.raises(RuntimeError, match=r"search ease: no trial completed \(all 2 pruned or failed\)"):
        run_search("ease", failing, SearchConfig(trials=2), tmp_path / "j.log")


def test_a_trial_trains_at_most_trial_epochs() -> None:
    from recsys_assets.core.models.search import model_fit
    from recsys_assets.core.models.training_data import TrainingData
    from recsys_assets_tests.models.taste import taste_groups

    train, val = taste_groups(60, 3, 15, seed=0)
    data = TrainingData(train, val, val, 45)
    # Patience above the cap: only the cap can end these trials.
    base = MFConfig(dim=4, batch_size=128, patience=50).to_dict()
    epochs: list[int] = []
    fit = model_fit("mf", base, OrderConfig(), data, trial_epochs=3)
    fit({"learning_rate": 0.01}, lambda epoch, _: epochs.append(epoch))
    assert epochs == [1, 2, 3]
    epochs.clear()
    model_fit("mf", {**base, "epochs": 2}, OrderConfig(), data, trial_epochs=3)(
        {}, lambda e, _: epochs.append(e)
    )
    assert epochs == [1, 2]  # a section's own smaller count stands


def test_a_new_study_starts_from_the_current_settings_and_prunes_from_its_second_trial(
    tmp_path: Path,
) -> None:
    from recsys_assets.core.models.search import current_params

    base = MFConfig(learning_rate=0.01, l2=1e-3, dim=32).to_dict()
    first = current_params("mf", base)
    assert first == {"learning_rate": 0.01, "l2": 1e-3, "dim": 32}
    # A setting outside the search space is left to the sampler; item-item grids start nowhere.
    assert "learning_rate" not in current_params("mf", {**base, "learning_rate": 0.5})
    assert current_params("ease", {"l2": [100.0]}) == {}
    journal = tmp_path / "journal.log"
    result = run_search("mf", _curve, SearchConfig(trials=4, startup_trials=3), journal, first=first)
    assert result.trials[0]["params"] == first and result.trials[0]["state"] == "complete"
    # The peak (learning rate 0.01) was the first trial: every random one after it falls below
    # its curve once warmed up, and is stopped there rather than trained to the end.
    assert result.best_value == pytest.approx(1.0)
    assert [t["state"] for t in result.trials[1:]] == ["pruned"] * 3
    assert [t["epochs"] for t in result.trials] == [10] + [SearchConfig().warmup_epochs] * 3
    # A resumed study is not sent back to the start.
    again = run_search("mf", _curve, SearchConfig(trials=1), journal, first=first)
    assert again.trials[-1]["params"] != first


def test_a_ranker_trial_scores_its_out_of_fold_validation_ranking() -> None:
    from recsys_assets.core.models import training
    from recsys_assets.core.models.metrics import validation_ndcg
    from recsys_assets.core.models.search import model_fit
    from recsys_assets_tests.models.ranker_data import CONFIG, taste_data, with_times_and_neighbours

    data = taste_data(0)
    inputs = with_times_and_neighbours(data)
    fit = model_fit("ranker", CONFIG.to_dict(), OrderConfig(), data, ranker=inputs)
    reported: list[float] = []
    value = fit({"per_source": 8, "grid": [dict(CONFIG.grid[0])]}, lambda _e, v: reported.append(v))
    # The same settings trained outside the search: its out-of-fold validation scores, fully ranked.
    trained = training.train("ranker", data, CONFIG, training.Fitting(ranker=inputs))
    scorers = trained.model.split_scorers()
    assert scorers is not None
    assert value == pytest.approx(validation_ndcg(scorers["val"], data.train, data.val, data.n_items))
    assert value > 0.3 and reported == []  # closed form: nothing to prune on
    fewer = fit({"per_source": 2, "grid": [dict(CONFIG.grid[0])]}, lambda _e, _v: None)
    assert fewer != value  # the trial's settings are the ones trained
    with pytest.raises(ValueError, match="search ranker: needs the trained retrievers"):
        model_fit("ranker", CONFIG.to_dict(), OrderConfig(), data)


def test_the_rankers_first_trial_is_its_current_candidates_and_first_lightgbm_setting() -> None:
    from recsys_assets.core.models.search import current_params
    from recsys_assets.settings.models import RankerConfig

    first = current_params("ranker", RankerConfig().to_dict())
    assert first == {"per_source": 50, "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 50}
    assert suggest("ranker", optuna.trial.FixedTrial(first)) == {
        "per_source": 50,
        "grid": [{"learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 50}],
    }
    assert current_params("ease", {"l2": [500.0]}) == {}
