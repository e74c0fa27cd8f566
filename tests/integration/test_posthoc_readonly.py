"""A finished output folder that cannot be written (a read-only mount, an archive, a colleague's results): the
commands that only read it work on it as it is, and those that must write say so, naming it and what to do.

Root may write anywhere but on a read-only mount, so where the tests run as root the folder's writability is what
``os.access`` answers for it (as on such a mount); SQLite itself opens the store read-only either way."""

import os
import shutil

import pytest

from mfm_bench import results
from mfm_bench.cli import main
from mfm_bench.errors import StorageError
from mfm_bench.results import DB_NAME, ResultStore


@pytest.fixture(scope="module")
def finished(posthoc_out):
    """The session's small finished folder (tests/integration/conftest.py): one model, two seeds."""
    return posthoc_out


@pytest.fixture
def readonly(finished, tmp_path, monkeypatch):
    """A copy of the finished folder, made read-only."""
    folder = tmp_path / "archive"
    shutil.copytree(finished, folder)
    files = [p for p in folder.rglob("*") if p.is_file()]
    for p in files:
        p.chmod(0o444)
    for p in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True) + [folder]:
        p.chmod(0o555)
    real = os.access

    def access(path, mode, *a, **k):  # as a read-only mount answers, for root too
        inside = str(os.fspath(path)).startswith(str(folder))
        return False if inside and mode & os.W_OK else real(path, mode, *a, **k)

    monkeypatch.setattr(results.os, "access", access)
    before = {p: p.read_bytes() for p in files}
    yield folder
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing added
    for p in [folder, *folder.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def test_opening_it_for_writing_names_the_folder_and_what_to_do(readonly):
    with pytest.raises(StorageError) as e:
        ResultStore(readonly)
    msg = str(e.value)
    assert f"the output folder {readonly} cannot be written" in msg
    assert f"cp -r {readonly} COPY" in msg and "`mfm-bench compare` and `merge` (a shard) only read it" in msg
    assert "not a usable results store" not in msg and "move it away" not in msg


def test_it_reads_read_only(readonly):
    with ResultStore(readonly, readonly=True) as store:
        assert len(store.runs("finished")) == 2 and store.metrics()
        with pytest.raises(Exception, match="readonly"):
            store.set_meta("x", 1)


def test_compare_works_on_it(readonly, finished, capsys):
    assert main(["compare", str(finished), str(readonly)]) == 0
    assert "no regression in" in capsys.readouterr().out


def test_leaderboard_prints_the_table_without_writing(readonly, capsys):
    assert main(["leaderboard", str(readonly)]) == 0
    captured = capsys.readouterr()
    assert "| late" in captured.out and "acc" in captured.out
    assert f"{readonly} cannot be written" in captured.err and "cp -r" in captured.err


def test_report_and_evaluate_say_the_folder_cannot_be_written(readonly, capsys):
    assert main(["report", str(readonly)]) == 2
    err = capsys.readouterr().err
    assert f"{readonly} cannot be written" in err and "cp -r" in err and "mfm-bench report COPY" in err
    assert main(["evaluate", str(readonly)]) == 2
    err = capsys.readouterr().err
    assert f"the output folder {readonly} cannot be written" in err and "cp -r" in err


def test_an_old_store_is_read_without_migrating(tmp_path):
    folder = tmp_path / "old"
    with ResultStore(folder) as store:
        store.conn.execute("DROP TABLE reevaluations")
        store.conn.execute("DROP TABLE evaluations")
        store.conn.execute("PRAGMA user_version = 1")
    before = (folder / DB_NAME).read_bytes()
    with ResultStore(folder, readonly=True) as store:
        assert store.version == 1 and store.metrics_and_reevaluations() == [] and store.evaluations() == []
    assert (folder / DB_NAME).read_bytes() == before


def test_unsaved_wal_rows_are_not_skipped_silently(tmp_path, monkeypatch):
    """A store whose last writes are still in results.sqlite-wal, in a folder that cannot be written and without the
    -shm file SQLite needs to read them (it cannot create one there): reading it as immutable would silently miss
    those rows, so it is refused, naming the file and saying to copy the folder."""
    import sqlite3

    folder = tmp_path / "archive"
    writer = ResultStore(folder)
    writer.conn.execute("PRAGMA wal_autocheckpoint=0")
    writer.set_meta("suite", "x")  # only in the -wal file until a checkpoint
    assert (folder / (DB_NAME + "-wal")).stat().st_size > 0
    real_access, real_connect = os.access, sqlite3.connect
    monkeypatch.setattr(
        results.os, "access", lambda p, m, *a, **k: False if m & os.W_OK else real_access(p, m, *a, **k)
    )

    def connect(target, *a, **k):  # what SQLite answers there: no -shm can be made, so mode=ro cannot open it
        if str(target).endswith("mode=ro"):
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(target, *a, **k)

    monkeypatch.setattr(results.sqlite3, "connect", connect)
    with pytest.raises(results.StoreError) as e:
        ResultStore(folder, readonly=True)
    assert "results.sqlite-wal" in str(e.value) and f"cp -r {folder} COPY" in str(e.value)
    writer.close()


def test_merge_reads_a_read_only_shard(readonly, tmp_path, capsys):
    """merge only reads its shards; one that cannot be written was refused as if merge had to write into it."""
    merged = tmp_path / "merged"
    assert main(["merge", str(merged), str(readonly)]) == 0
    with ResultStore(merged) as store:
        assert len(store.runs("finished")) == 2
