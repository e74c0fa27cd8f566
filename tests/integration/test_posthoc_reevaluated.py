"""Re-evaluations (``mfm-bench evaluate``) as the post-run tools show them: compare reads the numbers the leaderboard
shows, re-evaluated conditions included, and a condition re-evaluated for only some runs of a model is marked."""

import json
import shutil

import pytest

from mfm_bench.cli import main
from mfm_bench.compare import compare, load

SUITE = """\
name: posthoc-reeval
datasets:
  - name: synthetic-factors
    params: {n_train: 48, n_valid: 16, n_test: 24, dims: {text: 6, audio: 3, visual: 4}}
models:
  - {name: supervised, label: late, params: {fusion: late}}
seeds: [0, 1]
train: {epochs: 1, batch_size: 32, device: cpu}
evaluate: {conditions: [clean]}
report: {formats: [markdown, json, html]}
"""
COND = "missing:text@0.5"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("posthoc-reeval")
    (tmp / "suite.yaml").write_text(SUITE)
    assert main(["run", str(tmp / "suite.yaml"), "--out", str(tmp / "out"), "--no-progress"]) == 0
    return tmp / "out"


def _copy(finished, tmp_path, name="out"):
    copy = tmp_path / name
    shutil.copytree(finished, copy)
    return copy


def test_compare_reads_the_re_evaluated_conditions_the_leaderboard_shows(finished, tmp_path):
    out = _copy(finished, tmp_path)
    assert main(["evaluate", str(out), "--condition", COND]) == 0
    board = json.loads((out / "leaderboard.json").read_text())
    shown = board["datasets"]["synthetic-factors"][COND]["late"]["metrics"]["mae"]["by_seed"]
    values = load(out)
    assert values[("synthetic-factors", "late", COND, "mae")] == {int(k): v for k, v in shown.items()}
    rows = [r for r in compare(out, out) if r.condition == COND]
    assert rows and {r.seeds for r in rows} == {2} and all(r.diff == 0 for r in rows)
    assert "reevaluated" in board["datasets"]["synthetic-factors"][COND]["late"]
    assert "partial re-evaluation" not in (out / "leaderboard.md").read_text()  # every run was re-evaluated


def test_a_partial_re_evaluation_is_marked(finished, tmp_path):
    out = _copy(finished, tmp_path)
    run_dir = sorted((out / "runs").iterdir())[0]
    assert main(["evaluate", str(run_dir), "--condition", COND]) == 0
    board = json.loads((out / "leaderboard.json").read_text())
    row = board["datasets"]["synthetic-factors"][COND]["late"]
    assert row["reevaluated"]["runs"] == 1 and row["reevaluated"]["of"] == 2 and row["seeds"] == 1
    md = (out / "leaderboard.md").read_text()
    assert "partial re-evaluation: synthetic-factors / late under missing:text@0.5" in md
    assert "1 of its 2 finished runs" in md and "(re-evaluated: 1 of 2 runs)" in md
    assert "partial re-evaluation" in (out / "leaderboard.html").read_text()


def test_the_report_shows_the_leaderboards_notes(finished, tmp_path):
    """report.html left out the notes every leaderboard format shows (data warnings, mixed settings, partial
    re-evaluations)."""
    out = _copy(finished, tmp_path)
    run_dir = sorted((out / "runs").iterdir())[0]
    assert main(["evaluate", str(run_dir), "--condition", COND]) == 0
    page = (out / "report.html").read_text()
    assert "<b>note:</b> partial re-evaluation: synthetic-factors / late under missing:text@0.5" in page


def test_evaluate_and_leaderboard_rewrite_the_report_with_the_tables(finished, tmp_path, capsys):
    """report.html, written by the run, used to keep the old numbers after the tables were rewritten."""
    out = _copy(finished, tmp_path)
    assert (out / "report.html").exists() and COND not in (out / "report.html").read_text()
    assert main(["evaluate", str(out), "--condition", COND]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    assert COND in (out / "report.html").read_text()  # the re-evaluated condition, as in the tables
    # a leaderboard in one format still refreshes the report the folder has (here: a note added since)
    run_dir = sorted((out / "runs").iterdir())[0]
    assert main(["evaluate", str(run_dir), "--condition", "noise:audio:0.5", "--no-leaderboard"]) == 0
    assert "noise:audio:0.5" not in (out / "report.html").read_text()  # asked not to rewrite
    assert main(["leaderboard", str(out), "--format", "markdown", "--quiet"]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    assert "noise:audio:0.5" in (out / "report.html").read_text()


def test_a_report_goes_with_the_html_leaderboard_only(finished, tmp_path):
    out = _copy(finished, tmp_path)
    (out / "report.html").unlink()
    assert main(["leaderboard", str(out), "--format", "markdown", "--quiet"]) == 0
    assert not (out / "report.html").exists()  # no report, no HTML asked for: none written
    assert main(["leaderboard", str(out), "--quiet"]) == 0  # the suite's formats include html, as `run` writes it
    assert (out / "report.html").exists()
