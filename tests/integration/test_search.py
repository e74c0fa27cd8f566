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
    with pytest.raises(SuiteError, match="low 16 must be below high 4"):
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


def interrupted(suite, out, monkeypatch, at: int) -> list[str]:
    """Run ``suite`` into ``out`` with Ctrl-C as its ``at``-th run starts; the ids of every run started from
    then on (the list keeps growing through later run_suite calls)."""
    import mfm_bench.runner as runner

    real, calls = runner.perform, []

    def stop_once(run, *a, **k):
        calls.append(run.id)
        if len(calls) == at:
            raise KeyboardInterrupt
        return real(run, *a, **k)

    monkeypatch.setattr(runner, "perform", stop_once)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out, progress=False)
    return calls


def test_resume_after_an_interruption_does_not_redo_finished_trials(write_suite, tmp_path, monkeypatch):
    suite = load_suite(write_suite(suite_text()))
    out = tmp_path / "o"
    calls = interrupted(suite, out, monkeypatch, at=4)
    first = set(calls[:3])
    with pytest.raises(FileExistsError, match="--resume"):
        run_suite(suite, out, progress=False)
    calls.clear()
    logged: list[str] = []
    counts = run_suite(suite, out, resume=True, progress=False, log=logged.append)
    assert not first & set(calls)
    runs, _, [s] = trials_and_finals(out)
    assert s["trials"] == 5 and first <= set(s["trial_ids"])
    trials = {r["id"] for r in runs if r["config"]["search"]["role"] == "trial" and r["status"] == "finished"}
    assert trials == set(s["trial_ids"]) and len(trials) == 5 and len(calls) == 2 + 1  # two trials, one retrain
    # the summary counts the three trials finished before as skipped, and one line says what resume reuses
    assert counts == {"finished": 3, "failed": 0, "skipped": 3}
    said = "resuming the search of 'tuned' on 'synthetic-factors': 3 of 5 trials already finished (3 run(s) reused)"
    assert [line for line in logged if line.startswith("resuming the search")] == [
        f"{said}, 2 to go, then its final runs"
    ]
    logged.clear()
    calls.clear()  # all done: the final run on the chosen trial's seed is the trial itself, the other is reused
    assert run_suite(suite, out, resume=True, progress=False, log=logged.append) == {
        "finished": 0,
        "failed": 0,
        "skipped": 5 + 1,
    }
    assert not calls and any("5 of 5 trials already finished (5 run(s) reused), 0 to go" in x for x in logged)


def search_outcome(out):
    """(each trial run's id and configuration, the chosen configuration, the retrains' ids) of a folder's search."""
    runs, _, [s] = trials_and_finals(out)
    configs = {r["id"]: r["config"]["search"]["values"] for r in runs if r["id"] in s["trial_ids"]}
    return configs, s["chosen"], sorted(s["final_ids"]), s["trials"]


