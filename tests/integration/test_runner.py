"""The runner: grid, stable run ids, failure isolation, interruption and resume, the leaderboard."""

import json
import re
import sqlite3

import pytest

from mfm_bench.leaderboard import write_leaderboard
from mfm_bench.results import ResultStore
from mfm_bench.runner import expand, run_suite
from mfm_bench.suite import load_suite

TINY = """\
name: tiny
datasets: [{name: synthetic-factors, params: {n_train: 64, n_valid: 24, n_test: 32, \
dims: {text: 6, audio: 3}, seq_len: 6, min_len: 3}}]
models:
  - {name: dummy, label: good}
  - {name: supervised, label: concat, params: {encoder: mean, fusion: concat}}
seeds: [0, 1]
train: {epochs: 3, batch_size: 16}
evaluate: {conditions: [clean, {missing: audio}, {noise: {modality: text, std: 0.5}}]}
"""


def runs_table(out):
    with ResultStore(out) as s:
        return {(r["label"], r["seed"]): r for r in s.runs()}


def test_run_ids_are_stable_and_change_with_any_resolved_value(write_suite, dummy):
    a = expand(load_suite(write_suite(TINY)))
    b = expand(load_suite(write_suite(TINY)))
    assert [r.id for r in a] == [r.id for r in b] and len({r.id for r in a}) == 4
    # spelling out a default does not change the id; changing a value does
    same = expand(load_suite(write_suite(TINY.replace("epochs: 3,", "epochs: 3, lr: 0.001,"))))
    assert [r.id for r in same] == [r.id for r in a]
    other = expand(load_suite(write_suite(TINY.replace("epochs: 3,", "epochs: 3, lr: 0.002,"))))
    assert not {r.id for r in other} & {r.id for r in a}
    assert [r.id for r in expand(load_suite(write_suite(TINY)), device="cpu", threads=1)] == [r.id for r in a]


def test_suite_runs_records_everything_and_writes_leaderboard(write_suite, tmp_path, dummy):
    out = tmp_path / "out"
    counts = run_suite(load_suite(write_suite(TINY)), out, progress=False, log=lambda s: None)
    assert counts == {"finished": 4, "failed": 0, "skipped": 0}
    runs = runs_table(out)
    r = runs[("concat", 1)]
    assert r["status"] == "finished" and r["config"]["train"]["epochs"] == 3 and r["seconds"] > 0
    assert r["environment"]["torch"] and r["environment"]["device"] == "cpu"
    assert r["environment"]["plugins"]["model:supervised"].startswith("mfm-bench")
    with ResultStore(out) as s:
        ms = {(m["condition"], m["metric"]): m for m in s.metrics(r["id"])}
    assert {
        ("clean", "mae"),
        ("missing:audio", "mae"),
        ("noise:text:0.5", "acc2_has0"),
        ("train", "params"),
        ("train", "train_samples_per_sec"),
    } <= set(ms)
    assert ms[("clean", "mae")]["higher_is_better"] == 0 and ms[("clean", "acc7")]["higher_is_better"] == 1
    assert (out / "runs" / r["id"] / "model.pt").stat().st_size > 0
    assert json.loads((out / "runs" / r["id"] / "config.json").read_text())["seed"] == 1
    # probes: synthetic data has true factors, but neither model returns codes -> no probe rows
    assert not any(m.startswith("probe_") for _, m in ms)

    written = write_leaderboard(out)
    md = written["markdown"].read_text()
    assert "| good " in md and "| concat " in md and "missing:audio" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| concat "))
    assert "|       2 |" in row and " ± " in row  # two seeds, mean ± std
    assert md.count("**") >= 2  # best values marked
    data = json.loads(written["json"].read_text())
    mae = data["datasets"]["synthetic-factors"]["clean"]["concat"]["metrics"]["mae"]
    with ResultStore(out) as s:
        vals = [
            m["value"]
            for rid in (runs[("concat", 0)]["id"], runs[("concat", 1)]["id"])
            for m in s.metrics(rid)
            if m["condition"] == "clean" and m["metric"] == "mae"
        ]
    assert mae["mean"] == pytest.approx(sum(vals) / 2) and mae["n"] == 2 and mae["higher_is_better"] is False
    csv_head = written["csv"].read_text().splitlines()[0]
    assert csv_head.startswith("dataset,condition,model,seeds,status,mae,mae_std") and csv_head.endswith(",run,error")
    page = write_leaderboard(out, ["html"])["html"].read_text()
    # every Markdown table is in the HTML too (here: clean split, normalisation, robustness, one table per sweep
    # (missing:audio, noise:text) and the sweeps' summary), bold best values included
    assert page.count("<table>") == md.count("\n### ") == 6 and "<b>" in page
    assert "### robustness summary of" in md and "against severity: noise:text" in md
    assert re.search(r"<td>concat\s*</td>", page) and page.count("data:image/png;base64,") == 1
    assert (out / "leaderboard.html").stat().st_mode & 0o044  # readable by others, like any report


def test_same_seed_same_result(write_suite, tmp_path, dummy):
    suite = load_suite(write_suite(TINY.replace("seeds: [0, 1]", "seeds: [3]")))
    run_suite(suite, tmp_path / "a", progress=False)
    run_suite(suite, tmp_path / "b", progress=False)

    def get(o):
        return sorted(
            (m["run_id"], m["condition"], m["metric"], m["value"])
            for m in ResultStore(o).metrics()
            if m["condition"] != "train"
        )

    assert get(tmp_path / "a") == get(tmp_path / "b")


