"""The run store: every training run's spec, config, dataset, environment, metric history and
checkpoints, in one embedded SQLite file.

Several trainings write to the same file at once, from threads and from processes. That is safe
because the database runs in WAL mode (readers never wait for the writer), every connection
waits up to `_BUSY_TIMEOUT_MS` for the write lock instead of failing, each thread (and each
process after a fork) gets its own connection, and every multi-row write is one transaction
that takes the write lock up front (BEGIN IMMEDIATE), so two writers never deadlock upgrading
a read lock. The sqlite3 module releases the GIL while SQLite works, so waiting on the lock
never stalls other Python threads.
"""

from __future__ import annotations

import csv
import io
import json
import operator
import os
import socket
import sqlite3
import tempfile
import threading
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import platformdirs
import psutil

from .errors import WorkbenchError
from .store_integrity import location_writable, quick_problem, read_only_connection

# 2: an epoch or boundary event's step is the index of the last step before it, as a step event's is (version 1
#    recorded the count of steps done, one more; opening such a store moves those events back by one).
SCHEMA_VERSION = 2
STATUSES = ("running", "paused", "cancelled", "completed", "failed", "interrupted")
EXPORT_FORMATS = ("json", "csv")

_BUSY_TIMEOUT_MS = 60_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    spec TEXT NOT NULL,
    config TEXT NOT NULL,
    dataset TEXT NOT NULL,
    environment TEXT NOT NULL,
    final_metrics TEXT,
    parent_id TEXT,
    tags TEXT NOT NULL,
    writer_pid INTEGER NOT NULL,
    writer_host TEXT NOT NULL,
    writer_started REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_creation ON runs (created_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL REFERENCES runs (id),
    kind TEXT NOT NULL,
    step INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL REFERENCES runs (id),
    step INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (run_id, step)
);
"""


class StoreError(WorkbenchError, RuntimeError):
    """The run store cannot do what was asked; the message says why and what to do."""


@dataclass
class RunRecord:
    id: str
    name: str
    status: str  # one of STATUSES
    created_at: str  # ISO 8601, UTC
    updated_at: str
    spec: dict
    config: dict
    dataset: dict
    environment: dict
    final_metrics: dict | None
    parent_id: str | None  # a matched classical baseline's source run, or a comparison group
    tags: list[str]


def default_store_path() -> Path:
    """$WORKBENCH_STORE if set, else runs.sqlite3 in the user's data directory."""
    override = os.environ.get("WORKBENCH_STORE")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("workbench")) / "runs.sqlite3"


