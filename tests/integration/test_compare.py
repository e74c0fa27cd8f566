"""``mfm-bench compare``: the CI regression gate. A scripted example: a 1-epoch suite against a 12-epoch one fails
the gate, an identical rerun passes; unusable input exits 2 and says what did not match."""

import shutil

import pytest

from mfm_bench.cli import main
from mfm_bench.commands.compare import drops_arg
from mfm_bench.compare import Row, gate, paired_p

SUITE = """\
name: gate
datasets:
  - name: synthetic-factors
    params: {n_train: 128, n_valid: 32, n_test: 48, dims: {text: 6, audio: 3, visual: 4}}
models:
  - {name: supervised, label: LABEL, params: {fusion: late}}
seeds: [0, 1]
train: {epochs: EPOCHS, batch_size: 32, lr: 0.005, device: cpu}
evaluate: {conditions: [clean]}
report: {formats: [json]}
"""


@pytest.fixture(scope="module")
def outs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    out = {}
    for name, epochs, label in [
        ("main", 12, "late"),
        ("rerun", 12, "late"),
        ("degraded", 1, "late"),
        ("other", 1, "renamed"),
    ]:
        (tmp / f"{name}.yaml").write_text(SUITE.replace("EPOCHS", str(epochs)).replace("LABEL", label))
        assert main(["run", str(tmp / f"{name}.yaml"), "--out", str(tmp / name), "--no-progress"]) == 0
        out[name] = tmp / name
    return out


def test_degraded_model_fails_the_gate(outs, capsys):
    code = main(["compare", str(outs["main"]), str(outs["degraded"]), "--max-drop", "mae=0.05", "--format", "md"])
    text = capsys.readouterr().out
    assert code == 1
    assert "| synthetic-factors | late" in text and "**FAIL** worse by" in text and "regression(s)" in text


def test_identical_rerun_passes(outs, capsys):
    code = main(
        ["compare", str(outs["main"]), str(outs["rerun"]), "--max-drop", "mae=0.05,acc2_non0=0.01", "--alpha", "0.05"]
    )
    text = capsys.readouterr().out
    assert code == 0 and "no regression" in text and "FAIL" not in text


def test_a_side_from_other_hardware_is_noted_without_changing_the_verdict(outs, capsys, tmp_path, recorded_as):
    """A BASE made on another CPU type (a cached main-branch folder from another runner) can differ by rounding:
    the gate still decides on the numbers, and a note names both setups."""
    assert "different setups" not in capsys.readouterr().out
    assert main(["compare", str(outs["main"]), str(outs["rerun"])]) == 0
    assert "different setups" not in capsys.readouterr().out  # one machine, one torch: nothing to say
    other = tmp_path / "other-runner"
    shutil.copytree(outs["main"], other)
    recorded_as(other, cpu="AMD EPYC 7B13", cpu_capability="AVX2", git_commit="f" * 40)
    assert main(["compare", str(other), str(outs["rerun"])]) == 0
    text = capsys.readouterr().out
    note = text[text.index("note: BASE and NEW ran on different setups") :]
    assert "- hardware: BASE AMD EPYC 7B13 (AVX2" in note and "; NEW " in note and "round differently" in note
    assert "torch:" not in note and "code" not in note  # same torch; another commit is what a gate compares
    assert "no regression" in text


def test_nothing_in_common_exits_2_and_says_what_differs(outs, capsys):
    assert main(["compare", str(outs["main"]), str(outs["other"])]) == 2
    err = capsys.readouterr().err
    assert "nothing in common" in err and "models only in BASE: late; only in NEW: renamed" in err


def test_unknown_metric_and_missing_store_exit_2(outs, capsys, tmp_path):
    assert main(["compare", str(outs["main"]), str(outs["rerun"]), "--max-drop", "mea=0.1"]) == 2
    assert "neither side measured: mea" in capsys.readouterr().err
    assert main(["compare", str(outs["main"]), str(tmp_path)]) == 2
    assert "holds no results.sqlite" in capsys.readouterr().err