@pytest.mark.parametrize("extra, at", [("", 4), ("trial_seeds: 2", 4)])
def test_resume_finishes_interrupted_trials_as_an_uninterrupted_search(write_suite, tmp_path, monkeypatch, extra, at):
    """Interrupted after some trials finished (one seed: trial 4 of 5; two seeds: the second seed of trial 2),
    the resumed random search runs the interrupted trial again (its configuration, its run ids), not new ones,
    and ends with the trials, choice and retrains of the search run in one go; nothing is left unfinished."""
    suite = load_suite(write_suite(suite_text(selection=extra)))
    run_suite(suite, tmp_path / "whole", progress=False)
    out = tmp_path / "o"
    calls = interrupted(suite, out, monkeypatch, at=at)
    cut, before = calls[at - 1], len(calls)
    run_suite(suite, out, resume=True, progress=False, log=lambda s: None)
    assert calls[before] == cut and not set(calls[: at - 1]) & set(calls[before:])
    assert search_outcome(out) == search_outcome(tmp_path / "whole")
    with ResultStore(out) as st:
        assert {r["status"] for r in st.runs()} == {"finished"}
    md = write_leaderboard(out, ["markdown"])["markdown"].read_text()
    assert "Runs not finished" not in md


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_search_grown_with_resume_keeps_its_trials_and_ends_as_a_search_of_that_size(
    write_suite, tmp_path, monkeypatch, sampler
):
    """n_trials 2 then 5 with --resume: the two finished trials are not run again, and the folder ends as a
    5-trial search run at once (the same trials, choice and final runs). Without --resume the change is refused
    with the hint; a smaller n_trials is refused."""
    import mfm_bench.runner as runner
    from mfm_bench.errors import MfmBenchError

    five = suite_text(sampler)
    run_suite(load_suite(write_suite(five)), tmp_path / "whole", progress=False)
    out = tmp_path / "o"
    run_suite(load_suite(write_suite(five.replace("n_trials: 5", "n_trials: 2"))), out, progress=False)
    first = set(search_outcome(out)[0])
    grown = load_suite(write_suite(five))
    with pytest.raises(MfmBenchError, match="n_trials: 2 -> 5.*to add trials to the search and keep the finished"):
        run_suite(grown, out, progress=False)
    real, calls = runner.perform, []
    monkeypatch.setattr(runner, "perform", lambda run, *a, **k: calls.append(run.id) or real(run, *a, **k))
    logged: list[str] = []
    run_suite(grown, out, resume=True, progress=False, log=logged.append)
    assert "the search of 'tuned' on 'synthetic-factors' grows from 2 to 5 trials" in logged[0]
    assert len(first) == 2 and not first & set(calls)
    assert search_outcome(out) == search_outcome(tmp_path / "whole")

    def rows(folder):
        md = write_leaderboard(folder, ["markdown"])["markdown"].read_text()
        # model, seeds and the eight metrics; the cost columns (samples/s, ...) measure the machine
        return [ln.split("|")[1:11] for ln in md.splitlines() if ln.startswith("| tuned ")]

    assert rows(out) == rows(tmp_path / "whole")  # earlier final runs of another choice are not rows
    with pytest.raises(MfmBenchError, match="n_trials: 5 -> 3.*a search cannot shrink in place"):
        run_suite(load_suite(write_suite(five.replace("n_trials: 5", "n_trials: 3"))), out, resume=True, progress=False)


def test_shards_of_a_search_grown_in_one_of_them_merge_once_the_other_is_brought_along(write_suite, tmp_path):
    """A search grown with --resume in its shard makes that shard another configuration than the others: merge
    refuses, naming the shard to bring along and how; after that (nothing to run there), the merge goes through
    and holds the grown search."""
    from mfm_bench.merge import MergeConflictError, merge

    two = suite_text().replace("n_trials: 5", "n_trials: 2")
    two = two.replace(
        "models:\n", "models:\n  - {name: supervised, label: plain, params: {encoder: mean, fusion: late}}\n"
    )

    def searches(folder):
        with ResultStore(folder) as store:
            return store.searches()

    for k in (1, 2):
        run_suite(load_suite(write_suite(two)), tmp_path / f"s{k}", shard=(k, 2), progress=False)
    with_search = next(k for k in (1, 2) if searches(tmp_path / f"s{k}"))
    other = 3 - with_search
    grown = load_suite(write_suite(two.replace("n_trials: 2", "n_trials: 4")))
    run_suite(grown, tmp_path / f"s{with_search}", shard=(with_search, 2), resume=True, progress=False)
    with pytest.raises(MergeConflictError) as e:
        merge(tmp_path / "m", [tmp_path / "s1", tmp_path / "s2"], log=lambda s: None)
    message = str(e.value)
    assert (
        "has 4 trials in " + str(tmp_path / f"s{with_search}") + " and 2 in " + str(tmp_path / f"s{other}") in message
    )
    assert f"--out {tmp_path / f's{other}'} --resume" in message and not (tmp_path / "m" / "results.sqlite").exists()
    counts = run_suite(grown, tmp_path / f"s{other}", shard=(other, 2), resume=True, progress=False)
    assert counts["finished"] == 0  # the search went whole to the other shard
    merge(tmp_path / "m", [tmp_path / "s1", tmp_path / "s2"], log=lambda s: None)
    (search,) = searches(tmp_path / "m")
    assert search["trials"] == 4 and len(search["trial_ids"]) == 4


