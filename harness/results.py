"""ResultStore: one SQLite file (WAL mode) per output folder; each run's result is written in one transaction,
so a killed process leaves whole rows or none, and a failed run never touches the rows of another."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import MfmBenchError, StorageError, storage_error
from .io import atomic_write  # noqa: F401 - re-exported: writers of the output folder import it from here
from .metric_catalog import higher_is_better

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    label TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    environment TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    error TEXT,
    started REAL,
    finished REAL,
    seconds REAL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    condition TEXT NOT NULL,
    split TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    higher_is_better INTEGER,
    PRIMARY KEY (run_id, condition, split, metric)
);
CREATE TABLE IF NOT EXISTS searches (
    dataset TEXT NOT NULL,
    label TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (dataset, label)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

#: Version of the store's layout, kept in SQLite's ``user_version``; :func:`migrate` brings older stores up to it.
SCHEMA_VERSION = 2

#: Tables added by version 2: re-evaluations of saved models (``mfm-bench evaluate``), each with its provenance.
#: The metrics a suite run wrote are never changed by a re-evaluation.
SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS evaluations (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    provenance TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reevaluations (
    evaluation_id TEXT NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    condition TEXT NOT NULL,
    split TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    higher_is_better INTEGER,
    PRIMARY KEY (evaluation_id, run_id, condition, split, metric)
);
"""

DB_NAME = "results.sqlite"
RUN_COLUMNS = [
    "id",
    "suite",
    "dataset",
    "model",
    "label",
    "seed",
    "config",
    "environment",
    "status",
    "error",
    "started",
    "finished",
    "seconds",
]


class StoreError(MfmBenchError):
    """A ``results.sqlite`` that cannot be opened or is not a results store (corrupt, another file)."""


class StoreVersionError(MfmBenchError):
    """A store written by a newer mfm-bench than this one: it is left untouched."""


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the store at ``conn`` to :data:`SCHEMA_VERSION` in one transaction (only new tables are added; no
    row is changed). Returns the version found. A newer store raises :class:`StoreVersionError` untouched."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{path} has store schema version {found}, written by a newer mfm-bench; this one "
            f"reads versions up to {SCHEMA_VERSION}: upgrade mfm-bench (the file was not changed)"
        )
    if found < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in (SCHEMA + SCHEMA_V2).split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found


