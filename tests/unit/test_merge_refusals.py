"""`mfm-bench merge` refusals name the folders and what differs, before OUT is created (stores built by hand)."""

from __future__ import annotations

import pytest

from mfm_bench.errors import MfmBenchError
from mfm_bench.merge import MergeConflictError, merge
from mfm_bench.outdir import fingerprint
from mfm_bench.results import ResultStore

GRID = [{"dataset": {"name": "synthetic-factors"}, "model": {"label": "concat"}, "train": {"epochs": 2}}]


def shard(folder, name="small", grid=GRID):
    with ResultStore(folder) as s:
        s.set_meta("suite", fingerprint(name, grid))
    return folder


def test_shards_of_two_suites_are_refused_naming_both_suites(tmp_path):
    a, b = shard(tmp_path / "a"), shard(tmp_path / "b", name="other")
    with pytest.raises(MergeConflictError) as e:
        merge(tmp_path / "out", [a, b], log=lambda _: None)
    msg = str(e.value)
    assert f"{b} holds results of suite 'other', {a} of suite 'small'" in msg, msg
    assert "another configuration" not in msg
    assert not (tmp_path / "out").exists()


def test_shards_of_two_configurations_name_the_first_difference(tmp_path):
    other = [{**GRID[0], "train": {"epochs": 1}}]
    a, b = shard(tmp_path / "a"), shard(tmp_path / "b", grid=other)
    with pytest.raises(MergeConflictError, match=r"grid\[0\]\.train\.epochs: 2 -> 1") as e:
        merge(tmp_path / "out", [a, b], log=lambda _: None)
    assert f"{b} holds results of suite 'small' in another configuration than {a}" in str(e.value)


def test_a_folder_that_does_not_exist_is_named_as_missing(tmp_path):
    a = shard(tmp_path / "a")
    with pytest.raises(MfmBenchError, match=r"no such folder: .*nothere"):
        merge(tmp_path / "out", [a, tmp_path / "nothere"], log=lambda _: None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MfmBenchError, match=r"empty holds no results.sqlite"):
        merge(tmp_path / "out", [a, tmp_path / "empty"], log=lambda _: None)
    assert not (tmp_path / "out").exists()


def test_a_bad_formats_option_is_refused_before_out_is_written(tmp_path, capsys):
    from mfm_bench.cli import main

    a = shard(tmp_path / "a")
    for bad in ("pdf", "markdown,", "markdown,,csv"):
        with pytest.raises(SystemExit) as e:  # argparse's usage error
            main(["merge", str(tmp_path / "out"), str(a), "--formats", bad])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "--formats" in err and "markdown, csv, json, html" in err, err
        assert not (tmp_path / "out").exists()


def test_merge_help_names_out_as_the_docs_do(capsys):
    from mfm_bench.cli import main

    with pytest.raises(SystemExit):
        main(["merge", "--help"])
    out = capsys.readouterr().out
    assert "OUT SHARD_DIR [SHARD_DIR ...]" in out
    assert "--resume" in out  # how to finish an interrupted shard, or the merged folder


def unfinished_shard(folder, status="interrupted"):
    shard(folder)
    with ResultStore(folder) as s:
        config = {"dataset": {"name": "synthetic-factors"}, "model": {"name": "supervised"}, "seed": 0}
        s.start({"id": "r1", "suite": "small", "label": "concat", "config": config}, {})
        if status != "running":
            s.fail("r1", "stopped", 0.0, status=status)
    return folder


def test_the_summary_counts_runs_merged_unfinished(tmp_path, capsys):
    from mfm_bench.cli import main

    a = unfinished_shard(tmp_path / "a")
    assert main(["merge", str(tmp_path / "out"), str(a)]) == 0
    out = capsys.readouterr().out
    assert "1 run(s) added," in out
    assert "; 1 run(s) not finished (finish their shard with --resume, then merge it again)" in out, out


def test_a_shard_still_being_written_is_merged_with_a_warning(tmp_path, capsys):
    from mfm_bench.cli import main
    from mfm_bench.lock import OutputLock

    a = unfinished_shard(tmp_path / "a", status="running")
    with OutputLock(a):  # a run of the shard holds its folder
        assert main(["merge", str(tmp_path / "out"), str(a)]) == 0
    out = capsys.readouterr().out
    assert f"warning: {a} is still being written by another mfm-bench run" in out, out
    assert main(["merge", str(tmp_path / "out2"), str(a)]) == 0
    assert "still being written" not in capsys.readouterr().out


def test_an_out_in_use_is_refused_in_merges_own_words(tmp_path):
    from mfm_bench.lock import OutputLock, OutputLockedError

    a = shard(tmp_path / "a")
    out = shard(tmp_path / "out")
    with OutputLock(out), pytest.raises(OutputLockedError) as e:  # a run still writes OUT
        merge(out, [a], log=lambda _: None)
    msg = str(e.value)
    assert f"{out} is in use by another mfm-bench run" in msg and "or give another OUT" in msg, msg
    assert "--out" not in msg  # merge has no --out option