def test_final_runs_of_an_earlier_choice_leave_the_leaderboard():
    """A grown search that chose another configuration: its earlier final runs stay in the store, hidden."""
    from mfm_bench.search_board import hidden_runs

    def run(rid, role, values, label="tuned"):
        search = {"dataset": "d", "label": label, "role": role, "values": values}
        return {"id": rid, "config": {"search": search}}

    runs = [
        run("t1", "trial", {"lr": 1}),
        run("t2", "trial", {"lr": 2}),
        run("f1", "final", {"lr": 1}),  # the earlier choice's other seed
        run("f2", "final", {"lr": 2}),
        run("g", "final", {"lr": 9}, label="other"),  # a search without a record yet: left as it is
        {"id": "plain", "config": {}},
    ]
    searches = [{"dataset": "d", "label": "tuned", "chosen": {"lr": 2}, "final_ids": ["t2", "f2"]}]
    assert hidden_runs(runs, searches) == {"t1", "f1"}


def test_an_interrupted_run_reads_interrupted_once_among_runs_not_finished(write_suite, tmp_path, monkeypatch):
    suite = load_suite(write_suite(suite_text()))
    calls = interrupted(suite, tmp_path / "o", monkeypatch, at=2)
    md = write_leaderboard(tmp_path / "o", ["markdown"])["markdown"].read_text()
    line = next(ln for ln in md.splitlines() if calls[1] in ln)
    assert line.endswith("seed 3: interrupted") and "interrupted: interrupted" not in md


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
    assert row.split("|")[2].strip() == "1"  # each cell is one run's value, not the 5 trials as seeds
    assert "WARNING: test-oracle selection" in md
    search_row = next(ln for ln in md.splitlines() if ln.startswith("| tuned ") and "test-oracle |" in ln)
    assert "each metric's best (test); trials sampled on mae ↓ (valid)" in search_row


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


def test_a_metric_no_run_reports_is_refused_when_the_suite_is_loaded(write_suite, capsys):
    """A misspelt metric would train every trial and then choose nothing: validate names the metric's line and
    what the dataset's task reports; a metric a plugin declares passes (its producer says where it is reported)."""
    from mfm_bench import hookimpl
    from mfm_bench.cli import main
    from mfm_bench.testing import temporary_plugin

    typo = suite_text().replace("metric: mae", "metric: maee\n      direction: minimize")
    assert main(["validate", str(write_suite(typo))]) != 0
    err = capsys.readouterr().err
    assert "suite.yaml:11: models[0].search.metric: unknown metric 'maee': the regression task of dataset " in err
    assert "did you mean 'mae'? available: " in err and "label_loss, mae" in err and "Traceback" not in err
    without_direction = suite_text().replace("metric: mae", "metric: maee")
    with pytest.raises(SuiteError, match=r"suite.yaml:11: models\[0\].search.metric: unknown metric 'maee'"):
        load_suite(write_suite(without_direction))
    with pytest.raises(SuiteError, match=r"search.metric: metric 'params' is not a task metric"):
        load_suite(write_suite(suite_text().replace("metric: mae", "metric: params")))
    with pytest.raises(SuiteError, match=r"search.direction: must be one of maximize, minimize, got 'max'"):
        load_suite(write_suite(suite_text().replace("metric: mae", "metric: corr\n      direction: max")))
    assert load_suite(write_suite(suite_text().replace("metric: mae", "metric: corr"))).models[0].search.metric

    class Wobble:
        @hookimpl
        def register_metrics(self, register):
            register("wobble", False, help="a metric only this plugin's models report")

    declared = suite_text().replace("metric: mae", "metric: wobble")
    with pytest.raises(SuiteError, match="unknown metric 'wobble'"):
        load_suite(write_suite(declared))
    with temporary_plugin(Wobble(), "wobble-plugin"):
        spec = load_suite(write_suite(declared)).models[0].search
    assert spec.metric == "wobble" and spec.higher_is_better is False


def test_a_search_with_no_complete_trial_says_so(write_suite, tmp_path):
    """A plugin metric that passes validation but that no run reports on validation leaves every trial without a
    value: the search records no choice, trains no final run, and one warning line says why."""
    from mfm_bench import hookimpl
    from mfm_bench.testing import temporary_plugin

    class Wobble:
        @hookimpl
        def register_metrics(self, register):
            register("wobble", False, help="a metric no model here reports")

    logged: list[str] = []
    text = suite_text().replace("metric: mae", "metric: wobble").replace("n_trials: 5", "n_trials: 2")
    with temporary_plugin(Wobble(), "wobble-plugin"):
        counts = run_suite(load_suite(write_suite(text)), tmp_path / "o", progress=False, log=logged.append)
    runs, _, [s] = trials_and_finals(tmp_path / "o")
    assert counts["finished"] == 2 and len(runs) == 2 and s["complete"] == 0 and s["final_ids"] == []
    assert "chosen" not in s
    warned = [line for line in logged if line.startswith("warning:")]
    assert warned == [
        "warning: the search of 'tuned' on 'synthetic-factors' ended with no complete trial (2 trial(s), 0 pruned, "
        "the rest failed or without a validation 'wobble'): nothing was chosen and no final run trained. A trial "
        "completes when its runs finish and report 'wobble' on the validation split; the leaderboard's failed runs "
        "give each failure's error"
    ]
    logged.clear()
    run_suite(load_suite(write_suite(suite_text())), tmp_path / "mae", progress=False, log=logged.append)
    assert not [line for line in logged if line.startswith("warning:")]


