"""The run store: round trips, resume support, exports, concurrency and damaged files."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from workbench.store import RunRecord, RunStore, StoreError

SPEC = {"version": 1, "blocks": [{"id": "q", "type": "quantum_layer", "n_qubits": 2}]}
CONFIG = {"epochs": 3, "lr": 0.01}
DATASET = {"name": "moons", "options": {"n_samples": 300}, "n_train": 240}
ENVIRONMENT = {"python": "3.11", "torch": "2.13.0"}


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs.sqlite3")


def _new_run(store: RunStore, **extra) -> str:
    return store.create_run(spec=SPEC, config=CONFIG, dataset=DATASET, environment=ENVIRONMENT, **extra)


def _epoch(step: int, **metrics) -> dict:
    return {"kind": "epoch", "step": step, "epoch": step // 10, **metrics}


def _count(path: Path, sql: str, *parameters) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute(sql, parameters).fetchone()[0]


def test_create_and_get_round_trip(store):
    parent = _new_run(store, name="baseline")
    run_id = _new_run(store, name="hybrid", parent_id=parent, tags=["qml", "moons"])
    record = store.get_run(run_id)
    assert isinstance(record, RunRecord)
    assert (record.id, record.name, record.status, record.parent_id, record.tags) == (run_id, "hybrid", "running", parent, ["qml", "moons"])
    assert (record.spec, record.config, record.dataset, record.environment) == (SPEC, CONFIG, DATASET, ENVIRONMENT)
    assert record.final_metrics is None and record.created_at == record.updated_at
    assert len(run_id) == 12 and int(run_id, 16) >= 0
    assert store.get_run(_new_run(store)).name.startswith("moons-")


def test_list_runs_newest_first_with_filters(store):
    ids = [_new_run(store) for _ in range(4)]
    store.set_status(ids[1], "completed")
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs(status="running", limit=2)] == [ids[3], ids[2]]
    assert [r.id for r in store.list_runs(status="completed")] == [ids[1]]
    with pytest.raises(StoreError, match="unknown status 'done'"):
        store.list_runs(status="done")


def test_events_round_trip_ordered_by_step(store):
    run_id = _new_run(store)
    store.append_events(run_id, [_epoch(20, loss=0.2), _epoch(0, loss=1.0), _epoch(10, loss=0.5, metrics={"acc": 0.75})])
    store.append_events(run_id, [{"kind": "step", "step": 5, "epoch": 0, "loss": 0.9}])
    assert [e["step"] for e in store.events(run_id)] == [0, 5, 10, 20]
    assert store.events(run_id, kind="epoch")[1] == _epoch(10, loss=0.5, metrics={"acc": 0.75})
    assert [e["loss"] for e in store.events(run_id, kind="step")] == [0.9]
    assert store.events(run_id, kind="batch") == []


def test_reappending_a_step_replaces_it(store):
    run_id = _new_run(store)
    store.append_events(run_id, [_epoch(s, loss=1.0) for s in range(5)])
    store.append_events(run_id, [_epoch(s, loss=2.0) for s in range(3, 8)])
    events = store.events(run_id)
    assert [e["step"] for e in events] == list(range(8))
    assert [e["loss"] for e in events] == [1.0] * 3 + [2.0] * 5
    assert _count(store.path, "SELECT COUNT(*) FROM events") == 8


def test_numpy_values_are_stored_as_plain_json(store):
    np = pytest.importorskip("numpy")
    run_id = _new_run(store)
    store.append_events(run_id, [{"kind": "epoch", "step": np.int64(3), "epoch": np.int32(0), "loss": np.float32(0.5), "w": np.arange(2)}])
    assert store.events(run_id) == [{"kind": "epoch", "step": 3, "epoch": 0, "loss": 0.5, "w": [0, 1]}]


@pytest.mark.parametrize(
    "event, words",
    [
        ({"kind": "epoch", "epoch": 0}, ["'kind', 'step' and 'epoch'"]),
        ({"kind": "epoch", "step": 1.5, "epoch": 0}, ["step must be an integer"]),
        ({"kind": 3, "step": 1, "epoch": 0}, ["kind is a string"]),
        ({"kind": "epoch", "step": 1, "epoch": 0, "model": object()}, ["JSON", "object"]),
    ],
)
def test_bad_events_are_refused_whole(store, event, words):
    run_id = _new_run(store)
    with pytest.raises(StoreError) as error:
        store.append_events(run_id, [_epoch(0), event])
    for word in words:
        assert word in str(error.value)
    assert store.events(run_id) == []


def test_unknown_run_is_named_with_a_hint(store):
    with pytest.raises(StoreError, match=r"no run 'feedbeef'.*workbench runs list"):
        store.get_run("feedbeef")
    with pytest.raises(StoreError, match="no run 'feedbeef'"):
        store.append_events("feedbeef", [_epoch(0)])


def test_unique_prefix_finds_a_run_and_ambiguous_one_fails(store):
    ids = [_new_run(store) for _ in range(17)]
    assert store.get_run(ids[0][:7]).id == ids[0]
    # 17 ids over 16 hex digits: two share a first character.
    first = [i[0] for i in ids]
    shared = next(c for c in first if first.count(c) > 1)
    with pytest.raises(StoreError, match="ambiguous"):
        store.get_run(shared)


def test_truncate_events_after_a_checkpoint(store):
    run_id = _new_run(store)
    store.append_events(run_id, [_epoch(s) for s in range(10)] + [{"kind": "step", "step": s, "epoch": 0} for s in range(10)])
    assert store.truncate_events_after(run_id, 6) == 6
    assert [e["step"] for e in store.events(run_id, kind="epoch")] == list(range(7))
    assert [e["step"] for e in store.events(run_id, kind="step")] == list(range(7))
    assert store.truncate_events_after(run_id, 6) == 0


def test_events_a_resumed_training_run_redoes_are_dropped(store):
    # Checkpoint after 6 steps (steps 0..5 done): step events carry their own index, so step 6 is redone; the
    # epoch event that closed step 5 stays, the later ones go.
    run_id = _new_run(store)
    steps = [{"kind": "step", "step": s, "epoch": 0} for s in range(10)]
    store.append_events(run_id, [_epoch(s) for s in (1, 3, 5, 7, 9)] + steps)
    assert store.drop_events_to_redo(run_id, 6) == 2 + 4
    assert [e["step"] for e in store.events(run_id, kind="step")] == list(range(6))
    assert [e["step"] for e in store.events(run_id, kind="epoch")] == [1, 3, 5]
    assert store.drop_events_to_redo(run_id, 6) == 0


def test_checkpoints_keep_the_latest_three(store):
    run_id = _new_run(store)
    assert store.latest_checkpoint(run_id) is None
    for step in (100, 200, 300, 400, 500):
        store.save_checkpoint(run_id, step=step, epoch=step // 100, state=f"weights@{step}".encode())
    assert store.latest_checkpoint(run_id) == (500, 5, b"weights@500")
    kept = [row[0] for row in sqlite3.connect(store.path).execute("SELECT step FROM checkpoints ORDER BY step")]
    assert kept == [300, 400, 500]
    with pytest.raises(StoreError, match="bytes"):
        store.save_checkpoint(run_id, step=600, epoch=6, state="not bytes")


def test_keep_checkpoints_is_configurable(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3", keep_checkpoints=1)
    run_id = _new_run(store)
    for step in range(4):
        store.save_checkpoint(run_id, step=step, epoch=0, state=bytes([step]))
    assert _count(store.path, "SELECT COUNT(*) FROM checkpoints") == 1
    assert store.latest_checkpoint(run_id) == (3, 0, b"\x03")


def test_set_status_and_final_metrics(store):
    run_id = _new_run(store)
    store.set_status(run_id, "paused")
    assert store.get_run(run_id).status == "paused"
    store.set_status(run_id, "completed", final_metrics={"test_accuracy": 0.93})
    store.set_status(run_id, "completed")  # no metrics given: the stored ones stay
    record = store.get_run(run_id)
    assert record.status == "completed" and record.final_metrics == {"test_accuracy": 0.93}
    assert record.updated_at > record.created_at
    with pytest.raises(StoreError, match="unknown status 'finished'.*completed"):
        store.set_status(run_id, "finished")


def test_delete_removes_events_and_checkpoints(store):
    keep, drop = _new_run(store), _new_run(store)
    for run_id in (keep, drop):
        store.append_events(run_id, [_epoch(s) for s in range(3)])
        store.save_checkpoint(run_id, step=2, epoch=0, state=b"x")
    store.delete_run(drop[:8])
    with pytest.raises(StoreError, match="no run"):
        store.get_run(drop)
    assert [r.id for r in store.list_runs()] == [keep]
    assert _count(store.path, "SELECT COUNT(*) FROM events WHERE run_id = ?", drop) == 0
    assert _count(store.path, "SELECT COUNT(*) FROM checkpoints WHERE run_id = ?", drop) == 0
    assert len(store.events(keep)) == 3 and store.latest_checkpoint(keep) is not None


def test_export_json_reads_back(store, tmp_path):
    run_id = _new_run(store, tags=["x"])
    store.append_events(run_id, [_epoch(s, loss=1 / (s + 1)) for s in range(3)])
    store.set_status(run_id, "completed", final_metrics={"loss": 0.33})
    path = store.export_run(run_id, tmp_path / "out" / "run.json")
    exported = json.loads(path.read_text())
    assert exported["run"]["id"] == run_id and exported["run"]["spec"] == SPEC and exported["run"]["tags"] == ["x"]
    assert exported["run"]["final_metrics"] == {"loss": 0.33}
    assert exported["events"] == store.events(run_id)
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"]  # no temp file left behind


def test_export_csv_flattens_scalars(store, tmp_path):
    run_id = _new_run(store)
    store.append_events(run_id, [_epoch(0, loss=1.0, metrics={"acc": 0.5}, weights=[1, 2]), _epoch(10, loss=0.5)])
    path = store.export_run(run_id, tmp_path / "run.csv", fmt="csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["kind", "step", "epoch", "loss", "metrics.acc"]
    assert rows == [
        {"kind": "epoch", "step": "0", "epoch": "0", "loss": "1.0", "metrics.acc": "0.5"},
        {"kind": "epoch", "step": "10", "epoch": "1", "loss": "0.5", "metrics.acc": ""},
    ]
    with pytest.raises(StoreError, match="unknown export format 'xlsx'"):
        store.export_run(run_id, tmp_path / "run.xlsx", fmt="xlsx")


def test_compare_collects_a_metric_per_run(store):
    a, b = _new_run(store), _new_run(store)
    store.append_events(a, [_epoch(s, loss=10.0 - s) for s in (0, 10, 20)])
    store.append_events(b, [_epoch(s, metrics={"loss": s / 10}) for s in (0, 10)] + [_epoch(20)])
    assert store.compare([a, b[:6]], "loss") == {a: [(0, 10.0), (10, 0.0), (20, -10.0)], b: []}
    assert store.compare([b], "metrics.loss") == {b: [(0, 0.0), (10, 1.0)]}
    with pytest.raises(StoreError, match="'accuracy'.*loss"):
        store.compare([a, b], "accuracy")


def _append_worker(path: str, run_id: str, kind: str, count: int, barrier) -> None:
    store = RunStore(path)
    barrier.wait(timeout=120)  # both writers start together, whatever their start-up time
    for step in range(count):
        event = {"kind": kind, "step": step, "epoch": step // 100, "value": step * 0.5, "time": time.time()}
        store.append_events(run_id, [event])
        if step % 100 == 0:
            store.save_checkpoint(run_id, step=step, epoch=step // 100, state=os.urandom(64))


def _assert_all_written(store: RunStore, run_id: str, kinds: list[str], count: int) -> None:
    events = store.events(run_id)
    assert len(events) == len(kinds) * count
    for kind in kinds:
        written = store.events(run_id, kind=kind)
        assert [e["step"] for e in written] == list(range(count))
        assert [e["value"] for e in written] == [s * 0.5 for s in range(count)]
    # The writers really overlapped: each started before the other finished.
    spans = [[e["time"] for e in store.events(run_id, kind=kind)] for kind in kinds]
    assert max(span[0] for span in spans) < min(span[-1] for span in spans)
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_threads_append_concurrently(store):
    run_id = _new_run(store)
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=_append_worker, args=(str(store.path), run_id, f"t{i}", 500, barrier)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _assert_all_written(store, run_id, ["t0", "t1"], 500)


def test_one_store_object_shared_by_threads(store):
    run_id = _new_run(store)

    barrier = threading.Barrier(2)

    def work(kind: str) -> None:
        barrier.wait(timeout=60)
        for step in range(200):
            store.append_events(run_id, [{"kind": kind, "step": step, "epoch": 0, "value": step * 0.5, "time": time.time()}])

    threads = [threading.Thread(target=work, args=(f"s{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _assert_all_written(store, run_id, ["s0", "s1"], 200)


def test_two_processes_append_concurrently(store):
    run_id = _new_run(store)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    processes = [
        context.Process(target=_append_worker, args=(str(store.path), run_id, f"p{i}", 500, barrier)) for i in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0]
    _assert_all_written(store, run_id, ["p0", "p1"], 500)


def test_readers_are_not_blocked_by_a_writer(store):
    run_id = _new_run(store)
    store.append_events(run_id, [_epoch(0)])
    writer = sqlite3.connect(store.path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE runs SET name = 'renamed'")
    try:
        started = time.monotonic()
        assert store.get_run(run_id).name != "renamed" and len(store.events(run_id)) == 1
        assert time.monotonic() - started < 1.0
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_text_file_is_not_a_store(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 20)
    with pytest.raises(StoreError, match="not an SQLite database"):
        RunStore(path)
    assert path.read_text() == "these are my notes, not a database\n" * 20


def test_another_programs_database_is_not_a_store(tmp_path):
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match="another program.*invoices"):
        RunStore(path)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "runs.sqlite3"
    RunStore(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer workbench.*99"):
        RunStore(path)


def test_a_version_1_store_moves_its_epoch_points_onto_their_last_step(tmp_path):
    # Version 1 recorded an epoch (and boundary) event at the count of steps done: one step past the step event
    # it closes. Opening the store moves them back; step events and the events' own data agree with the row.
    path = tmp_path / "runs.sqlite3"
    store = RunStore(path)
    old, one_step_epochs, new = _new_run(store), _new_run(store), _new_run(store)
    steps = [{"kind": "step", "step": s, "epoch": s // 5, "loss": 1.0 / (s + 1)} for s in range(10)]
    epochs = [{"kind": "epoch", "step": 5 * (e + 1), "epoch": e, "loss": 0.5 - e / 10} for e in range(2)]
    epochs[0]["val_loss"] = float("inf")  # JSON's Infinity: SQLite's JSON functions refuse it, the move must not
    store.append_events(old, steps + epochs + [{"kind": "boundary", "step": 10, "epoch": 1, "z": [[0]]}])
    # One step per epoch (full-batch training): counts 1, 2, 3 become 0, 1, 2 without touching each other.
    store.append_events(one_step_epochs, [{"kind": "step", "step": s, "epoch": s} for s in range(3)] +
                        [{"kind": "epoch", "step": e + 1, "epoch": e} for e in range(3)])
    # Already at the last step's index (written while the rule changed, still labelled 1): left as it is.
    store.append_events(new, steps + [{**e, "step": e["step"] - 1} for e in epochs])
    store.close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store = RunStore(path)
    assert [e["step"] for e in store.events(old, kind="epoch")] == [4, 9]
    assert [e["step"] for e in store.events(old, kind="boundary")] == [9]
    assert store.events(old, kind="epoch")[0]["val_loss"] == float("inf")
    assert store.events(old, kind="step") == steps
    assert store.compare([old], "loss")[old] == [(4, 0.5), (9, 0.4)]
    assert [e["step"] for e in store.events(one_step_epochs, kind="epoch")] == [0, 1, 2]
    assert [e["step"] for e in store.events(new, kind="epoch")] == [4, 9]
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
        rows = connection.execute("SELECT step, data FROM events WHERE kind != 'step'").fetchall()
        assert all(json.loads(data)["step"] == step for step, data in rows)  # the row and its event agree
    store.close()
    assert [e["step"] for e in RunStore(path).events(old, kind="epoch")] == [4, 9]  # once only


def test_path_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "env" / "store.sqlite3"))
    store = RunStore()
    assert store.path == tmp_path / "env" / "store.sqlite3" and store.path.is_file()
    assert RunStore(tmp_path / "explicit.sqlite3").path == tmp_path / "explicit.sqlite3"


def _create_and_exit(path: str, queue) -> None:
    queue.put(_new_run(RunStore(path)))


def test_runs_of_dead_writers_are_marked_interrupted(store):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_create_and_exit, args=(str(store.path), queue))
    process.start()
    orphan = queue.get(timeout=120)
    process.join(timeout=120)
    alive = _new_run(store)
    finished = _new_run(store)
    store.set_status(finished, "completed")
    reused_pid = _new_run(store)
    remote = _new_run(store)
    with sqlite3.connect(store.path) as connection:
        # Our own pid, but recorded with another start time: the writer was an earlier process.
        connection.execute("UPDATE runs SET writer_started = writer_started - 3600 WHERE id = ?", (reused_pid,))
        connection.execute("UPDATE runs SET writer_host = 'elsewhere', writer_pid = 1 WHERE id = ?", (remote,))

    assert sorted(store.mark_stale_running_as_interrupted()) == sorted([orphan, reused_pid])
    statuses = {run_id: store.get_run(run_id).status for run_id in (orphan, alive, finished, reused_pid, remote)}
    assert statuses == {orphan: "interrupted", alive: "running", finished: "completed", reused_pid: "interrupted", remote: "running"}
    assert store.mark_stale_running_as_interrupted() == []