class RunStore:
    """Runs, their events and checkpoints in one SQLite file, shared safely by threads and
    processes. Every method that takes a run id also takes a unique prefix of one."""

    def __init__(self, path: str | os.PathLike | None = None, *, keep_checkpoints: int = 3):
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        if keep_checkpoints < 1:
            raise StoreError(f"keep_checkpoints must be at least 1, got {keep_checkpoints}")
        self.keep_checkpoints = keep_checkpoints
        self._local = threading.local()
        if self.path.is_dir():
            raise StoreError(
                f"{self.path} is a directory; give the path of a file such as {self.path / 'runs.sqlite3'}"
            )
        # A store that cannot be written is opened for reading; a damaged one (quick check on open)
        # too: `damage` then says what is wrong, and every write is refused with how to recover.
        self.read_only = not location_writable(self.path)
        self.damage: str | None = None
        if self.read_only and not self.path.exists():
            raise StoreError(f"cannot create a run store at {self.path}: the location is read-only; pass a writable "
                             "path with --store or set WORKBENCH_STORE")
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._initialise()

    # -- writing --------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        spec: dict,
        config: dict,
        dataset: dict,
        environment: dict,
        name: str | None = None,
        parent_id: str | None = None,
        tags: list[str] | None = None,
    ) -> str:
        """Record a new run, with status 'running', and return its id."""
        run_id = uuid.uuid4().hex[:12]
        now = _now()
        row = (
            run_id,
            name or f"{dataset.get('name', 'run')}-{run_id[:6]}",
            "running",
            now,
            now,
            _to_json(spec, "spec"),
            _to_json(config, "config"),
            _to_json(dataset, "dataset"),
            _to_json(environment, "environment"),
            parent_id,
            _to_json(list(tags or []), "tags"),
            *_writer(),
        )
        with self._write() as connection:
            connection.execute(
                "INSERT INTO runs (id, name, status, created_at, updated_at, spec, config, dataset, "
                "environment, parent_id, tags, writer_pid, writer_host, writer_started) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return run_id

    def append_events(self, run_id: str, events: list[dict]) -> None:
        """Store events; one with the same (kind, step) as a stored one replaces it."""
        # Encoded before the write lock is taken, so other writers wait only for SQLite.
        rows = [_event_columns(event) for event in events]
        with self._write() as connection:
            run_id = self._touch(connection, run_id)
            connection.executemany(
                "INSERT OR REPLACE INTO events (run_id, kind, step, epoch, data) VALUES (?, ?, ?, ?, ?)",
                [(run_id, *row) for row in rows],
            )

    def save_checkpoint(self, run_id: str, *, step: int, epoch: int, state: bytes) -> None:
        """Store a checkpoint and drop all but the latest `keep_checkpoints` of the run."""
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise StoreError(
                f"a checkpoint's state must be bytes (e.g. from torch.save to a BytesIO), got {type(state).__name__}"
            )
        with self._write() as connection:
            run_id = self._touch(connection, run_id)
            connection.execute(
                "INSERT OR REPLACE INTO checkpoints (run_id, step, epoch, created_at, state) VALUES (?, ?, ?, ?, ?)",
                (run_id, _integer(step, "step"), _integer(epoch, "epoch"), _now(), bytes(state)),
            )
            connection.execute(
                "DELETE FROM checkpoints WHERE run_id = ? AND step NOT IN "
                "(SELECT step FROM checkpoints WHERE run_id = ? ORDER BY step DESC LIMIT ?)",
                (run_id, run_id, self.keep_checkpoints),
            )

    def truncate_events_after(self, run_id: str, step: int) -> int:
        """Drop the events recorded after `step` (those a resumed run will redo); return how many. (A training run
        resumed from a checkpoint calls `drop_events_to_redo` with its count of steps done.)"""
        with self._write() as connection:
            run_id = self._touch(connection, run_id)
            cursor = connection.execute(
                "DELETE FROM events WHERE run_id = ? AND step > ?", (run_id, _integer(step, "step"))
            )
            return cursor.rowcount

    def drop_events_to_redo(self, run_id: str, steps_done: int) -> int:
        """Drop the events a training run resumed from its checkpoint after `steps_done` steps emits again, and
        return how many: every event from step index `steps_done` on (a step event carries its own index, an epoch
        or boundary event its epoch's last step's)."""
        return self.truncate_events_after(run_id, _integer(steps_done, "steps_done") - 1)

    def set_status(self, run_id: str, status: str, final_metrics: dict | None = None) -> None:
        """Change a run's status; final_metrics, when given, replaces the stored ones."""
        if status not in STATUSES:
            raise StoreError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        metrics = _to_json(final_metrics, "final_metrics") if final_metrics is not None else None
        with self._write() as connection:
            run_id = self._touch(connection, run_id)
            connection.execute(
                "UPDATE runs SET status = ?, final_metrics = COALESCE(?, final_metrics) WHERE id = ?",
                (status, metrics, run_id),
            )

    def rename_run(self, run_id: str, name: str) -> None:
        """Give a run a new display name (what Compare lists it as)."""
        name = (name or "").strip()
        if not name:
            raise StoreError("a run's name cannot be empty: type a name")
        with self._write() as connection:
            run_id = self._resolve(run_id, connection)
            connection.execute("UPDATE runs SET name = ? WHERE id = ?", (name[:200], run_id))

    def delete_run(self, run_id: str) -> None:
        """Remove a run with its events and checkpoints."""
        with self._write() as connection:
            run_id = self._resolve(run_id, connection)
            for table, key in (("events", "run_id"), ("checkpoints", "run_id"), ("runs", "id")):
                connection.execute(f"DELETE FROM {table} WHERE {key} = ?", (run_id,))

    def mark_stale_running_as_interrupted(self) -> list[str]:
        """Mark 'running' runs whose writing process on this host has died as 'interrupted'.

        A run written from another host is left alone: there is no telling whether its process
        still lives.
        """
        host = socket.gethostname()
        candidates = [
            row
            for row in self._read(
                "SELECT id, writer_pid, writer_started FROM runs WHERE status = 'running' AND writer_host = ?",
                (host,),
            )
            if not _process_alive(row["writer_pid"], row["writer_started"])
        ]
        if not candidates or self.read_only or self.damage:
            return []
        interrupted = []
        with self._write() as connection:
            for row in candidates:
                # Only if the same dead writer still owns the run: it may have been resumed since.
                cursor = connection.execute(
                    "UPDATE runs SET status = 'interrupted', updated_at = ? WHERE id = ? "
                    "AND status = 'running' AND writer_pid = ? AND writer_started = ?",
                    (_now(), row["id"], row["writer_pid"], row["writer_started"]),
                )
                if cursor.rowcount:
                    interrupted.append(row["id"])
        return interrupted

    # -- reading --------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        run_id = self._resolve(run_id)
        return _record(self._read("SELECT * FROM runs WHERE id = ?", (run_id,))[0])

    def list_runs(self, *, status: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first."""
        if status is not None and status not in STATUSES:
            raise StoreError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        count = -1  # SQLite reads LIMIT -1 as no limit
        if limit is not None:
            count = _integer(limit, "limit")
            if count < 1:
                raise StoreError(f"limit must be a positive integer or None, got {limit!r}")
        rows = self._read(
            "SELECT * FROM runs WHERE ? IS NULL OR status = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (status, status, count),
        )
        return [_record(row) for row in rows]

    def events(self, run_id: str, kind: str | None = None) -> list[dict]:
        """The run's events, all or of one kind, ordered by step."""
        run_id = self._resolve(run_id)
        rows = self._read(
            "SELECT data FROM events WHERE run_id = ? AND (? IS NULL OR kind = ?) ORDER BY step, kind",
            (run_id, kind, kind),
        )
        return [json.loads(row["data"]) for row in rows]

    def latest_checkpoint(self, run_id: str) -> tuple[int, int, bytes] | None:
        """(step, epoch, state) of the run's newest checkpoint, or None if it has none."""
        run_id = self._resolve(run_id)
        rows = self._read(
            "SELECT step, epoch, state FROM checkpoints WHERE run_id = ? ORDER BY step DESC LIMIT 1", (run_id,)
        )
        return (rows[0]["step"], rows[0]["epoch"], bytes(rows[0]["state"])) if rows else None

    def compare(self, run_ids: list[str], metric: str, kind: str = "epoch") -> dict[str, list[tuple[int, float]]]:
        """Full run id -> (step, value) of `metric` in the run's events of `kind`.

        `metric` may name a nested value with dots, e.g. "metrics.loss".
        """
        series: dict[str, list[tuple[int, float]]] = {}
        recorded: set[str] = set()
        for run_id in run_ids:
            full_id = self._resolve(run_id)
            points = []
            for event in self.events(full_id, kind):
                flat = _flatten(event)
                recorded.update(flat)
                value = flat.get(metric)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    points.append((event["step"], float(value)))
            series[full_id] = points
        # Runs without events yet (just started) are no mistake; a metric nobody records is.
        if recorded and not any(series.values()):
            names = sorted(recorded - {"kind", "step", "epoch"})
            raise StoreError(
                f"no {kind!r} event of these runs has a numeric {metric!r}; "
                f"the recorded values are: {', '.join(names)}"
            )
        return series

    def export_run(self, run_id: str, path: str | os.PathLike, fmt: str = "json") -> Path:
        """Write a run to `path`: json is the record and its events, csv one row per event with
        its scalar values as columns (nested ones as "a.b"). The file appears whole or not at all."""
        if fmt not in EXPORT_FORMATS:
            raise StoreError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
        target = Path(path).expanduser()
        if target.is_dir():
            raise StoreError(f"{target} is a directory: give a file path such as {target / (run_id + '.' + fmt)}")
        record = self.get_run(run_id)
        events = self.events(record.id)
        if fmt == "json":
            text = json.dumps({"run": asdict(record), "events": events}, indent=2)
        else:
            text = _events_csv(events)
        try:
            return _write_atomically(target, text)
        except OSError as err:
            raise StoreError(f"cannot write {target}: {err.strerror or err}; choose another --out path") from None

    # -- connections and transactions -----------------------------------------------------------

    def close(self) -> None:
        """Close this thread's connection; the next call opens a new one."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross threads, nor a fork: each gets its own.
        if getattr(self._local, "connection", None) is not None and self._local.pid == os.getpid():
            return self._local.connection
        try:
            if self.read_only:
                connection = read_only_connection(self.path, _BUSY_TIMEOUT_MS / 1000)
            else:
                connection = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA foreign_keys = ON")
            # With WAL, NORMAL can lose the last commits on power loss but never corrupts the file.
            connection.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as err:
            raise self._unusable(err) from err
        self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    def _unusable(self, err: sqlite3.Error) -> StoreError:
        return StoreError(
            f"cannot use {self.path} as a run store (SQLite says: {err}); it is not an SQLite "
            "database, or is damaged or unreadable. Pass another path or set WORKBENCH_STORE; "
            f"`workbench runs recover --store {self.path} --out NEW.sqlite3` copies out what is readable"
        )

    def check_writable(self) -> None:
        """StoreError saying why and what to do if this store cannot be written (read-only or damaged)."""
        if self.read_only:
            raise StoreError(f"{self.path} is read-only (the file or its directory cannot be written): listing, "
                             "showing and exporting runs work, but recording needs a writable store: pass another "
                             "path with --store or make the file and its directory writable")
        if self.damage:
            raise StoreError(f"{self.path} is damaged (SQLite's check says: {self.damage}); nothing more is written "
                             f"to it. Run `workbench runs recover --store {self.path} --out NEW.sqlite3` to copy out "
                             "what is readable, then use the new file")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from its start."""
        self.check_writable()
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(f"cannot write to {self.path}: {err}") from err
        try:
            yield connection
            connection.execute("COMMIT")
        except sqlite3.Error as err:
            connection.execute("ROLLBACK")
            raise StoreError(f"writing to {self.path} failed: {err}") from err
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _read(self, sql: str, parameters: tuple = ()) -> list[sqlite3.Row]:
        try:
            return self._connection().execute(sql, parameters).fetchall()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"reading {self.path} failed (SQLite says: {err}); `workbench runs check --store "
                             f"{self.path}` tells whether it is damaged") from None

    def _initialise(self) -> None:
        connection = self._connection()
        try:
            # WAL is a property of the file, so it is set once and outside any transaction.
            if not self.read_only and connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                connection.execute("PRAGMA journal_mode = WAL")
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            self.damage = quick_problem(connection)
        except sqlite3.Error as err:
            self.close()
            raise self._unusable(err) from err
        if tables and "meta" not in tables:
            self.close()
            raise StoreError(
                f"{self.path} is the SQLite database of another program (tables: {', '.join(sorted(tables))}), "
                "not a workbench run store; pass another path"
            )
        if self.read_only or self.damage:
            self._check_version(connection)
            return
        with self._write() as connection:
            # executescript would commit on its own; statement by statement stays in the transaction.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and row[0].isdigit() and int(row[0]) < SCHEMA_VERSION:
                _upgrade(connection, int(row[0]))
            connection.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        self._check_version(connection)

    def _check_version(self, connection: sqlite3.Connection) -> None:
        try:
            row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as err:
            if self.damage:
                return  # reads go as far as they can; writes are refused with how to recover
            raise self._unusable(err) from err
        version = int(row[0]) if row else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer workbench (schema version {version}; this one "
                f"knows {SCHEMA_VERSION}); upgrade the workbench to open it"
            )

    def _resolve(self, run_id: str, connection: sqlite3.Connection | None = None) -> str:
        """The full id of the run that `run_id` names exactly or as a unique prefix."""
        connection = connection or self._connection()
        if not isinstance(run_id, str) or not run_id:
            raise StoreError(f"a run id is a non-empty string, got {run_id!r}")
        if connection.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
            return run_id
        rows = connection.execute("SELECT id FROM runs WHERE substr(id, 1, ?) = ?", (len(run_id), run_id))
        matches = [row[0] for row in rows]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise StoreError(f"no run {run_id!r} in {self.path}; `workbench runs list` shows the runs there")
        raise StoreError(
            f"run id {run_id!r} is ambiguous, it starts {', '.join(sorted(matches))}; give more characters"
        )

    def _touch(self, connection: sqlite3.Connection, run_id: str) -> str:
        """Resolve the id and stamp the run as just written by this process."""
        run_id = self._resolve(run_id, connection)
        connection.execute(
            "UPDATE runs SET updated_at = ?, writer_pid = ?, writer_host = ?, writer_started = ? WHERE id = ?",
            (_now(), *_writer(), run_id),
        )
        return run_id


# -- helpers ------------------------------------------------------------------------------------


def _upgrade(connection: sqlite3.Connection, version: int) -> None:
    """Bring a store written by an older workbench to SCHEMA_VERSION, inside the caller's transaction."""
    if version < 2:
        _move_epoch_points_onto_their_last_step(connection)
    connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _move_epoch_points_onto_their_last_step(connection: sqlite3.Connection) -> None:
    """Schema 2 (see SCHEMA_VERSION): an epoch or boundary event recorded at the count of steps done moves back
    one step, onto the last step of its epoch.

    Each event tells which it is: the step event with the index an epoch event carries belongs to that epoch when
    the index is its last step's, and to the next epoch when it is a count. (Stores made while the new rule was
    being written still say version 1: their events stay.) The rows are rewritten in Python, whose JSON keeps NaN
    and infinity as the store wrote them; a moved point never replaces one already at its new step.
    """
    rows = connection.execute(
        "SELECT run_id, kind, step, epoch, data FROM events AS e WHERE kind IN ('epoch', 'boundary') AND step > 0 "
        "AND NOT EXISTS (SELECT 1 FROM events AS s WHERE s.run_id = e.run_id AND s.kind = 'step' "
        "AND s.step = e.step AND s.epoch = e.epoch)").fetchall()
    connection.executemany("DELETE FROM events WHERE run_id = ? AND kind = ? AND step = ?",
                           [(run_id, kind, step) for run_id, kind, step, _, _ in rows])
    moved = []
    for run_id, kind, step, epoch, data in rows:
        event = json.loads(data)
        event["step"] = step - 1
        moved.append((run_id, kind, step - 1, epoch, json.dumps(event)))
    connection.executemany("INSERT OR IGNORE INTO events (run_id, kind, step, epoch, data) VALUES (?, ?, ?, ?, ?)",
                           moved)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@lru_cache(maxsize=None)
def _process_identity(pid: int) -> tuple[str, float]:
    return socket.gethostname(), psutil.Process(pid).create_time()


def _writer() -> tuple[int, str, float]:
    """(pid, host, process start time): the start time tells a live writer from a reused pid."""
    pid = os.getpid()
    return (pid, *_process_identity(pid))


def _process_alive(pid: int, started: float) -> bool:
    try:
        process = psutil.Process(pid)
        # A reused pid belongs to a process that started at another time.
        return abs(process.create_time() - started) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # someone else's live process: not ours to declare dead


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise StoreError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise StoreError(f"{what} must be an integer, got {value!r}") from None


def _event_columns(event: dict) -> tuple[str, int, int, str]:
    if not isinstance(event, dict) or not {"kind", "step", "epoch"} <= event.keys():
        raise StoreError(f"an event is a dict with at least 'kind', 'step' and 'epoch', got {event!r}")
    if not isinstance(event["kind"], str):
        raise StoreError(f"an event's kind is a string such as 'step' or 'epoch', got {event['kind']!r}")
    return event["kind"], _integer(event["step"], "step"), _integer(event["epoch"], "epoch"), _to_json(event, "event")


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, default=_plain)
    except (TypeError, ValueError) as err:
        raise StoreError(
            f"the {what} cannot be stored as JSON ({err}); pass numbers, strings, lists and dicts"
        ) from err


def _plain(value: Any) -> Any:
    # Training loops hand over numpy scalars and torch tensors; their tolist() is plain JSON.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        spec=json.loads(row["spec"]),
        config=json.loads(row["config"]),
        dataset=json.loads(row["dataset"]),
        environment=json.loads(row["environment"]),
        final_metrics=json.loads(row["final_metrics"]) if row["final_metrics"] is not None else None,
        parent_id=row["parent_id"],
        tags=json.loads(row["tags"]),
    )


def _flatten(value: dict, prefix: str = "") -> dict[str, Any]:
    """The scalar values of a nested dict, keyed "a.b"; lists are left out."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            flat.update(_flatten(item, f"{name}."))
        elif item is None or isinstance(item, (str, int, float, bool)):
            flat[name] = item
    return flat


def _events_csv(events: list[dict]) -> str:
    rows = [_flatten(event) for event in events]
    columns = ["kind", "step", "epoch"]
    columns += [name for name in dict.fromkeys(name for row in rows for name in row) if name not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _write_atomically(path: Path, text: str) -> Path:
    """Write through a temporary file in the same directory and rename it into place, so a reader
    (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