def test_failed_run_is_recorded_and_the_suite_goes_on(write_suite, tmp_path, dummy):
    text = TINY.replace(
        "{name: dummy, label: good}",
        "{name: dummy, label: good}\n  - {name: dummy, label: nan, params: {fail: nan}}\n"
        "  - {name: dummy, label: boom, params: {fail: raise}}",
    )
    counts = run_suite(load_suite(write_suite(text)), tmp_path / "o", progress=False)
    assert counts == {"finished": 4, "failed": 4, "skipped": 0}
    runs = runs_table(tmp_path / "o")
    assert runs[("nan", 0)]["status"] == "failed" and "non-finite loss" in runs[("nan", 0)]["error"]
    assert "dummy model failure" in runs[("boom", 1)]["error"]
    assert runs[("good", 0)]["status"] == "finished"
    md = write_leaderboard(tmp_path / "o")["markdown"].read_text()
    tables, failed = md.split("## Failed runs")
    assert "non-finite loss" in failed and "| nan " in failed and "| nan " not in tables and "| boom " not in tables


def test_interrupt_keeps_store_consistent_and_resume_runs_only_the_rest(write_suite, tmp_path, dummy, monkeypatch):
    out = tmp_path / "o"
    suite = load_suite(write_suite(TINY))
    import mfm_bench.runner as runner

    real = runner.perform
    calls = []

    def interrupt_on_third(run, *a, **k):
        calls.append(run.id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(run, *a, **k)

    monkeypatch.setattr(runner, "perform", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out, progress=False)
    finished_before = {rid for rid, r in ((r["id"], r) for r in runs_table(out).values()) if r["status"] == "finished"}
    assert len(finished_before) == 2
    # the database is whole: every finished run has its metrics
    con = sqlite3.connect(out / "results.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for rid in finished_before:
        assert con.execute("SELECT count(*) FROM metrics WHERE run_id = ?", (rid,)).fetchone()[0] > 10

    with pytest.raises(FileExistsError, match="--resume"):
        run_suite(suite, out, progress=False)
    calls.clear()
    monkeypatch.setattr(runner, "perform", lambda run, *a, **k: (calls.append(run.id), real(run, *a, **k))[1])
    counts = run_suite(suite, out, resume=True, progress=False, log=lambda s: None)
    assert counts == {"finished": 2, "failed": 0, "skipped": 2}
    assert not set(calls) & finished_before and len(calls) == 2
    counts = run_suite(suite, out, resume=True, progress=False, log=lambda s: None)
    assert counts == {"finished": 0, "failed": 0, "skipped": 4}


def test_interrupt_inside_training_marks_the_run_interrupted(write_suite, tmp_path, dummy):
    text = TINY.replace("{name: dummy, label: good}", "{name: dummy, label: stop, params: {fail: interrupt}}")
    with pytest.raises(KeyboardInterrupt):
        run_suite(load_suite(write_suite(text)), tmp_path / "o", progress=False)
    runs = runs_table(tmp_path / "o")
    assert [r["status"] for r in runs.values()] == ["interrupted"]


def test_condition_on_unknown_modality_is_refused_before_any_run(write_suite, tmp_path, dummy):
    from mfm_bench.evaluation import parse_conditions
    from mfm_bench.suite import SuiteError

    text = TINY.replace("{missing: audio}", "{missing: visual}")
    with pytest.raises(SuiteError, match="has no modality 'visual'"):
        load_suite(write_suite(text))
    suite = load_suite(write_suite(TINY))  # a Suite changed through the API still meets the run-time check
    suite.conditions = parse_conditions(["clean", {"missing": "visual"}])
    run_suite(suite, tmp_path / "o", progress=False)
    err = runs_table(tmp_path / "o")[("good", 0)]["error"]
    assert "has no modality 'visual'" in err and "text, audio" in err


def test_cli_run_validate_and_leaderboard(write_suite, tmp_path, capsys):
    from mfm_bench.cli import main

    path = write_suite(TINY.replace("  - {name: dummy, label: good}\n", "").replace("seeds: [0, 1]", "seeds: [0]"))
    assert main(["validate", str(path)]) == 0
    assert "1 runs" in capsys.readouterr().out
    out = tmp_path / "cli"
    assert main(["run", str(path), "--out", str(out), "--no-progress", "--seeds", "5"]) == 0
    printed = capsys.readouterr().out
    assert "# Leaderboard" in printed and "1 run(s) finished" in printed and str(out / "leaderboard.md") in printed
    assert runs_table(out)[("concat", 5)]["status"] == "finished"
    assert main(["run", str(path), "--out", str(out), "--no-progress", "--seeds", "5"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["leaderboard", str(out), "--quiet"]) == 0
    if not __import__("torch").cuda.is_available():
        assert main(["run", str(path), "--out", str(tmp_path / "gpu"), "--device", "cuda", "--no-progress"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err and not (tmp_path / "gpu").exists()
    assert main(["leaderboard", str(tmp_path / "nothing")]) == 2
    bad = write_suite(path.read_text().replace("epochs: 3", "epochs: three"), "bad.yaml")
    assert main(["validate", str(bad)]) == 1
    assert "bad.yaml:6: train.epochs: expected an integer" in capsys.readouterr().err
