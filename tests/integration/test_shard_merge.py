"""Shard and merge: shards 1/2 and 2/2 merged give the leaderboard of one unsharded run; the same id is kept
once; different results for one id are an error naming both folders."""

from __future__ import annotations

import sqlite3

import pytest

from mfm_bench.cli import main
from mfm_bench.leaderboard import collect
from mfm_bench.merge import TIMINGS, MergeConflictError, merge
from mfm_bench.provenance import origin
from mfm_bench.results import ResultStore
from mfm_bench.runner import expand, parse_shard, select_shard
from mfm_bench.suite import load_suite

SUITE = """\
name: shards
datasets: [{name: synthetic-factors, params: {n_train: 48, n_valid: 16, n_test: 24, \
dims: {text: 5, audio: 3}, seq_len: 5, min_len: 2}}]
models:
  - {name: supervised, label: concat, params: {encoder: mean, fusion: concat}}
  - {name: dummy, label: tiny}
seeds: [0, 1, 2]
train: {epochs: 4, batch_size: 16, threads: 1}
"""


def board(out):
    """The leaderboard's numbers, timings left out."""
    with ResultStore(out) as s:
        data = collect(s)
    for conds in data["datasets"].values():
        for models in conds.values():
            for row in models.values():
                for t in TIMINGS:
                    row["metrics"].pop(t, None)
    return data["datasets"], sorted((r["id"], r["status"]) for r in data["runs"])


def test_shards_partition_the_grid_deterministically(write_suite, dummy):
    runs = expand(load_suite(write_suite(SUITE)))
    parts = [select_shard(runs, (k, 4)) for k in (1, 2, 3, 4)]
    ids = [r.id for p in parts for r in p]
    assert sorted(ids) == sorted(r.id for r in runs) and len(set(ids)) == len(runs) == 6
    assert sorted(len(p) for p in parts) == [1, 1, 2, 2]
    assert [r.id for r in select_shard(expand(load_suite(write_suite(SUITE))), (2, 4))] == [r.id for r in parts[1]]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "x", "1/2/3"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_merged_shards_equal_the_unsharded_leaderboard(write_suite, tmp_path, dummy, capsys):
    path = str(write_suite(SUITE))
    assert main(["run", path, "--out", str(tmp_path / "all"), "--no-progress"]) == 0
    for k in (1, 2):
        assert main(["run", path, "--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}"), "--no-progress"]) == 0
        assert "3 run(s) finished" in capsys.readouterr().out
    assert main(["merge", str(tmp_path / "m"), str(tmp_path / "s1"), str(tmp_path / "s2")]) == 0
    assert "6 run(s) added" in capsys.readouterr().out
    assert board(tmp_path / "m") == board(tmp_path / "all")
    assert (tmp_path / "m" / "leaderboard.md").exists()
    assert all((tmp_path / "m" / "runs" / rid / "model.pt").exists() for rid, _ in board(tmp_path / "m")[1])

    # merging again, or the unsharded folder on top: every id kept once
    counts = merge(tmp_path / "m", [tmp_path / "s1", tmp_path / "all"])
    assert counts == {"added": 0, "same": 9, "replaced": 0, "evaluations": 0, "unfinished": 0}
    con = sqlite3.connect(tmp_path / "m" / "results.sqlite")
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM runs").fetchone() == (6, 6)
    assert (
        con.execute("SELECT count(*) FROM metrics").fetchone()[0]
        == sqlite3.connect(tmp_path / "all" / "results.sqlite").execute("SELECT count(*) FROM metrics").fetchone()[0]
    )

    # the merged folder belongs to the suite like the unsharded one: --resume finds everything done
    with ResultStore(tmp_path / "m") as m, ResultStore(tmp_path / "all") as a:
        assert m.get_meta("suite") == a.get_meta("suite") is not None
        assert m.get_meta("formats") == a.get_meta("formats")
    capsys.readouterr()
    assert main(["run", path, "--out", str(tmp_path / "m"), "--resume", "--no-progress"]) == 0
    assert "0 run(s) finished, 0 failed, 6 skipped" in capsys.readouterr().out