def test_the_default_metric_label_loss_is_minimised(write_suite):
    spec = load_suite(write_suite(suite_text().replace("      metric: mae\n", ""))).models[0].search
    assert spec.metric == "label_loss" and spec.higher_is_better is False


# -- pruning ---------------------------------------------------------------------------------------------------
# learnable data (little noise) and one learning rate too small to move the loss: once a trial at 0.02 has
# finished, a trial at 1e-6 lags it at every epoch, which is what the median pruner stops
PRUNED = """\
name: pruned
datasets: [{name: synthetic-factors, params: {n_train: 256, n_valid: 64, n_test: 32, \
dims: {text: 5, audio: 3}, seq_len: 5, min_len: 2, noise: 0.1}}]
models:
  - name: supervised
    label: tuned
    params: {encoder: mean, fusion: concat}
    search:
      params: {train.lr: {choices: [0.02, 1.0e-6]}, head_hidden: {low: 4, high: 16}}
      sampler: random
      n_trials: 8
      PRUNER
seeds: [3, 4]
train: {epochs: 4, batch_size: 16, threads: 1}
"""


def pruned_text(pruner="pruner: {kind: median, n_startup_trials: 1}", extra=""):
    return PRUNED.replace("PRUNER", pruner + ("\n      " + extra if extra else ""))


def trial_runs(out):
    """Trial runs: (run, valid metrics by name, history rows)."""
    import json

    with ResultStore(out) as s:
        rows = []
        for r in s.runs("finished"):
            if r["config"]["search"]["role"] != "trial":
                continue
            valid = {m["metric"]: m["value"] for m in s.metrics(r["id"]) if m["split"] == "valid"}
            rows.append((r, valid, json.loads((out / "runs" / r["id"] / "history.json").read_text())))
        return rows, s.searches()


def check_pruned_search(out):
    """What holds for any pruned search: pruned runs stopped at their epoch and reported each epoch, they are
    counted, never chosen, and lagged the best finished trial where they stopped."""
    rows, [s] = trial_runs(out)
    pruned = [(r, v, h) for r, v, h in rows if "pruned_epoch" in v]
    assert pruned and s["pruned"] >= len(pruned) and s["metric"] == "label_loss"  # the default metric
    for r, v, h in pruned:
        stop = int(v["pruned_epoch"])
        assert len(h) == stop < 4 and h[-1]["pruned"] == stop
        assert [row["epoch"] for row in h if "search_value" in row] == list(range(1, stop + 1))
        assert r["config"]["search"]["values"] != s["chosen"]
    complete = [(r, v, h) for r, v, h in rows if "pruned_epoch" not in v]
    assert all(len(h) == 4 and "pruned" not in h[-1] for _, _, h in complete)
    assert s["chosen_value"] == min(v["label_loss"] for _, v, _ in complete)
    for _, _, h in pruned:  # the median of finished trials at that epoch is no lower than their best
        epoch, value = h[-1]["epoch"], h[-1]["search_value"]
        assert value > min(ch[epoch - 1]["search_value"] for _, _, ch in complete)
    return pruned, s