def test_paired_test_and_gate_rules():
    assert paired_p({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6}) == 1.0
    assert paired_p({0: 0.5}, {0: 0.4}) is None  # one seed: no test
    assert paired_p({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.4, 1: 0.45, 2: 0.62}) < 0.1
    rows = [
        Row("d", "m", "clean", "acc", 0.80, 0.78, 3, 0.01, True),
        Row("d", "m", "clean", "mae", 1.00, 1.01, 3, 0.5, False),
        Row("d", "m", "train", "train_samples_per_sec", 1000.0, 600.0, 3, 0.2, True),
    ]
    assert [r.metric for r in gate(rows, {"acc": 0.05, "mae": 0.05}, None, None)] == []
    assert [r.metric for r in gate(rows, {"acc": 0.01}, None, None)] == ["acc"]
    for r in rows:
        r.regression = ""
    assert [r.metric for r in gate(rows, {}, 0.05, 0.5)] == ["acc"]  # throughput x0.6 is within a 50% slowdown
    for r in rows:
        r.regression = ""
    assert [r.metric for r in gate(rows, {}, None, 0.3)] == ["train_samples_per_sec"]


def test_max_drop_parsing():
    assert drops_arg("acc2_non0=0.01, mae=0.02") == {"acc2_non0": 0.01, "mae": 0.02}
    for bad in ("mae", "mae=x", "=0.1", "mae=-1"):
        with pytest.raises(Exception, match="METRIC=AMOUNT"):
            drops_arg(bad)


def test_a_run_that_failed_in_new_fails_the_gate(outs, capsys, tmp_path):
    """A model that crashes in NEW has no metrics there; the gate must not pass on the models that are left."""
    import shutil

    from mfm_bench.results import ResultStore

    new = tmp_path / "new"
    shutil.copytree(outs["rerun"], new)
    with ResultStore(new) as store:
        (run_id,) = [r["id"] for r in store.runs() if r["seed"] == 1]
        store.conn.execute("UPDATE runs SET status = 'failed', error = 'RuntimeError: boom' WHERE id = ?", (run_id,))
        store.conn.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
    assert main(["compare", str(outs["main"]), str(new), "--max-drop", "mae=0.05"]) == 1
    out = capsys.readouterr().out
    assert "late / seed 1: failed: RuntimeError: boom" in out and "NEW is worse than BASE" in out
    assert main(["compare", str(new), str(outs["main"])]) == 0  # a run fixed in NEW is no regression


def test_alpha_gates_task_metrics_only():
    """--alpha is documented for task metrics: a probe's R² or a reconstruction error, significantly worse, is not a
    regression of the task (many of them per model would make the gate fail by chance); --max-drop can name one."""
    rows = [
        Row("d", "MFM", "clean", "probe_shared_from_zy", 0.80, 0.70, 3, 0.01, True),
        Row("d", "MFM", "missing:text", "recon_missing_text", 0.70, 0.80, 3, 0.01, False),
        Row("d", "MFM", "train", "peak_rss_mb", 300.0, 400.0, 3, 0.01, False),
        Row("d", "MFM", "clean", "mae", 0.30, 0.40, 3, 0.01, False),
        Row("d", "MFM", "clean", "my_plugin_score", 0.9, 0.8, 3, 0.01, True),  # undeclared: a task metric
    ]
    assert [r.metric for r in gate(rows, {}, 0.05, None)] == ["mae", "my_plugin_score"]
    for r in rows:
        r.regression = ""
    assert [r.metric for r in gate(rows, {"probe_shared_from_zy": 0.05}, None, None)] == ["probe_shared_from_zy"]


