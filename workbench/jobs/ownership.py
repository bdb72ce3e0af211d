"""Run ownership: one live writer per run.

A run's owner is the process that writes its history to the run store (for a job, the submitting
side). The owner is recorded as (host, pid, process start time, heartbeat) in the store's `run_owners`
table, created here on first use so the store's own schema stays untouched. A claim on a run whose
owner is alive is refused with a message naming that owner; a dead owner (same host: its pid is gone or
reused; another host: no heartbeat for `STALE_AFTER_S`) is taken over.

Example:
    owner = claim(store, run_id)       # raises RunOwnedError if someone else is training it
    heartbeat(store, run_id, owner)    # every few seconds while training
    release(store, run_id, owner)      # when the run ends
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from ..store import RunStore, StoreError, _process_alive, _writer

STALE_AFTER_S = 60.0  # another host's owner without a heartbeat for this long is presumed dead
HEARTBEAT_EVERY_S = 5.0

_SCHEMA = """CREATE TABLE IF NOT EXISTS run_owners (
    run_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL
)"""


class RunOwnedError(StoreError):
    """The run has a live owner; the message names it."""


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: float
    heartbeat: float

    def alive(self) -> bool:
        if self.host == socket.gethostname():
            return _process_alive(self.pid, self.started)
        return time.time() - self.heartbeat < STALE_AFTER_S

    def describe(self) -> str:
        age = time.time() - self.heartbeat
        return f"process {self.pid} on {self.host} (last heartbeat {age:.0f} s ago)"


def _ensure_table(store: RunStore) -> None:
    if getattr(store, "_owners_table", False):
        return
    with store._write() as connection:
        connection.execute(_SCHEMA)
    store._owners_table = True


def owner_of(store: RunStore, run_id: str) -> Owner | None:
    """The run's recorded owner (alive or not), or None. Runs from before ownership existed are owned by
    their last writer while their status says they are running."""
    _ensure_table(store)
    run_id = store._resolve(run_id)
    rows = store._read("SELECT host, pid, started, heartbeat FROM run_owners WHERE run_id = ?", (run_id,))
    if rows:
        return Owner(rows[0]["host"], rows[0]["pid"], rows[0]["started"], rows[0]["heartbeat"])
    rows = store._read("SELECT status, writer_host, writer_pid, writer_started FROM runs WHERE id = ?", (run_id,))
    if rows and rows[0]["status"] in ("running", "paused"):
        row = rows[0]
        return Owner(row["writer_host"], row["writer_pid"], row["writer_started"], time.time())
    return None


def claim(store: RunStore, run_id: str) -> Owner:
    """Make this process the run's owner; RunOwnedError if another live process owns it."""
    _ensure_table(store)
    pid, host, started = _writer()
    me = Owner(host, pid, started, time.time())
    with store._write() as connection:
        run_id = store._resolve(run_id, connection)
        row = connection.execute("SELECT host, pid, started, heartbeat FROM run_owners WHERE run_id = ?",
                                 (run_id,)).fetchone()
        current = Owner(row["host"], row["pid"], row["started"], row["heartbeat"]) if row else None
        if current is None:
            status = connection.execute("SELECT status, writer_host, writer_pid, writer_started FROM runs "
                                        "WHERE id = ?", (run_id,)).fetchone()
            if status["status"] in ("running", "paused"):
                current = Owner(status["writer_host"], status["writer_pid"], status["writer_started"], time.time())
        if current is not None and (current.host, current.pid, current.started) != (host, pid, started) \
                and current.alive():
            raise RunOwnedError(f"run {run_id} is being trained by {current.describe()}: a second writer would "
                                "corrupt its history. Wait for it to finish, or stop it there; a run whose owner "
                                "has died is taken over automatically")
        connection.execute("INSERT OR REPLACE INTO run_owners (run_id, host, pid, started, heartbeat) "
                           "VALUES (?, ?, ?, ?, ?)", (run_id, host, pid, started, me.heartbeat))
    return me


def heartbeat(store: RunStore, run_id: str) -> None:
    """Tell other processes this process still owns (and is writing) the run."""
    _ensure_table(store)
    pid, host, started = _writer()
    with store._write() as connection:
        connection.execute("UPDATE run_owners SET heartbeat = ? WHERE run_id = ? AND host = ? AND pid = ? "
                           "AND started = ?", (time.time(), run_id, host, pid, started))


def release(store: RunStore, run_id: str) -> None:
    """Give the run up (it ended); only this process's own claim is removed."""
    _ensure_table(store)
    pid, host, started = _writer()
    with store._write() as connection:
        connection.execute("DELETE FROM run_owners WHERE run_id = ? AND host = ? AND pid = ? AND started = ?",
                           (run_id, host, pid, started))
