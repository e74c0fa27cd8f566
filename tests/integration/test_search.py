"""Hyperparameter search: trials are runs in the store, the choice is the best on validation, the retrain uses
the suite's seeds, --resume does not redo finished trials; test-oracle is labelled and warned about."""

from __future__ import annotations

import pytest

from mfm_bench.leaderboard import write_leaderboard
from mfm_bench.results import ResultStore
from mfm_bench.runner import run_suite
from mfm_bench.suite import SuiteError, load_suite

pytest.importorskip("optuna")

SUITE = """\
name: search
datasets: [{name: synthetic-factors, params: {n_train: 48, n_valid: 24, n_test: 24, \
dims: {text: 5, audio: 3}, seq_len: 5, min_len: 2}}]
models:
  - name: supervised
    label: tuned
    params: {encoder: mean, fusion: concat}
    search:
      params: {train.lr: {low: 1.0e-4, high: 1.0e-1, log: true}, head_hidden: {low: 4, high: 16}}
      sampler: SAMPLER
      n_trials: 5
      metric: mae
      SELECTION
seeds: [3, 4]
train: {epochs: 2, batch_size: 16, threads: 1}
"""


def suite_text(sampler="random", selection=""):
    return SUITE.replace("SAMPLER", sampler).replace("SELECTION", selection)


def trials_and_finals(out):
    with ResultStore(out) as s:
        runs = s.runs()
        valid = {m["run_id"]: m["value"] for m in s.metrics() if m["split"] == "valid" and m["metric"] == "mae"}
        return runs, valid, s.searches()


def test_search_ranges_are_checked_against_the_typed_configs(write_suite):
    bad = suite_text().replace("head_hidden: {low: 4, high: 16}", "hiden: {low: 4, high: 16}")
    with pytest.raises(SuiteError, match=r"suite.yaml:8: models\[0\].search.params.hiden: .*unknown key 'hiden'"):
        load_suite(write_suite(bad))
    with pytest.raises(SuiteError, match="train.epochs.*expected an integer"):
        text = suite_text().replace("head_hidden: {low: 4, high: 16}", "train.epochs: {low: 1.5, high: 3}")
        load_suite(write_suite(text))
    with pytest.raises(SuiteError, match="sampler: must be one of random, tpe"):
        load_suite(write_suite(suite_text("grid")))
    with pytest.raises(SuiteError, match="low < high"):
        load_suite(write_suite(suite_text().replace("low: 4, high: 16", "low: 16, high: 4")))
    with pytest.raises(SuiteError, match="lr must be positive"):
        load_suite(write_suite(suite_text().replace("low: 1.0e-4, high: 1.0e-1, log: true", "low: -1.0, high: 1.0")))


def test_search_selects_on_validation_and_retrains_on_the_suite_seeds(write_suite, tmp_path):
    suite = load_suite(write_suite(suite_text("tpe")))
    out = tmp_path / "o"
    counts = run_suite(suite, out, progress=False)
    runs, valid, searches = trials_and_finals(out)
    trials = [r for r in runs if r["config"]["search"]["role"] == "trial"]
    [s] = searches
    assert s["trials"] == 5 and len(trials) == len(set(s["trial_ids"])) and {r["seed"] for r in trials} == {3}
    best = min(s["trial_ids"], key=lambda rid: valid[rid])
    assert s["chosen_value"] == valid[best] == min(valid[r["id"]] for r in trials)
    chosen = next(r for r in trials if r["id"] == best)["config"]["search"]["values"]
    assert s["chosen"] == chosen
    finals = {rid: next(r for r in runs if r["id"] == rid) for rid in s["final_ids"]}
    assert sorted(r["seed"] for r in finals.values()) == [3, 4]
    assert all(r["config"]["search"]["values"] == chosen and r["status"] == "finished" for r in finals.values())
    assert best in finals  # the seed-3 retrain is the best trial itself: one run, not two
    assert counts["finished"] == len(trials) + 1
    md = write_leaderboard(out, ["markdown"])["markdown"].read_text()
    assert "| tuned " in md and "hyperparameter search" in md and "test-oracle" not in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| tuned ") and "validation" not in ln)
    assert "|       2 |" in row  # two seeds: the retrains, not the trials
    # a merged folder carries the search record: the same rows, trials still off the tables
    from mfm_bench.merge import merge

    merge(tmp_path / "m", [out])
    merged = write_leaderboard(tmp_path / "m", ["markdown"])["markdown"].read_text()

    def rows(text):
        return [ln for ln in text.splitlines() if ln.startswith("| tuned")]

    assert rows(merged) == rows(md) and len(rows(md)) == 2


