"""``mfm-bench evaluate``: saved models re-scored without retraining, rows marked as re-evaluations, per-sample
predictions as Parquet, clear errors for missing or foreign weights; store schema migration."""

import sqlite3

import pyarrow.parquet as pq
import pytest

from mfm_bench.cli import main
from mfm_bench.results import SCHEMA, SCHEMA_VERSION, ResultStore, StoreVersionError

SUITE = """\
name: tiny-eval
datasets:
  - name: synthetic-factors
    params: {n_train: 64, n_valid: 16, n_test: 24, dims: {text: 6, audio: 3, visual: 4}}
models:
  - {name: supervised, label: late, params: {fusion: late}}
seeds: [0]
train: {epochs: 1, batch_size: 32, device: cpu}
evaluate: {conditions: [clean, {missing: audio}]}
report: {formats: [json]}
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate")
    (tmp / "suite.yaml").write_text(SUITE)
    assert main(["run", str(tmp / "suite.yaml"), "--out", str(tmp / "out"), "--no-progress"]) == 0
    return tmp / "out"


def test_reevaluation_reproduces_the_run_and_adds_new_conditions(out, capsys):
    assert main(["evaluate", str(out), "--condition", "missing:text@0.5", "--condition", "drop:visual:0.5"]) == 0
    with ResultStore(out) as store:
        own = {(m["condition"], m["metric"]): m["value"] for m in store.metrics()}
        again = {(m["condition"], m["metric"]): m["value"] for m in store.reevaluations()}
        (prov,) = [__import__("json").loads(p) for (p,) in store.conn.execute("SELECT provenance FROM evaluations")]
    assert again[("clean", "mae")] == pytest.approx(own[("clean", "mae")], abs=1e-9)  # the same model, the same data
    assert ("missing:text@0.5", "mae") in again and ("missing:text@0.5", "mae") not in own
    assert prov["command"] == "evaluate" and prov["store_schema"] == SCHEMA_VERSION and "torch" in prov
    board = (out / "leaderboard.json").read_text()
    assert "missing:text@0.5" in board and "drop:visual:0.5" in board
    (parquet,) = (out / "evaluations").glob("*.parquet")
    table = pq.read_table(parquet).to_pylist()
    assert {r["condition"] for r in table} == {"clean", "missing:text@0.5", "drop:visual:0.5"}
    assert len(table) == 3 * 24 and {"id", "target", "prediction", "run_id", "evaluation_id"} <= set(table[0])
    assert len({r["id"] for r in table}) == 24


def test_one_run_folder(out):
    (run_dir,) = (out / "runs").iterdir()
    assert main(["evaluate", str(run_dir), "--condition", "noise:audio:0.3", "--no-leaderboard"]) == 0
    with ResultStore(out) as store:
        assert any(m["condition"] == "noise:audio:0.3" for m in store.reevaluations())


def test_missing_or_foreign_model_names_the_run(out, capsys, tmp_path):
    import shutil

    import torch

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (run_dir,) = (copy / "runs").iterdir()
    torch.save({"weight": torch.zeros(2)}, run_dir / "model.pt")
    assert main(["evaluate", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"run {run_dir.name}" in err and "does not match" in err
    (run_dir / "model.pt").unlink()
    assert main(["evaluate", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"run {run_dir.name}" in err and "no model" in err


def test_bad_condition_and_bad_path(out, capsys, tmp_path):
    assert main(["evaluate", str(out), "--condition", "missing:text@3"]) == 2
    assert "outside [0, 1]" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "neither an output folder" in capsys.readouterr().err


def test_old_store_is_migrated_without_touching_rows(tmp_path):
    db = tmp_path / "results.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(SCHEMA)
    conn.execute(
        "INSERT INTO runs (id, suite, dataset, model, label, seed, config, status) "
        "VALUES ('r1', 's', 'd', 'm', 'l', 0, '{}', 'finished')"
    )
    conn.execute("INSERT INTO metrics VALUES ('r1', 'clean', 'test', 'mae', 0.5, 0)")
    conn.commit()
    conn.close()
    with ResultStore(tmp_path) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.metrics()[0]["value"] == 0.5
        assert store.reevaluations() == []


def test_newer_store_is_refused_untouched(tmp_path):
    db = tmp_path / "results.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreVersionError, match=f"version {SCHEMA_VERSION + 1}.*up to {SCHEMA_VERSION}"):
        ResultStore(tmp_path)
    assert db.read_bytes() == before


def _copy(out, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    return copy


def test_unknown_modality_is_one_clear_error_and_records_nothing(out, capsys, tmp_path):
    copy = _copy(out, tmp_path)
    with ResultStore(copy) as store:
        before = store.conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    assert main(["evaluate", str(copy), "--condition", "missing:txt"]) == 2
    err = capsys.readouterr().err
    assert "--condition" in err and "no modality 'txt'" in err and "text, audio, visual" in err
    assert "Traceback" not in err
    with ResultStore(copy) as store:
        assert store.conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == before


def test_split_must_be_one_the_datasets_have(out, capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(out), "--split", "tset", "--no-leaderboard"])
    assert e.value.code == 2
    assert "--split" in capsys.readouterr().err


def test_other_splits_stay_out_of_the_test_leaderboard(out, tmp_path):
    copy = _copy(out, tmp_path)
    assert main(["evaluate", str(copy), "--split", "train", "--condition", "noise:visual:0.4"]) == 0
    assert main(["evaluate", str(copy), "--split", "valid", "--condition", "noise:visual:0.6"]) == 0
    with ResultStore(copy) as store:  # recorded, with their split
        new = ("noise:visual:0.4", "noise:visual:0.6")
        splits = {m["split"] for m in store.reevaluations() if m["condition"] in new}
    assert splits == {"train", "valid"}
    board = (copy / "leaderboard.json").read_text()
    assert "noise:visual:0.4" not in board and "noise:visual:0.6" not in board  # the leaderboard is the test split
    assert main(["evaluate", str(copy), "--condition", "noise:visual:0.4"]) == 0
    assert "noise:visual:0.4" in (copy / "leaderboard.json").read_text()


def test_a_folder_without_finished_runs_is_an_error(out, capsys, tmp_path):
    copy = _copy(out, tmp_path)
    with ResultStore(copy) as store:
        store.conn.execute("UPDATE runs SET status = 'interrupted'")
        before = store.conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    assert main(["evaluate", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "no finished run" in err and "1 interrupted" in err and "--resume" in err
    (run_dir,) = (copy / "runs").iterdir()
    assert main(["evaluate", str(run_dir)]) == 2
    assert f"run {run_dir.name} is interrupted" in capsys.readouterr().err
    with ResultStore(copy) as store:
        assert store.conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == before


def test_a_damaged_model_file_is_named_as_damaged(out, capsys, tmp_path):
    copy = _copy(out, tmp_path)
    (run_dir,) = (copy / "runs").iterdir()
    (run_dir / "model.pt").write_bytes((run_dir / "model.pt").read_bytes()[:100])  # cut short, as by a full disk
    assert main(["evaluate", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"run {run_dir.name}" in err and "cannot be read as saved weights" in err
    assert "does not match" not in err and "code or config changed" not in err


def test_a_missing_model_stops_before_any_run_is_scored(out, capsys, tmp_path):
    import shutil

    copy = _copy(out, tmp_path)
    (run_dir,) = (copy / "runs").iterdir()
    later = copy / "runs" / "later0123456789a"  # a second finished run, scored after the first, without its model
    shutil.copytree(run_dir, later)
    (later / "model.pt").unlink()
    with ResultStore(copy) as store:
        cols = "suite, dataset, model, label, seed, config, environment, status, error, started, finished, seconds"
        store.conn.execute(
            f"INSERT INTO runs (id, {cols}) SELECT 'later0123456789a', {cols.replace('started', 'started + 1')} "
            "FROM runs WHERE id = ?",
            (run_dir.name,),
        )
    assert main(["evaluate", str(copy)]) == 2
    captured = capsys.readouterr()
    assert "run later0123456789a" in captured.err and "no model" in captured.err
    assert "re-evaluated" not in captured.out  # checked first, before scoring the run before it


def test_predictions_that_cannot_be_written_are_one_error_and_record_nothing(out, capsys, tmp_path):
    import shutil

    copy = _copy(out, tmp_path)
    shutil.rmtree(copy / "evaluations", ignore_errors=True)
    (copy / "evaluations").write_text("")  # a file where the folder goes
    with ResultStore(copy) as store:
        before = store.conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    assert main(["evaluate", str(copy), "--condition", "clean"]) == 2
    err = capsys.readouterr().err
    assert "cannot use the predictions file" in err and "Traceback" not in err
    with ResultStore(copy) as store:  # no evaluation recorded without its predictions
        assert store.conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == before