def test_max_drop_on_a_metric_only_base_has_says_so(outs, capsys, tmp_path):
    import shutil

    from mfm_bench.results import ResultStore

    new = tmp_path / "new"
    shutil.copytree(outs["rerun"], new)
    with ResultStore(new) as store:  # NEW lost a metric: its runs failed before measuring it
        store.conn.execute("DELETE FROM metrics WHERE metric = 'corr'")
        (run_id,) = [r["id"] for r in store.runs() if r["seed"] == 1]
        store.conn.execute("UPDATE runs SET status = 'failed', error = 'RuntimeError: boom' WHERE id = ?", (run_id,))
    assert main(["compare", str(outs["main"]), str(new), "--max-drop", "corr=0.1"]) == 2
    err = capsys.readouterr().err
    assert "corr (only in BASE)" in err and "neither side" not in err and "late / seed 1: failed" in err


def test_a_smoke_test_side_is_not_compared_with_a_full_one(outs, capsys, tmp_path):
    import json
    import shutil

    from mfm_bench.results import ResultStore

    new = tmp_path / "new"
    shutil.copytree(outs["rerun"], new)
    with ResultStore(new) as store:  # as `mfm-bench run --limit 20` records it
        for r in store.runs():
            config = {**r["config"], "limit": 20}
            store.conn.execute("UPDATE runs SET config = ? WHERE id = ?", (json.dumps(config), r["id"]))
    assert main(["compare", str(outs["main"]), str(new)]) == 2
    err = capsys.readouterr().err
    assert "(the full splits)" in err and "(--limit 20)" in err and "same --limit" in err
    assert main(["compare", str(new), str(new)]) == 0  # both sides the same smoke test


def test_alpha_fires_on_a_constant_shift_over_enough_seeds():
    """Every seed worse by the same amount used to give no p-value, so --alpha never fired."""
    base = {s: 0.8 + 0.01 * s for s in range(6)}
    new = {s: v - 0.02 for s, v in base.items()}
    p = paired_p(base, new)
    assert p == pytest.approx(2 * 0.5**6)
    rows = [Row("d", "m", "clean", "acc", 0.8, 0.78, 6, p, True)]
    assert [r.metric for r in gate(rows, {}, 0.05, None)] == ["acc"] and "p=0.0312" in rows[0].regression
    two = paired_p({0: 0.8, 1: 0.9}, {0: 0.7, 1: 0.8})  # two seeds: p 0.5, never significant at 0.05
    assert two == pytest.approx(0.5)


def test_one_seed_bootstrap_bounds_are_not_compared_as_metrics(tmp_path, capsys):
    """With one seed a run stores its bootstrap interval as ci95_lo:<metric> / ci95_hi:<metric> rows; the leaderboard
    shows them as the metric's interval, and compare listed each bound as a metric of its own (half its rows)."""
    suite = SUITE.replace("EPOCHS", "1").replace("LABEL", "late").replace("seeds: [0, 1]", "seeds: [0]")
    (tmp_path / "one.yaml").write_text(suite)
    assert main(["run", str(tmp_path / "one.yaml"), "--out", str(tmp_path / "one"), "--no-progress"]) == 0
    from mfm_bench.compare import compare
    from mfm_bench.results import ResultStore

    with ResultStore(tmp_path / "one") as store:
        assert any(m["metric"].startswith("ci95_lo:") for m in store.metrics())  # the run stored its bounds
    metrics = {r.metric for r in compare(tmp_path / "one", tmp_path / "one")}
    assert "mae" in metrics and not any(m.startswith(("ci95_lo:", "ci95_hi:")) for m in metrics)
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "one"), str(tmp_path / "one")]) == 0
    assert "ci95_" not in capsys.readouterr().out


