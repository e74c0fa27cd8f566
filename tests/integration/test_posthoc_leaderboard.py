"""``mfm-bench leaderboard`` and ``mfm-bench report`` on a real output folder: options a user can get wrong."""

import pytest

from mfm_bench.cli import main


def test_reference_must_name_a_model_of_the_folder(posthoc_copy, capsys):
    out = posthoc_copy
    before = (out / "leaderboard.md").read_text()
    assert main(["leaderboard", str(out), "--reference", "lat", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--reference 'lat'" in err and "models: late (the label column" in err
    assert (out / "leaderboard.md").read_text() == before  # nothing rewritten
    assert main(["leaderboard", str(out), "--reference", "late", "--quiet"]) == 0
    assert "paired over seeds against late" in (out / "leaderboard.md").read_text()


def test_report_has_the_suites_paired_table(tmp_path, posthoc_suite):
    suite = (
        posthoc_suite.replace("seeds: [0, 1]", "seeds: [0]")
        .replace("report: {formats: [markdown, json, html]}", "report: {formats: [markdown], reference: late}")
        .replace("models:\n", "models:\n  - {name: supervised, label: concat, params: {fusion: concat}}\n")
    )
    assert "reference: late" in suite and "label: concat" in suite
    (tmp_path / "suite.yaml").write_text(suite)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(out), "--no-progress"]) == 0
    assert "paired over seeds against late" in (out / "leaderboard.md").read_text()
    assert main(["report", str(out)]) == 0
    assert "paired over seeds against late" in (out / "report.html").read_text()


@pytest.mark.parametrize("command", ["leaderboard", "report"])
def test_a_file_instead_of_the_folder_says_which_folder(posthoc_out, capsys, command):
    out = posthoc_out
    assert main([command, str(out / "results.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not an output folder" in err and f"pass the folder that holds it: {out}" in err
    suite = out.parent / "suite.yaml"
    assert main([command, str(suite)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not an output folder" in err and "--out" in err and f"--out {suite}" not in err


def test_report_survives_a_damaged_history_file(posthoc_copy):
    copy = posthoc_copy
    damaged, *_ = sorted((copy / "runs").iterdir())
    (damaged / "history.json").write_text('[{"epoch": 1, "train_lo')  # cut short
    assert main(["report", str(copy)]) == 0
    page = (copy / "report.html").read_text()
    assert "no training curves" in page and str(damaged / "history.json") in page
    assert page.count("training curves'") >= 1  # the other run keeps its curves


def test_a_report_that_cannot_be_written_is_one_error_naming_it(posthoc_copy, capsys):
    """A report.html that cannot be replaced (here a folder in its place) ended in an IsADirectoryError traceback."""
    copy = posthoc_copy
    (copy / "report.html").unlink()
    (copy / "report.html").mkdir()
    (copy / "report.html" / "keep").write_text("mine")
    assert main(["report", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"cannot use the report {copy / 'report.html'}: it is a folder, not a file" in err
    assert (copy / "report.html" / "keep").read_text() == "mine"  # nothing of the user's lost
    assert not list(copy.glob(".report.html*"))  # no temporary file left behind


def test_one_format_asked_for_rewrites_every_leaderboard_file_in_the_folder(posthoc_copy, capsys):
    """`leaderboard OUT --format json` rewrote only leaderboard.json: the Markdown and HTML next to it kept the
    numbers of before, without a word."""
    out = posthoc_copy
    assert main(["evaluate", str(out), "--condition", "noise:audio:0.5", "--no-leaderboard"]) == 0
    assert not any("noise:audio:0.5" in (out / f).read_text() for f in ("leaderboard.md", "leaderboard.html"))
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--format", "json", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"json: {out / 'leaderboard.json'}\n" in printed
    for name in ("leaderboard.md", "leaderboard.html"):
        assert f"{out / name} (already in the folder: rewritten so it matches the store)" in printed
    for name in ("leaderboard.json", "leaderboard.md", "leaderboard.html", "report.html"):
        assert "noise:audio:0.5" in (out / name).read_text(), name
    assert not (out / "leaderboard.csv").exists()  # neither asked for nor there: not written
    assert main(["leaderboard", str(out), "--format", "csv", "--quiet"]) == 0  # asked for: written, as before
    assert "noise:audio:0.5" in (out / "leaderboard.csv").read_text()


def test_a_format_that_cannot_be_rendered_leaves_every_file_as_it_was(posthoc_copy, monkeypatch, capsys):
    """Every format is rendered before any file is replaced: one that fails leaves none of them newer than another."""
    from mfm_bench import render

    out = posthoc_copy
    assert main(["evaluate", str(out), "--condition", "noise:audio:0.5", "--no-leaderboard"]) == 0
    before = {p.name: p.read_bytes() for p in [*out.glob("leaderboard.*"), out / "report.html"]}

    def broken(board):
        raise ValueError("a bug")

    monkeypatch.setattr(render, "html", broken)
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--format", "markdown", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot render the leaderboard html" in err and "no leaderboard file was rewritten" in err
    assert f"move {out / 'leaderboard.html'} away" in err
    assert {p.name: p.read_bytes() for p in [*out.glob("leaderboard.*"), out / "report.html"]} == before