def test_resume_after_an_interruption_does_not_redo_finished_trials(write_suite, tmp_path, monkeypatch):
    import mfm_bench.runner as runner

    suite = load_suite(write_suite(suite_text()))
    out = tmp_path / "o"
    real, calls = runner.perform, []

    def stop_on_fourth(run, *a, **k):
        calls.append(run.id)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(run, *a, **k)

    monkeypatch.setattr(runner, "perform", stop_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out, progress=False)
    first = set(calls[:3])
    with pytest.raises(FileExistsError, match="--resume"):
        run_suite(suite, out, progress=False)
    calls.clear()
    run_suite(suite, out, resume=True, progress=False, log=lambda s: None)
    assert not first & set(calls)
    runs, _, [s] = trials_and_finals(out)
    assert s["trials"] == 5 and first <= set(s["trial_ids"])
    trials = {r["id"] for r in runs if r["config"]["search"]["role"] == "trial" and r["status"] == "finished"}
    assert trials == set(s["trial_ids"]) and len(trials) == 5 and len(calls) == 2 + 1  # two trials, one retrain


def test_test_oracle_is_labelled_never_default_and_warned(write_suite, tmp_path):
    assert load_suite(write_suite(suite_text())).models[0].search.selection == "validation"
    suite = load_suite(write_suite(suite_text(selection="selection: test-oracle")))
    out = tmp_path / "o"
    run_suite(suite, out, progress=False)
    runs, _, [s] = trials_and_finals(out)
    assert s["selection"] == "test-oracle" and not s["final_ids"]
    with ResultStore(out) as st:
        test_mae = [
            m["value"]
            for m in st.metrics()
            if m["metric"] == "mae" and m["split"] == "test" and m["condition"] == "clean"
        ]
    md = write_leaderboard(out, ["markdown"])["markdown"].read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| tuned (test-oracle) "))
    assert f"{min(test_mae):.3f}" in row
    assert "WARNING: test-oracle selection" in md


def test_trial_seeds_are_checked_when_the_suite_is_loaded(write_suite):
    with pytest.raises(SuiteError, match=r"search.trial_seeds: 3 trial seeds, but the suite has 2 seed\(s\)"):
        load_suite(write_suite(suite_text(selection="trial_seeds: 3")))
    with pytest.raises(SuiteError, match="search.trial_seeds: expected a positive integer"):
        load_suite(write_suite(suite_text(selection="trial_seeds: 0")))
    with pytest.raises(SuiteError, match="search.storage: must be one of memory, journal"):
        load_suite(write_suite(suite_text(selection="storage: sqlite")))
    assert load_suite(write_suite(suite_text())).models[0].search.trial_seeds == 1


def test_a_two_seed_trial_stores_both_runs_and_selects_on_their_mean(write_suite, tmp_path):
    suite = load_suite(write_suite(suite_text(selection="trial_seeds: 2")))
    out = tmp_path / "o"
    counts = run_suite(suite, out, progress=False)
    runs, valid, [s] = trials_and_finals(out)
    trials = [r for r in runs if r["config"]["search"]["role"] == "trial"]
    groups: dict[str, dict[int, str]] = {}
    for r in trials:
        groups.setdefault(repr(sorted(r["config"]["search"]["values"].items())), {})[r["seed"]] = r["id"]
    assert s["trials"] == 5 and s["trial_seeds"] == [3, 4] and len(groups) == 5
    assert all(sorted(g) == [3, 4] for g in groups.values())  # every trial ran on both seeds
    assert sorted(s["trial_ids"]) == sorted(r["id"] for r in trials)
    means = {k: (valid[g[3]] + valid[g[4]]) / 2 for k, g in groups.items()}
    best = min(means, key=means.get)
    assert s["chosen_value"] == pytest.approx(means[best], abs=1e-12)
    assert s["chosen_value"] != valid[groups[best][3]]  # the mean, not the first seed's value
    assert sorted(s["final_ids"]) == sorted(groups[best].values())  # the retrains are the best trial's runs
    assert counts["finished"] == 10  # no run twice


def test_journal_storage_mirrors_the_study_and_survives_resume(write_suite, tmp_path):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    suite = load_suite(write_suite(suite_text(selection="storage: journal")))
    out = tmp_path / "o"
    run_suite(suite, out, progress=False)
    run_suite(suite, out, resume=True, progress=False, log=lambda s: None)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / "optuna-journal.log")))
    study = optuna.load_study(study_name="synthetic-factors/tuned", storage=storage)
    _, valid, [s] = trials_and_finals(out)
    assert len(study.trials) == 5  # rebuilt from the store on resume, not doubled
    assert study.best_value == s["chosen_value"] and study.best_params == s["chosen"]
    assert sorted(t.value for t in study.trials) == sorted(valid[rid] for rid in s["trial_ids"])


def test_the_default_metric_label_loss_is_minimised(write_suite):
    spec = load_suite(write_suite(suite_text().replace("      metric: mae\n", ""))).models[0].search
    assert spec.metric == "label_loss" and spec.higher_is_better is False