def test_shards_of_another_suite_do_not_merge(write_suite, tmp_path, dummy):
    path = str(write_suite(SUITE))
    other = str(write_suite(SUITE.replace("name: shards", "name: other"), "other.yaml"))
    assert main(["run", path, "--shard", "1/2", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert main(["run", other, "--shard", "2/2", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    with pytest.raises(MergeConflictError, match="merge only shards of one suite"):
        merge(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])


def test_conflicting_results_for_one_id_name_both_folders(write_suite, tmp_path, dummy):
    path = str(write_suite(SUITE))
    assert main(["run", path, "--shard", "1/2", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert main(["run", path, "--shard", "1/2", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    con = sqlite3.connect(tmp_path / "b" / "results.sqlite")
    con.execute("UPDATE metrics SET value = value + 1 WHERE metric = 'mae' AND condition = 'clean'")
    con.commit()
    with pytest.raises(MergeConflictError) as e:
        merge(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])
    message = str(e.value)
    assert str(tmp_path / "a") in message and str(tmp_path / "b") in message and "clean/test/mae" in message
    assert main(["merge", str(tmp_path / "m2"), str(tmp_path / "nothing")]) == 2


def test_merge_keeps_reevaluations_of_a_shard(write_suite, tmp_path, dummy, capsys):
    """A shard re-scored with `mfm-bench evaluate` (a condition the suite never ran) merges with its re-evaluation:
    the merged store, leaderboard and predictions file show it exactly as the shard's own folder did."""
    path = str(write_suite(SUITE.replace("seeds: [0, 1, 2]", "seeds: [0]")))
    for k in (1, 2):
        assert main(["run", path, "--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}"), "--no-progress"]) == 0
    assert main(["evaluate", str(tmp_path / "s1"), "--condition", "missing:audio", "--no-leaderboard"]) == 0
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "m"), str(tmp_path / "s1"), str(tmp_path / "s2")]) == 0
    assert "1 re-evaluation(s) added" in capsys.readouterr().out
    with ResultStore(tmp_path / "s1") as s, ResultStore(tmp_path / "m") as m:
        (ev,) = s.evaluations()
        assert ev["rows"] and m.evaluations() == [ev] and m.reevaluations() == s.reevaluations()
    shard, merged = board(tmp_path / "s1")[0], board(tmp_path / "m")[0]
    ((dataset, conditions),) = shard.items()
    assert conditions["missing:audio"] and merged[dataset]["missing:audio"] == conditions["missing:audio"]
    assert "missing:audio" in (tmp_path / "m" / "leaderboard.md").read_text()
    name = f"{ev['id']}.parquet"
    assert (tmp_path / "m" / "evaluations" / name).read_bytes() == (tmp_path / "s1" / "evaluations" / name).read_bytes()

    # the same re-evaluation again is kept once; a changed copy of it is an error naming both folders
    assert merge(tmp_path / "m", [tmp_path / "s1"])["evaluations"] == 0
    con = sqlite3.connect(tmp_path / "s1" / "results.sqlite")
    con.execute("UPDATE reevaluations SET value = value + 1 WHERE metric = 'mae'")
    con.commit()
    with pytest.raises(MergeConflictError, match=f"re-evaluation {ev['id']}") as e:
        merge(tmp_path / "m", [tmp_path / "s1"])
    assert str(tmp_path / "m") in str(e.value) and str(tmp_path / "s1") in str(e.value)


def test_merge_into_a_file_is_one_clear_line(write_suite, tmp_path, dummy, capsys):
    path = str(write_suite(SUITE.replace("seeds: [0, 1, 2]", "seeds: [0]")))
    assert main(["run", path, "--shard", "1/2", "--out", str(tmp_path / "s1"), "--no-progress"]) == 0
    capsys.readouterr()
    (tmp_path / "qs.yaml").write_text("name: x\n")
    assert main(["merge", str(tmp_path / "qs.yaml"), str(tmp_path / "s1")]) == 2
    err = capsys.readouterr().err
    assert f"cannot use the output folder {tmp_path / 'qs.yaml'}: it is a file" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "qs.yaml").read_text() == "name: x\n"


def _files(folder):
    """Every file under ``folder`` but SQLite's own (WAL, shared memory), and the store's rows."""
    con = sqlite3.connect(folder / "results.sqlite")
    rows = list(con.iterdump())
    con.close()
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if "sqlite-" not in p.name)
    return files, rows