class ResultStore:
    """``ResultStore(folder)``: the runs and metrics of every suite run into ``folder``. ``readonly=True`` (the
    leaderboard, the report and compare, which only read) opens an existing store without writing to it, so a
    folder that cannot be written (a read-only mount, another user's results) can still be read."""

    def __init__(self, folder: str | Path, readonly: bool = False) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self.readonly = readonly
        if readonly:
            self._open_readonly()
            return
        if self.folder.is_dir() and not writable(self.folder, self.path):
            raise StorageError(read_only_message(self.folder))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except OSError as e:
            raise storage_error(e, f"the output folder {self.folder}") from None
        except sqlite3.Error as e:
            raise StoreError(
                f"{self.path} cannot be opened ({e}); check the folder's permissions or choose another --out"
            ) from None
        try:
            migrate(self.conn, self.path)  # first: a newer store is refused before anything is written
            self.version = SCHEMA_VERSION
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as e:
            self.conn.close()
            if not writable(self.folder, self.path):  # made read-only meanwhile, or a check access() cannot see
                raise StorageError(read_only_message(self.folder)) from None
            raise StoreError(
                f"{self.path} is not a usable results store ({e}); it was left as it is: move it "
                "away, or choose another --out"
            ) from None
        except BaseException:
            self.conn.close()
            raise

    def _open_readonly(self) -> None:
        """Open with SQLite's ``mode=ro``; a WAL store in a folder that cannot be written has no ``-shm`` file to
        share, so it is then read as ``immutable`` (nothing can be writing to a folder nobody can write)."""
        uri = self.path.absolute().as_uri()
        tries = [f"{uri}?mode=ro"]
        wal = self.path.with_name(self.path.name + "-wal")
        pending = wal.exists() and wal.stat().st_size > 0  # rows not yet in the main file: immutable would miss them
        if not writable(self.folder, self.path) and not pending:
            tries.append(f"{uri}?mode=ro&immutable=1")
        error: sqlite3.Error | None = None
        for target in tries:
            try:
                self.conn = sqlite3.connect(target, uri=True, timeout=30, isolation_level=None)
            except sqlite3.Error as e:
                error = e
                continue
            try:
                found = self.conn.execute("PRAGMA user_version").fetchone()[0]
                self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()
            except sqlite3.Error as e:
                self.conn.close()
                error = e
                continue
            if found > SCHEMA_VERSION:
                self.conn.close()
                raise StoreVersionError(
                    f"{self.path} has store schema version {found}, written by a newer mfm-bench; this one "
                    f"reads versions up to {SCHEMA_VERSION}: upgrade mfm-bench (the file was not changed)"
                )
            self.version = found
            return
        if pending and not writable(self.folder, self.path):
            raise StoreError(
                f"{self.path} cannot be read where it is ({error}): its last writes are still in {wal.name}, which "
                f"SQLite can only read where it may write; the folder {self.folder} cannot be written, so copy it "
                f"(cp -r {self.folder} COPY) and use the copy"
            )
        raise StoreError(
            f"{self.path} cannot be read as a results store ({error}); it was left as it is: check that it is the "
            "results.sqlite of `mfm-bench run` and that you may read it"
        )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. Any exception, Ctrl-C included, rolls back whatever is open, wherever it lands:
        a KeyboardInterrupt raised just after BEGIN (before the body) used to leave the transaction open, and the
        next write failed with "cannot start a transaction within a transaction"."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def get_meta(self, key: str) -> Any:
        """A value the folder's runs share (``suite``: the suite's fingerprint; ``formats``), or None."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value, sort_keys=True))
            )

    def clear(self) -> None:
        """Forget every run, metric, search record, re-evaluation and meta value (``--overwrite`` of a folder that
        held another suite)."""
        tables = ("metrics", "runs", "searches", "meta")
        if self.version >= 2:  # an older store read as it is has no re-evaluations
            tables += ("reevaluations", "evaluations")
        with self.transaction() as c:
            for table in tables:
                c.execute(f"DELETE FROM {table}")

    def status(self, run_id: str) -> str | None:
        row = self.conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row[0] if row else None

    def start(self, run: dict[str, Any], environment: dict[str, Any]) -> None:
        """Mark a run as running (replacing an unfinished earlier attempt and its metrics). The config keeps its
        key order: a dataset may depend on the order of a mapping (synthetic-factors generates ``dims`` in
        order), and ``mfm-bench evaluate`` rebuilds the dataset from this config."""
        with self.transaction() as c:
            c.execute("DELETE FROM runs WHERE id = ?", (run["id"],))
            c.execute(
                "INSERT INTO runs (id, suite, dataset, model, label, seed, config, environment, status, started)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                (
                    run["id"],
                    run["suite"],
                    run.get("dataset_label") or run["config"]["dataset"]["name"],
                    run["config"]["model"]["name"],
                    run["label"],
                    run["config"]["seed"],
                    json.dumps(run["config"]),
                    json.dumps(environment, sort_keys=True),
                    time.time(),
                ),
            )

    def add_environment(self, run_id: str, extra: dict[str, Any]) -> None:
        """Merge ``extra`` into a running run's environment (facts known only once its data is built)."""
        with self.transaction() as c:
            row = c.execute("SELECT environment FROM runs WHERE id = ?", (run_id,)).fetchone()
            env = json.loads(row[0]) if row and row[0] else {}
            c.execute(
                "UPDATE runs SET environment = ? WHERE id = ?",
                (json.dumps(env | extra, sort_keys=True, default=str), run_id),
            )

    def finish(
        self,
        run_id: str,
        metrics: list[tuple[str, str, str, float]],
        seconds: float,
        environment: dict[str, Any] | None = None,
    ) -> None:
        """Record a finished run's metrics and status (and the environment it ran in) in one transaction."""
        with self.transaction() as c:
            if environment is not None:
                c.execute(
                    "UPDATE runs SET environment = ? WHERE id = ?",
                    (json.dumps(environment, sort_keys=True, default=str), run_id),
                )
            c.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            c.executemany(
                "INSERT INTO metrics (run_id, condition, split, metric, value, higher_is_better)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, cond, split, m, _finite(v), _hib(m)) for cond, split, m, v in metrics],
            )
            c.execute(
                "UPDATE runs SET status = 'finished', error = NULL, finished = ?, seconds = ? WHERE id = ?",
                (time.time(), seconds, run_id),
            )

    def note(self, run_id: str, environment: dict[str, Any]) -> None:
        """Replace a run's environment record (e.g. to add the dataset's warnings)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET environment = ? WHERE id = ?",
                (json.dumps(environment, sort_keys=True, default=str), run_id),
            )

    def fail(
        self,
        run_id: str,
        error: str,
        seconds: float,
        status: str = "failed",
        environment: dict[str, Any] | None = None,
        only_running: bool = False,
    ) -> None:
        """Record a run as failed (or ``status``); with ``only_running``, only if its row says running."""
        where = "id = ?" + (" AND status = 'running'" if only_running else "")
        with self.transaction() as c:
            if environment is not None:
                c.execute(
                    f"UPDATE runs SET environment = ? WHERE {where}",
                    (json.dumps(environment, sort_keys=True, default=str), run_id),
                )
            c.execute(
                f"UPDATE runs SET status = ?, error = ?, finished = ?, seconds = ? WHERE {where}",
                (status, error, time.time(), seconds, run_id),
            )

    def insert(self, run: dict[str, Any], metrics: list[dict[str, Any]]) -> None:
        """Copy a whole run row (as :meth:`runs` returns it) and its metrics from another store, in one
        transaction, replacing what this store had under its id (``mfm-bench merge``)."""
        row = {
            **run,
            "config": json.dumps(run["config"]),  # key order kept, as start() keeps it
            "environment": json.dumps(run["environment"], sort_keys=True),
        }
        with self.transaction() as c:
            c.execute("DELETE FROM runs WHERE id = ?", (run["id"],))
            c.execute(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                [row[k] for k in RUN_COLUMNS],
            )
            c.executemany(
                "INSERT INTO metrics (run_id, condition, split, metric, value, higher_is_better)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (run["id"], m["condition"], m["split"], m["metric"], m["value"], m["higher_is_better"])
                    for m in metrics
                ],
            )

    def record_search(self, dataset: str, label: str, record: dict[str, Any]) -> None:
        """The outcome of one model's hyperparameter search on one dataset (mfm_bench.search_run)."""
        with self.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO searches (dataset, label, record) VALUES (?, ?, ?)",
                (dataset, label, json.dumps(record, sort_keys=True)),
            )

    def searches(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT dataset, label, record FROM searches ORDER BY dataset, label")
        return [{"dataset": d, "label": lab, **json.loads(r)} for d, lab, r in rows]

    def runs(self, status: str | None = None) -> list[dict[str, Any]]:
        q = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
        args: tuple = ()
        if status:
            q += " WHERE status = ?"
            args = (status,)
        cols = RUN_COLUMNS
        out = []
        for row in self.conn.execute(q + " ORDER BY started", args):
            d = dict(zip(cols, row))
            d["config"] = json.loads(d["config"])
            d["environment"] = json.loads(d["environment"]) if d["environment"] else {}
            out.append(d)
        return out

    def record_evaluation(
        self, evaluation_id: str, provenance: dict[str, Any], rows: list[tuple[str, str, str, str, float]]
    ) -> None:
        """Record a re-evaluation: its provenance and rows of (run id, condition, split, metric, value), at once."""
        with self.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO evaluations (id, created, provenance) VALUES (?, ?, ?)",
                (evaluation_id, time.time(), json.dumps(provenance, sort_keys=True, default=str)),
            )
            c.executemany(
                "INSERT OR REPLACE INTO reevaluations (evaluation_id, run_id, condition, split, metric, value,"
                " higher_is_better) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(evaluation_id, r, cond, split, m, _finite(v), _hib(m)) for r, cond, split, m, v in rows],
            )

    def evaluations(self) -> list[dict[str, Any]]:
        """Each re-evaluation whole, oldest first: ``id``, ``created``, ``provenance`` (a dict) and ``rows``, a
        sorted list of (run id, condition, split, metric, value, higher_is_better) (``mfm-bench merge``)."""
        rows: dict[str, list[tuple]] = {}
        if self.version < 2:  # an older store read as it is: it has no re-evaluations
            return []
        q = (
            "SELECT evaluation_id, run_id, condition, split, metric, value, higher_is_better FROM reevaluations"
            " ORDER BY evaluation_id, run_id, condition, split, metric"
        )
        for eid, *row in self.conn.execute(q):
            rows.setdefault(eid, []).append(tuple(row))
        out = []
        for eid, created, prov in self.conn.execute("SELECT id, created, provenance FROM evaluations ORDER BY created"):
            out.append({"id": eid, "created": created, "provenance": json.loads(prov), "rows": rows.get(eid, [])})
        return out

    def insert_evaluation(self, evaluation: dict[str, Any]) -> None:
        """Copy a re-evaluation (as :meth:`evaluations` returns it, its ``created`` time kept) from another store,
        in one transaction, replacing what this store had under its id."""
        with self.transaction() as c:
            c.execute("DELETE FROM evaluations WHERE id = ?", (evaluation["id"],))
            c.execute(
                "INSERT INTO evaluations (id, created, provenance) VALUES (?, ?, ?)",
                (evaluation["id"], evaluation["created"], json.dumps(evaluation["provenance"], sort_keys=True)),
            )
            c.executemany(
                "INSERT INTO reevaluations (evaluation_id, run_id, condition, split, metric, value, higher_is_better)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(evaluation["id"], *row) for row in evaluation["rows"]],
            )

    def reevaluations(self) -> list[dict[str, Any]]:
        """Every re-evaluated metric, oldest evaluation first, with ``evaluation_id`` and ``created``."""
        cols = ["evaluation_id", "created", "run_id", "condition", "split", "metric", "value", "higher_is_better"]
        if self.version < 2:  # an older store read as it is: it has no re-evaluations
            return []
        q = (
            "SELECT r.evaluation_id, e.created, r.run_id, r.condition, r.split, r.metric, r.value, r.higher_is_better"
            " FROM reevaluations r JOIN evaluations e ON e.id = r.evaluation_id"
            " ORDER BY e.created, r.evaluation_id, r.run_id, r.condition, r.split, r.metric"
        )
        return [dict(zip(cols, row)) for row in self.conn.execute(q)]

    def metrics_and_reevaluations(self) -> list[dict[str, Any]]:
        """The runs' own metrics, plus re-evaluated ones for (run, condition) pairs the run never measured (the
        latest evaluation wins), each marked with ``evaluation_id`` (None for the run's own rows)."""
        own = [m | {"evaluation_id": None} for m in self.metrics()]
        measured = {(m["run_id"], m["condition"]) for m in own}
        latest: dict[tuple, dict[str, Any]] = {}
        for m in self.reevaluations():
            if (m["run_id"], m["condition"]) not in measured:
                latest[(m["run_id"], m["condition"], m["split"], m["metric"])] = m
        return own + [{k: v for k, v in m.items() if k != "created"} for m in latest.values()]

    def metrics(self, run_id: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT run_id, condition, split, metric, value, higher_is_better FROM metrics"
        args: tuple = ()
        if run_id:
            q += " WHERE run_id = ?"
            args = (run_id,)
        cols = ["run_id", "condition", "split", "metric", "value", "higher_is_better"]
        return [dict(zip(cols, r)) for r in self.conn.execute(q, args)]


def writable(folder: Path, path: Path) -> bool:
    """Whether ``folder`` (and the store file ``path`` in it, when there) can be written (a read-only mount
    answers no even to root)."""
    return os.access(folder, os.W_OK | os.X_OK) and (not path.exists() or os.access(path, os.W_OK))


def read_only_message(folder: Path) -> str:
    return (
        f"the output folder {folder} cannot be written (read-only, or not yours): `mfm-bench run`, `evaluate`, "
        f"`leaderboard` and `report` write into it, and `merge` into its OUT; copy it (cp -r {folder} COPY) and "
        "use the copy, or make it writable; `mfm-bench compare` and `merge` (a shard) only read it and work on it "
        "as it is, and `mfm-bench leaderboard` prints its table without writing files"
    )


def _finite(v: float) -> float | None:
    return None if v != v else float(v)  # NaN stored as NULL


def _hib(metric: str) -> int | None:
    h = higher_is_better(metric)
    return None if h is None else int(h)
