"""Checking a run store file and copying what is readable out of a damaged one.

`RunStore` runs a quick check when it opens a file and refuses to write into a damaged one;
`workbench runs check` runs the full check and `workbench runs recover` copies every readable
run, event and checkpoint into a new store. Reading never needs write access, so a store on a
read-only disk or in a read-only directory can still be listed, shown and exported.

Example:
    problems = integrity_problems(Path("runs.sqlite3"))        # [] when the file is sound
    counts = recover_store(Path("runs.sqlite3"), Path("new.sqlite3"))
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

MAX_REPORTED_PROBLEMS = 20
# Each table with the columns that identify a row, for reading it forwards and backwards.
_TABLES = (("runs", "id"), ("events", "run_id, kind, step"), ("checkpoints", "run_id, step"))


def location_writable(path: Path) -> bool:
    """Whether a store at `path` can be written: the file (if any) and its directory (SQLite's WAL
    and lock files live beside it) must both be writable."""
    directory = path.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(directory, os.W_OK)


def read_only_connection(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection that never writes, not even SQLite's shared-memory file where that is impossible."""
    uri = f"file:{quote(str(path.resolve()))}"
    if os.access(path.parent, os.W_OK):
        return sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout, isolation_level=None)
    # Without a writable directory no -shm file can be made: read the file as it is.
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=timeout, isolation_level=None)


def quick_problem(connection: sqlite3.Connection) -> str | None:
    """The first problem `PRAGMA quick_check` finds (O(size), no index cross-check), or None."""
    try:
        rows = connection.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.DatabaseError as err:
        return str(err)
    first = rows[0][0] if rows else "no answer"
    return None if first == "ok" else " ".join(str(first).split())


def integrity_problems(path: Path) -> list[str]:
    """Every problem (up to MAX_REPORTED_PROBLEMS) the full `PRAGMA integrity_check` finds; [] if sound."""
    try:
        connection = read_only_connection(path, timeout=60)
        try:
            rows = connection.execute(f"PRAGMA integrity_check({MAX_REPORTED_PROBLEMS})").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as err:
        return [str(err)]
    problems = [row[0] for row in rows]
    return [] if problems == ["ok"] else problems


def _readable_rows(connection: sqlite3.Connection, table: str, key: str) -> tuple[dict[tuple, dict], bool]:
    """Rows of `table` readable by a forward scan and a backward scan (which reaches rows behind a
    damaged page), keyed by `key`; and whether anything could not be read."""
    rows: dict[tuple, dict] = {}
    damaged = False
    for sql in (f"SELECT * FROM {table}", f"SELECT * FROM {table} ORDER BY {key} DESC"):
        try:
            for row in connection.execute(sql):
                record = dict(row)
                rows.setdefault(tuple(record[k.strip()] for k in key.split(",")), record)
        except sqlite3.DatabaseError:
            damaged = True
    return rows, damaged


def recover_store(source: Path, out: Path) -> dict[str, object]:
    """Copy every readable run, event and checkpoint of `source` into a new store at `out`.

    Returns counts per table and the tables that were only partly readable. Events and checkpoints
    whose run was lost are left out (and counted), since they cannot be shown without it.
    """
    from .store import RunStore, StoreError

    if out.exists():
        raise StoreError(f"{out} already exists: give --out the path of a new file")
    if out.resolve() == source.resolve():
        raise StoreError("--out must be a new file, not the damaged store itself")
    try:
        reader = read_only_connection(source, timeout=60)
        reader.row_factory = sqlite3.Row
        reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as err:
        raise StoreError(f"{source} cannot be read at all (SQLite says: {err}); nothing can be recovered") from None
    target = RunStore(out)
    report: dict[str, object] = {"partly_readable": []}
    try:
        runs: set = set()
        for table, key in _TABLES:
            try:
                rows, damaged = _readable_rows(reader, table, key)
            except sqlite3.DatabaseError:
                rows, damaged = {}, True
            if damaged:
                report["partly_readable"].append(table)  # type: ignore[union-attr]
            records = list(rows.values())
            if table == "runs":
                runs = {r["id"] for r in records}
            else:
                kept = [r for r in records if r["run_id"] in runs]
                report[f"{table}_without_run"] = len(records) - len(kept)
                records = kept
            with target._write() as connection:
                columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
                for record in records:
                    names = [name for name in record if name in columns]
                    connection.execute(
                        f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                        [record[name] for name in names],
                    )
            report[table] = len(records)
    finally:
        reader.close()
        target.close()
    return report
