"""`run`, `explain` and the data layer meet broken files, full disks and missing data with one error line."""

import errno
import pickle
import sqlite3

import numpy as np
import pytest

from mfm_bench.cli import main

TINY = """\
name: tiny
datasets: [{name: synthetic-factors, params: {n_train: 24, n_valid: 8, n_test: 8}}]
models: [{name: supervised, params: {fusion: concat, encoder: mean}}]
train: {epochs: 1, device: cpu}
"""


def one_error(capsys, *words):
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_empty_or_bad_seeds_and_threads_are_refused(write_suite, capsys):
    path = str(write_suite(TINY))
    for argv, words in (
        [["--seeds", ""], "--seeds is empty"],
        [["--seeds", "1,1"], "lists 1 twice"],
        [["--seeds", "-3"], "out of range"],
        [["--threads", "-4"], "argument --threads: takes 0"],
    ):
        with pytest.raises(SystemExit) as info:
            main(["run", path, *argv])
        assert info.value.code == 2
        one_error(capsys, words)


def test_corrupt_store_is_reported_and_left_intact(write_suite, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    junk = b"this is not a database" * 100
    (out / "results.sqlite").write_bytes(junk)
    assert main(["run", str(write_suite(TINY)), "--out", str(out), "--no-progress"]) == 2
    one_error(capsys, "results.sqlite is not a usable results store", "choose another --out")
    assert (out / "results.sqlite").read_bytes() == junk


def test_out_into_proc_is_one_line(write_suite, capsys):
    assert main(["run", str(write_suite(TINY)), "--out", "/proc/mfm-bench-out", "--no-progress"]) == 2
    one_error(capsys, "cannot use the output folder /proc/mfm-bench-out")


def test_full_disk_while_writing_results(write_suite, tmp_path, monkeypatch, capsys):
    import mfm_bench.runner as runner

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "config.json")

    monkeypatch.setattr(runner, "atomic_write", full)
    out = tmp_path / "o"
    assert main(["run", str(write_suite(TINY)), "--out", str(out), "--no-progress"]) == 2
    one_error(capsys, "the disk is full", "--resume")
    with sqlite3.connect(out / "results.sqlite") as conn:  # still a healthy store
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_missing_data_fails_once_before_any_run(write_suite, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path / "wrong"))
    text = TINY.replace("datasets: [", "datasets: [ict-mmmo, youtube, ")
    out = tmp_path / "o"
    assert main(["run", str(write_suite(text)), "--out", str(out), "--no-progress"]) == 2
    err = one_error(
        capsys,
        "2 dataset(s)",
        "nothing was run",
        "mfm-bench fetch ict-mmmo",
        "mfm-bench fetch youtube",
        str(tmp_path / "wrong"),
    )
    assert "synthetic" not in err and "cannot use" not in err and not (out / "results.sqlite").exists()
    assert err.startswith("error: 2 dataset(s) of ")


def test_fetch_offline_is_the_offline_message_alone(write_suite, tmp_path, monkeypatch, capsys):
    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError(OSError(errno.ENETUNREACH, "Network is unreachable"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path / "empty"))
    monkeypatch.delenv("MFM_BENCH_MIRROR", raising=False)
    for text in (
        TINY.replace("datasets: [", "fetch: true\ndatasets: [youtube, "),  # the suite's, or a dataset's
        TINY.replace("datasets: [", "datasets: [{name: youtube, params: {fetch: true}}, "),
    ):
        assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
        one_error(capsys, "youtube", "No connection")
        assert not (tmp_path / "o" / "results.sqlite").exists()


def test_no_progress_bars_when_stderr_is_not_a_terminal(write_suite, tmp_path, capsys):
    assert main(["run", str(write_suite(TINY)), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "it/s" not in err and "run/s" not in err, err[:300]


def test_truncated_model_pt_given_to_explain(tmp_path, capsys):
    import json

    run = tmp_path / "run"
    run.mkdir()
    config = {
        "dataset": {"name": "synthetic-factors", "params": {"n_train": 16, "n_valid": 8, "n_test": 8}},
        "model": {"name": "mfm", "params": {"zy": 4, "za": 2, "fy": 3, "fa": 2}},
    }
    (run / "config.json").write_text(json.dumps(config))
    (run / "model.pt").write_bytes(b"PK\x03\x04" + bytes(40))
    assert main(["explain", str(run)]) == 2
    one_error(capsys, str(run / "model.pt"), "truncated")


def test_corrupt_arrow_cache_hints_cache_clear(tmp_path):
    from mfm_bench.data.cache import CacheError, load_or_build
    from mfm_bench.data.prepare import SplitArrays

    def build():
        return {
            s: SplitArrays(
                {"a": np.zeros((4, 3, 2), np.float32)},
                {"a": np.ones((4, 3), bool)},
                np.zeros(4, np.float32),
                [str(i) for i in range(4)],
            )
            for s in ("train", "test")
        }

    load_or_build("toy", [], {}, "1", build, root=tmp_path)
    for arrow in (tmp_path / "toy").rglob("*.arrow"):
        arrow.write_bytes(b"garbage" * 10)
    with pytest.raises(CacheError, match="mfm-bench cache clear toy"):
        load_or_build("toy", [], {}, "1", build, root=tmp_path)


def test_oversized_pickle_names_the_file(tmp_path, monkeypatch):
    from mfm_bench.data import pkl

    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))

    def exhausted(self):
        raise MemoryError

    monkeypatch.setattr(pkl._Restricted, "load", exhausted)
    with pytest.raises(pkl.PickleFormatError, match=f"{path}: not enough memory"):
        pkl.safe_load(path)


def _finished_runs(out) -> int:
    with sqlite3.connect(out / "results.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'finished'").fetchone()[0]


def test_unwritable_leaderboard_after_the_runs_is_one_line(write_suite, tmp_path, capsys):
    out = tmp_path / "o"
    (out / "leaderboard.md").mkdir(parents=True)  # something in the way of the Markdown leaderboard
    assert main(["run", str(write_suite(TINY)), "--out", str(out), "--no-progress"]) == 2
    err = one_error(capsys, f"cannot write the leaderboard {out / 'leaderboard.md'}", "results.sqlite", "fix that")
    assert f"then run `mfm-bench leaderboard {out}`" in err
    assert _finished_runs(out) == 1
    (out / "leaderboard.md").rmdir()
    assert main(["leaderboard", str(out), "--quiet"]) == 0  # the advice works
    assert (out / "leaderboard.md").is_file()


def test_leaderboard_render_bug_or_full_disk_is_one_line(write_suite, tmp_path, monkeypatch, capsys):
    import mfm_bench.leaderboard as lb
    import mfm_bench.render as render

    out = tmp_path / "o"
    assert main(["run", str(write_suite(TINY)), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(lb, "atomic_write", full)
    assert main(["leaderboard", str(out)]) == 2
    err = one_error(capsys, "No space left on device", f"mfm-bench leaderboard {out}`")
    assert "leaderboard.md" in err
    monkeypatch.undo()

    def broken(*a, **k):
        raise KeyError("mean")

    monkeypatch.setattr(render, "to_csv", broken)
    assert main(["leaderboard", str(out), "--format", "csv"]) == 2
    one_error(capsys, "cannot render the leaderboard csv", "KeyError", "--debug", "results.sqlite")
    assert _finished_runs(out) == 1