def test_what_one_side_alone_measured_is_listed(outs, capsys, tmp_path):
    """A condition that NEW no longer measures (here: a re-evaluation made only in BASE) used to vanish from the
    output, and the gate passed without a word."""
    import shutil

    base = tmp_path / "base"
    shutil.copytree(outs["main"], base)
    assert main(["evaluate", str(base), "--condition", "noise:audio:0.5", "--no-leaderboard"]) == 0
    capsys.readouterr()
    assert main(["compare", str(base), str(outs["rerun"])]) == 0
    out = capsys.readouterr().out
    assert "not compared, measured on one side only (1):" in out
    assert "- BASE only: synthetic-factors / late / noise:audio:0.5 (8 metric(s))" in out
    assert main(["compare", str(outs["rerun"]), str(base)]) == 0
    assert "- NEW only: synthetic-factors / late / noise:audio:0.5" in capsys.readouterr().out
    assert main(["compare", str(outs["main"]), str(outs["rerun"])]) == 0
    assert "one side only" not in capsys.readouterr().out


def _measured(values, dataset="d"):
    from mfm_bench.compare import Measured

    got = Measured(dict)
    got.update(values)
    got.datasets, got.limits = {dataset: "{}"}, {dataset: {None}}
    return got


def test_means_and_test_are_over_the_seeds_both_sides_have():
    """The means were over every seed of each side and the p-value over the shared seeds: a seed NEW alone had moved
    the difference while the test said nothing changed."""
    from mfm_bench.compare import compare, unpaired_seeds

    base = _measured({("d", "m", "clean", "mae"): {0: 1.0, 1: 2.0}})
    new = _measured({("d", "m", "clean", "mae"): {0: 1.0, 1: 2.0, 2: 9.0}})
    (row,) = compare("BASE", "NEW", (base, new))
    assert (row.base, row.new, row.diff, row.seeds, row.p) == (1.5, 1.5, 0.0, 2, 1.0)
    assert (row.base_only, row.new_only, row.paired) == ((), (2,), True)
    assert row.seeds_text() == "2 (+1 NEW only)"
    assert unpaired_seeds([row]) == ["d / m / clean: NEW only: seed(s) 2 (left out of the means and the test)"]
    (row,) = compare("BASE", "NEW", (new, base))
    assert row.seeds_text() == "2 (+1 BASE only)" and row.diff == 0.0
    # no seed in common: each side's own seeds, unpaired, no test, and the row says so
    other = _measured({("d", "m", "clean", "mae"): {5: 3.0, 6: 4.0, 7: 5.0}})
    (row,) = compare("BASE", "NEW", (base, other))
    assert (row.base, row.new, row.seeds, row.p, row.paired) == (1.5, 4.0, 0, None, False)
    assert row.seeds_text() == "0 (unpaired: BASE 2, NEW 3)"
    assert unpaired_seeds([row]) == [
        "d / m / clean: BASE only: seed(s) 0, 1; NEW only: seed(s) 5, 6, 7 (no seed in common: unpaired means, no test)"
    ]
    assert [r.metric for r in gate([row], {"mae": 1.0}, None, None)] == ["mae"]  # --max-drop still gates it


def test_a_seed_only_new_has_is_listed_not_averaged(posthoc_out, posthoc_suite, tmp_path, capsys):
    import shutil

    new = tmp_path / "new"
    shutil.copytree(posthoc_out, new)
    (tmp_path / "suite.yaml").write_text(posthoc_suite)
    run = ["run", str(tmp_path / "suite.yaml"), "--out", str(new), "--seeds", "0,1,2", "--resume", "--no-progress"]
    assert main(run) == 0  # NEW: the same two runs, and seed 2
    capsys.readouterr()
    assert main(["compare", str(posthoc_out), str(new), "--max-drop", "mae=0"]) == 0
    out = capsys.readouterr().out
    assert "paired seeds" in out and "2 (+1 NEW only)" in out
    assert "seeds only one side has, not paired (1):" in out
    assert "- synthetic-factors / late / clean, train: NEW only: seed(s) 2 (left out of the means and the test)" in out
    from mfm_bench.compare import compare

    rows = compare(posthoc_out, new)
    assert rows and all(r.diff == 0 and r.seeds == 2 and r.new_only == (2,) for r in rows)  # the same seeds 0, 1
    assert main(["compare", str(new), str(posthoc_out), "--format", "md"]) == 0
    assert "BASE only: seed(s) 2" in capsys.readouterr().out