def test_pruner_settings_are_checked_when_the_suite_is_loaded(write_suite, capsys):
    from mfm_bench.cli import main

    assert main(["validate", str(write_suite(pruned_text("pruner: median")))]) == 0
    assert "(random, label_loss on validation, median pruner)" in capsys.readouterr().out
    spec = load_suite(write_suite(pruned_text("pruner: median"))).models[0].search
    assert (spec.pruner.kind, spec.pruner.n_startup_trials, spec.pruner.n_warmup_steps) == ("median", 5, 0)
    assert load_suite(write_suite(pruned_text("pruner: none"))).models[0].search.pruner is None
    spec = load_suite(write_suite(pruned_text("pruner: {kind: percentile, percentile: 25}"))).models[0].search
    assert (spec.pruner.kind, spec.pruner.percentile) == ("percentile", 25.0)
    cases = [
        ("pruner: median", "trial_seeds: 2", r"search.pruner: a pruner stops .* on 2 seeds \(set trial_seeds: 1"),
        ("pruner: {kind: median, warmup: 2}", "", r"search.pruner.warmup: unknown key 'warmup'"),
        ("pruner: hyperband", "", r"search.pruner.kind: must be one of median, percentile, got 'hyperband'"),
        ("pruner: {percentile: 20}", "", r"search.pruner.percentile: .*\(add kind: percentile\)"),
        ("pruner: {kind: median, n_startup_trials: -1}", "", r"pruner.n_startup_trials: expected an integer"),
        ("pruner: {kind: percentile, percentile: 120}", "", r"pruner.percentile: expected a number from 0 to 100"),
    ]
    for pruner, extra, match in cases:
        with pytest.raises(SuiteError, match=match):
            load_suite(write_suite(pruned_text(pruner, extra)))


def test_a_pruned_search_stops_lagging_trials_keeps_them_and_never_chooses_them(write_suite, tmp_path):
    suite = load_suite(write_suite(pruned_text()))
    out = tmp_path / "o"
    counts = run_suite(suite, out, progress=False)
    assert counts["failed"] == 0
    pruned, s = check_pruned_search(out)
    assert counts["pruned"] == len(pruned)
    md = write_leaderboard(out, ["markdown"])["markdown"].read_text()
    assert f"({s['pruned']} pruned)" in md


def prune_by_rule(monkeypatch):
    """Which trials Optuna prunes with parallel runs depends on the order they finish in, so the answers come from
    a fixed rule in the main process (stop every trial at lr 1e-6 after epoch 2), after the study heard each
    report."""
    from mfm_bench.search_run import SearchSource

    real = SearchSource.report

    def rule(self, run, epoch, value):
        real(self, run, epoch, value)
        return run.config["search"]["values"]["train.lr"] < 1e-3 and epoch == 2

    monkeypatch.setattr(SearchSource, "report", rule)


def check_pruned_by_rule(out):
    rows, [s] = trial_runs(out)
    slow = [(v, h) for r, v, h in rows if r["config"]["search"]["values"]["train.lr"] < 1e-3]
    fast = [(v, h) for r, v, h in rows if r["config"]["search"]["values"]["train.lr"] > 1e-3]
    assert slow and fast and s["pruned"] >= len(slow)
    assert all(v["pruned_epoch"] == 2 and [x["epoch"] for x in h] == [1, 2] for v, h in slow)
    assert all("pruned_epoch" not in v and len(h) == 4 for v, h in fast)
    assert all("search_value" in x for _, h in slow + fast for x in h)  # every epoch reported
    assert s["chosen"]["train.lr"] == 0.02


@pytest.mark.slow
def test_trials_in_worker_processes_ask_the_main_process_to_prune(write_suite, tmp_path, monkeypatch):
    """Over the workers' pipes (the Ray executor's test does the same through its board actor)."""
    from mfm_bench.executors import Execution

    prune_by_rule(monkeypatch)
    out = tmp_path / "o"
    counts = run_suite(load_suite(write_suite(pruned_text())), out, progress=False, execution=Execution(jobs=2))
    assert counts["failed"] == 0
    check_pruned_by_rule(out)


def test_a_trial_is_not_pruned_after_its_last_epoch(write_suite, tmp_path, monkeypatch):
    from mfm_bench.search_run import SearchSource

    monkeypatch.setattr(SearchSource, "report", lambda self, run, epoch, value: epoch == 4)
    out = tmp_path / "o"
    run_suite(load_suite(write_suite(pruned_text())), out, progress=False)
    rows, [s] = trial_runs(out)
    assert rows and all("pruned_epoch" not in v and len(h) == 4 for _, v, h in rows) and not s["pruned"]