def test_a_refused_merge_leaves_out_as_it_was(write_suite, tmp_path, dummy):
    """Every folder is checked before OUT is written: a conflict in the second shard leaves no runs of the first
    in OUT (new or earlier), and a configuration mismatch names the two shards, not OUT."""
    path = str(write_suite(SUITE))
    for name in ("a", "b"):
        assert main(["run", path, "--shard", "1/2", "--out", str(tmp_path / name), "--no-progress"]) == 0
    assert main(["run", path, "--shard", "2/2", "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    con = sqlite3.connect(tmp_path / "b" / "results.sqlite")
    con.execute("UPDATE metrics SET value = value + 1 WHERE metric = 'mae' AND condition = 'clean'")
    con.commit()
    with pytest.raises(MergeConflictError, match="has different results"):
        merge(tmp_path / "new", [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "new").exists()

    merge(tmp_path / "m", [tmp_path / "c"])
    before = _files(tmp_path / "m")
    with pytest.raises(MergeConflictError, match="has different results"):
        merge(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])
    assert _files(tmp_path / "m") == before

    other = str(write_suite(SUITE.replace("epochs: 4", "epochs: 3"), "other.yaml"))
    assert main(["run", other, "--shard", "2/2", "--out", str(tmp_path / "x"), "--no-progress"]) == 0
    with pytest.raises(MergeConflictError, match="another configuration") as e:
        merge(tmp_path / "mx", [tmp_path / "a", tmp_path / "x"])
    assert f"{tmp_path / 'x'} holds" in str(e.value) and f"than {tmp_path / 'a'} " in str(e.value)
    assert not (tmp_path / "mx").exists()


def test_merged_rows_come_in_the_suites_order(write_suite, tmp_path, dummy):
    """Shards merged in any order list the models as one unsharded run does (the suite's order)."""
    path = str(write_suite(SUITE.replace("seeds: [0, 1, 2]", "seeds: [0]")))
    assert main(["run", path, "--out", str(tmp_path / "all"), "--no-progress"]) == 0
    for k in (1, 2):
        assert main(["run", path, "--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}"), "--no-progress"]) == 0
    merge(tmp_path / "m", [tmp_path / "s2", tmp_path / "s1"])

    def order(out):
        with ResultStore(out) as s:
            ((dataset, conditions),) = collect(s)["datasets"].items()
        return list(conditions["clean"])

    assert order(tmp_path / "m") == order(tmp_path / "all") == ["concat", "tiny"]


def test_merge_with_html_writes_the_report_as_run_does(write_suite, tmp_path, dummy, capsys):
    path = str(write_suite(SUITE))
    for k in (1, 2):
        assert main(["run", path, "--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "m"), str(tmp_path / "s1"), str(tmp_path / "s2"), "--formats", "html"]) == 0
    assert f"report: {tmp_path / 'm' / 'report.html'}" in capsys.readouterr().out
    assert (tmp_path / "m" / "leaderboard.html").exists() and (tmp_path / "m" / "report.html").stat().st_size > 0


def test_shards_from_another_kind_of_node_merge_with_a_note_naming_each(
    write_suite, tmp_path, dummy, capsys, recorded_as
):
    """A Slurm array can land shards on nodes of other CPU types, whose kernels round differently: the merge goes
    on (the runs are the suite's), and its output and the leaderboard say which runs came from which CPU."""
    path = str(write_suite(SUITE))
    for k in (1, 2):
        assert main(["run", path, "--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "same"), str(tmp_path / "s1"), str(tmp_path / "s2")]) == 0
    assert "note:" not in capsys.readouterr().out  # one machine, one checkout: nothing to say
    assert "made with different" not in (tmp_path / "same" / "leaderboard.md").read_text()

    recorded_as(tmp_path / "s2", cpu="AMD EPYC 7B13", cpu_capability="AVX2", onednn_linear="on (auto: AuthenticAMD)")
    assert main(["merge", str(tmp_path / "m"), str(tmp_path / "s1"), str(tmp_path / "s2")]) == 0
    out = capsys.readouterr().out
    with ResultStore(tmp_path / "s1") as s:
        here = origin(s.runs("finished")[0]["environment"])["hardware"]
    assert "note: the merged runs were made with different hardware: " in out
    assert f"{here} (3 runs)" in out and "AMD EPYC 7B13 (AVX2, oneDNN linear on) (3 runs)" in out
    assert "different code" not in out and "different torch" not in out
    md = (tmp_path / "m" / "leaderboard.md").read_text()
    assert "finished runs were made with different hardware" in md and "AMD EPYC 7B13" in md
    with ResultStore(tmp_path / "m") as s:
        origins = {r["origin"]["hardware"] for r in collect(s)["runs"]}
    assert origins == {here, "AMD EPYC 7B13 (AVX2, oneDNN linear on)"}
