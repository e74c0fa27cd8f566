"""Re-evaluations (``mfm-bench evaluate``) as the post-run tools show them: compare reads the numbers the leaderboard
shows, re-evaluated conditions included, and a condition re-evaluated for only some runs of a model is marked."""

import csv
import json

from mfm_bench.cli import main
from mfm_bench.compare import compare, load

COND = "missing:text@0.5"


def test_compare_reads_the_re_evaluated_conditions_the_leaderboard_shows(posthoc_copy):
    out = posthoc_copy
    assert main(["evaluate", str(out), "--condition", COND]) == 0
    board = json.loads((out / "leaderboard.json").read_text())
    shown = board["datasets"]["synthetic-factors"][COND]["late"]["metrics"]["mae"]["by_seed"]
    values = load(out)
    assert values[("synthetic-factors", "late", COND, "mae")] == {int(k): v for k, v in shown.items()}
    rows = [r for r in compare(out, out) if r.condition == COND]
    assert rows and {r.seeds for r in rows} == {2} and all(r.diff == 0 for r in rows)
    assert "reevaluated" in board["datasets"]["synthetic-factors"][COND]["late"]
    assert "partial re-evaluation" not in (out / "leaderboard.md").read_text()  # every run was re-evaluated


def test_a_partial_re_evaluation_is_marked(posthoc_copy, run_folder):
    out = posthoc_copy
    run_dir = run_folder(out, "late", 0)
    assert main(["evaluate", str(run_dir), "--condition", COND]) == 0
    board = json.loads((out / "leaderboard.json").read_text())
    row = board["datasets"]["synthetic-factors"][COND]["late"]
    assert row["reevaluated"]["runs"] == 1 and row["reevaluated"]["of"] == 2 and row["seeds"] == 1
    md = (out / "leaderboard.md").read_text()
    assert "partial re-evaluation: synthetic-factors / late under missing:text@0.5" in md
    assert "1 of its 2 finished runs" in md and "(re-evaluated: 1 of 2 runs)" in md
    assert "partial re-evaluation" in (out / "leaderboard.html").read_text()


def _csv(out):
    with open(out / "leaderboard.csv", newline="") as f:
        return {(r["dataset"], r["condition"], r["model"]): r for r in csv.DictReader(f)}


def test_the_csv_marks_re_evaluated_numbers_as_the_json_does(posthoc_copy, run_folder):
    """leaderboard.csv gave a partial re-evaluation's numbers (over 1 of 2 seeds) with nothing to tell them from the
    runs' own numbers."""
    out = posthoc_copy
    assert main(["evaluate", str(run_folder(out, "late", 0)), "--condition", COND]) == 0
    assert main(["leaderboard", str(out), "--format", "csv", "--quiet"]) == 0
    reevaluated = json.loads((out / "leaderboard.json").read_text())["datasets"]["synthetic-factors"][COND]["late"]
    rows = _csv(out)
    partial = rows[("synthetic-factors", COND, "late")]
    assert (partial["seeds"], partial["reevaluated_runs"], partial["reevaluated_of"]) == ("1", "1", "2")
    assert partial["reevaluations"].split() == reevaluated["reevaluated"]["evaluations"]
    own = rows[("synthetic-factors", "clean", "late")]  # the runs' own numbers: no mark
    assert own["reevaluated_runs"] == own["reevaluated_of"] == own["reevaluations"] == ""
    # the whole folder re-evaluated: every run of the model, marked k == n (not partial)
    assert main(["evaluate", str(out), "--condition", COND]) == 0
    whole = _csv(out)[("synthetic-factors", COND, "late")]
    assert (whole["seeds"], whole["reevaluated_runs"], whole["reevaluated_of"]) == ("2", "2", "2")
    header = (out / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["dataset", "condition", "model", "seeds", "status"]
    assert header[-5:] == ["reevaluated_runs", "reevaluated_of", "reevaluations", "run", "error"]


def test_the_report_shows_the_leaderboards_notes(posthoc_copy, run_folder):
    """report.html left out the notes every leaderboard format shows (data warnings, mixed settings, partial
    re-evaluations)."""
    out = posthoc_copy
    run_dir = run_folder(out, "late", 0)
    assert main(["evaluate", str(run_dir), "--condition", COND]) == 0
    page = (out / "report.html").read_text()
    assert "<b>note:</b> partial re-evaluation: synthetic-factors / late under missing:text@0.5" in page


def test_evaluate_and_leaderboard_rewrite_the_report_with_the_tables(posthoc_copy, run_folder, capsys):
    """report.html, written by the run, used to keep the old numbers after the tables were rewritten."""
    out = posthoc_copy
    assert (out / "report.html").exists() and COND not in (out / "report.html").read_text()
    assert main(["evaluate", str(out), "--condition", COND]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    assert COND in (out / "report.html").read_text()  # the re-evaluated condition, as in the tables
    # a leaderboard in one format still refreshes the report the folder has (here: a note added since)
    run_dir = run_folder(out, "late", 0)
    assert main(["evaluate", str(run_dir), "--condition", "noise:audio:0.5", "--no-leaderboard"]) == 0
    assert "noise:audio:0.5" not in (out / "report.html").read_text()  # asked not to rewrite
    assert main(["leaderboard", str(out), "--format", "markdown", "--quiet"]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    assert "noise:audio:0.5" in (out / "report.html").read_text()


def test_a_report_goes_with_the_html_leaderboard_only(posthoc_copy):
    out = posthoc_copy
    (out / "report.html").unlink()
    (out / "leaderboard.html").unlink()
    assert main(["leaderboard", str(out), "--format", "markdown", "--quiet"]) == 0
    assert not (out / "report.html").exists()  # no report, no HTML asked for or in the folder: none written
    assert not (out / "leaderboard.html").exists()
    assert main(["leaderboard", str(out), "--quiet"]) == 0  # the suite's formats include html, as `run` writes it
    assert (out / "report.html").exists()
