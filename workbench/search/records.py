"""Searches in the run store: two tables of their own in the store's SQLite file, beside its runs.

`searches` holds each search's space and settings; `search_candidates` one row per candidate and budget
(epochs) with its measures and the id of its training run. The runs themselves are ordinary runs whose
`parent_id` is the search id. The tables are created when first needed (CREATE TABLE IF NOT EXISTS), so a
store written before searches existed gains them without migration, and the run tables are untouched.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from ..store import RunStore, StoreError

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS searches (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        space TEXT NOT NULL,
        settings TEXT NOT NULL,
        report TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS search_candidates (
        search_id TEXT NOT NULL REFERENCES searches (id),
        key TEXT NOT NULL,
        epochs INTEGER NOT NULL,
        run_id TEXT,
        status TEXT NOT NULL,
        choices TEXT NOT NULL,
        spec TEXT NOT NULL,
        measures TEXT NOT NULL,
        error TEXT,
        finished_at TEXT NOT NULL,
        PRIMARY KEY (search_id, key, epochs)
    )""",
)
SEARCH_STATUSES = ("running", "completed", "failed", "interrupted")


@dataclass
class SearchRecord:
    id: str
    name: str
    status: str
    created_at: str
    space: dict
    settings: dict
    report: dict | None


class SearchRecords:
    """Search rows in `store`'s file. Thread-safe: each thread has its own connection."""

    def __init__(self, store: RunStore):
        self.store = store
        self._local = threading.local()
        with self._write() as connection:
            for statement in _SCHEMA:
                connection.execute(statement)

    # -- writing --------------------------------------------------------------------------------
    def create(self, *, name: str, space: dict, settings: dict) -> str:
        search_id = "s" + uuid.uuid4().hex[:11]
        now = _now()
        with self._write() as connection:
            connection.execute("INSERT INTO searches (id, name, status, created_at, updated_at, space, settings) "
                               "VALUES (?, ?, 'running', ?, ?, ?, ?)",
                               (search_id, name, now, now, json.dumps(space), json.dumps(settings)))
        return search_id

    def add_candidate(self, search_id: str, *, key: str, epochs: int, run_id: str | None, status: str,
                      choices: dict, spec: dict | None, measures: dict, error: str | None) -> None:
        with self._write() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO search_candidates (search_id, key, epochs, run_id, status, choices, spec, "
                "measures, error, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (search_id, key, int(epochs), run_id, status, json.dumps(choices, default=str),
                 json.dumps(spec), json.dumps(measures), error, _now()))
            connection.execute("UPDATE searches SET updated_at = ? WHERE id = ?", (_now(), search_id))

    def finish(self, search_id: str, status: str, report: dict | None = None) -> None:
        if status not in SEARCH_STATUSES:
            raise StoreError(f"unknown search status {status!r}; use one of {', '.join(SEARCH_STATUSES)}")
        with self._write() as connection:
            connection.execute("UPDATE searches SET status = ?, updated_at = ?, report = ? WHERE id = ?",
                               (status, _now(), json.dumps(report) if report is not None else None, search_id))

    # -- reading --------------------------------------------------------------------------------
    def get(self, search_id: str) -> SearchRecord:
        rows = self._read("SELECT * FROM searches WHERE id = ? OR substr(id, 1, ?) = ?",
                          (search_id, len(search_id), search_id))
        if len(rows) != 1:
            what = "no search" if not rows else "more than one search starts with"
            raise StoreError(f"{what} {search_id!r} in {self.store.path}; `workbench search --list` shows the searches there")
        row = rows[0]
        return SearchRecord(row["id"], row["name"], row["status"], row["created_at"], json.loads(row["space"]),
                            json.loads(row["settings"]), json.loads(row["report"]) if row["report"] else None)

    def list(self) -> list[SearchRecord]:
        return [self.get(row["id"]) for row in self._read("SELECT id FROM searches ORDER BY created_at DESC")]

    def candidates(self, search_id: str) -> list[dict[str, Any]]:
        """Every recorded candidate evaluation of the search, in the order they finished."""
        rows = self._read("SELECT * FROM search_candidates WHERE search_id = ? ORDER BY finished_at, rowid",
                          (search_id,))
        return [{"key": r["key"], "epochs": r["epochs"], "run_id": r["run_id"], "status": r["status"],
                 "choices": json.loads(r["choices"]), "spec": json.loads(r["spec"]),
                 "measures": json.loads(r["measures"]), "error": r["error"]} for r in rows]

    # -- connections ----------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.store.path, timeout=60, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout = 60000")
            self._local.connection = connection
        return connection

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _read(self, sql: str, parameters: tuple = ()) -> list[sqlite3.Row]:
        return self._connection().execute(sql, parameters).fetchall()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