def test_a_resumed_search_tells_the_pruner_what_its_trials_reported(write_suite, tmp_path, monkeypatch):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    suite = load_suite(write_suite(pruned_text(extra="storage: journal")))
    out = tmp_path / "o"
    calls = interrupted(suite, out, monkeypatch, at=6)
    before, _ = trial_runs(out)
    assert any("pruned_epoch" in v for _, v, _ in before)
    calls.clear()
    run_suite(suite, out, resume=True, progress=False, log=lambda s: None)
    assert not {r["id"] for r, _, _ in before} & set(calls)  # finished trials, pruned ones included, not redone
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / "optuna-journal.log")))
    study = optuna.load_study(study_name="synthetic-factors/tuned", storage=storage)
    told = {}
    for t in study.trials:  # the first trial of each configuration (a repeat asked later is told its outcome bare)
        told.setdefault(json_key(t.params), t)
    for r, v, h in before:  # each trial of the first start, told again with its state and epoch by epoch values
        t = told[json_key(r["config"]["search"]["values"])]
        pruned = "pruned_epoch" in v
        assert t.state == (optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.COMPLETE)
        assert t.intermediate_values == {row["epoch"]: row["search_value"] for row in h}
    check_pruned_search(out)


def json_key(values):
    import json

    return json.dumps(values, sort_keys=True)


def test_a_pruner_that_never_stops_leaves_every_trial_as_without_one(write_suite, tmp_path):
    """A trial with a pruner reports the searched metric after each epoch (here mae, an evaluation of the
    validation split); the evaluation must not move the random state the rest of training draws from."""
    plain = pruned_text("metric: mae")
    never = pruned_text("metric: mae", "pruner: {kind: median, n_startup_trials: 100}")
    results = []
    for i, text in enumerate((plain, never)):
        out = tmp_path / f"o{i}"
        run_suite(load_suite(write_suite(text, f"s{i}.yaml")), out, progress=False)
        rows, [s] = trial_runs(out)
        by_values = {json_key(r["config"]["search"]["values"]): (v, [x["valid_label"] for x in h]) for r, v, h in rows}
        results.append((by_values, s["chosen"], [row for _, _, h in rows for row in h]))
    assert results[0][0] == results[1][0] and results[0][1] == results[1][1]
    assert all("search_value" in row for row in results[1][2]) and not any("pruned" in row for row in results[1][2])


def test_the_pruning_hook_reports_each_epoch_and_keeps_the_random_state(monkeypatch):
    """The per-epoch evaluation may draw random numbers (a model sampling in its forward): the hook restores the
    state, so training goes on with the numbers it would have drawn without a pruner."""
    import torch

    import mfm_bench.evaluation as evaluation
    import mfm_bench.runner as runner
    from mfm_bench.training import TrainConfig, Trainer

    def drawing_evaluate(model, dataset, conditions, **kw):
        assert kw["split"] == "valid" and not kw["probes"]
        return [("clean", "valid", "mae", 1.0 + float(torch.rand(())))]

    monkeypatch.setattr(evaluation, "evaluate", drawing_evaluate)
    asked = []
    trainer = Trainer(TrainConfig(device="cpu"))
    cfg = {"search": {"prune": "mae"}, "seed": 0, "train": {"epochs": 3}}
    stop = runner._pruning(cfg, trainer, None, [], lambda epoch, value: asked.append((epoch, value)) or epoch >= 2)
    torch.manual_seed(5)
    state, rows = torch.get_rng_state(), [{}, {}]
    assert stop(1, None, rows[0], 0.7) is False and torch.equal(torch.get_rng_state(), state)
    assert stop(2, None, rows[1], 0.6) is True and torch.equal(torch.get_rng_state(), state)
    assert [e for e, _ in asked] == [1, 2] and all(1.0 <= v < 2.0 for _, v in asked)
    assert [r["search_value"] for r in rows] == [v for _, v in asked]
    # label_loss: the epoch's selection loss, no evaluation; without the search's prune key or a channel, no hook
    loss_cfg = {**cfg, "search": {"prune": "label_loss"}}
    loss_stop = runner._pruning(loss_cfg, trainer, None, [], lambda e, v: v > 1)
    assert loss_stop(1, None, {}, 0.5) is False and loss_stop(2, None, {}, 1.5) is True
    assert loss_stop(3, None, {}, 1.5) is False  # the last epoch: nothing left to save
    assert runner._pruning({"search": {"role": "trial"}}, trainer, None, [], lambda e, v: True) is None
    assert runner._pruning(cfg, trainer, None, [], None) is None
