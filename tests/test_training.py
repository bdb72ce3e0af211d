"""The training engine: accuracy, history in the store, cancel/resume, pause, slow subscribers,
concurrent writers, NaN losses, decision boundaries, the classical baseline and the CLI."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import torch

import workbench as wb
from workbench.data import Dataset, load_dataset
from workbench.store import RunStore
from workbench.training import MetricStream, TrainConfig, Trainer, matched_classical_spec, resume
from workbench.training.trainer import read_checkpoint
from workbench.training.baseline import quantum_parameter_count

CIRCLES = {"n_samples": 200, "noise": 0.05, "standardize": True}


@pytest.fixture()
def store(tmp_path):
    return RunStore(tmp_path / "runs.sqlite3")


def _steps(events):
    return [e["step"] for e in events if e["kind"] == "step"]


def test_circles_classifier_reaches_90_percent_and_is_recorded(store):
    data = load_dataset("circles", **CIRCLES)
    trainer = Trainer(wb.templates.get("vqc-circles"), data, TrainConfig(epochs=15, batch_size=16, lr=0.05),
                      store=store)
    result = trainer.run()
    assert result.status == "completed"
    assert result.final["test_accuracy"] >= 0.90
    record = store.get_run(result.run_id)
    assert record.status == "completed" and record.final_metrics["test_accuracy"] == result.final["test_accuracy"]
    assert record.spec["name"] == "vqc-circles" and record.dataset["name"] == "circles"
    assert record.environment["torch"] == torch.__version__
    steps = _steps(store.events(result.run_id))
    assert steps == list(range(15 * trainer.steps_per_epoch))
    assert [e["epoch"] for e in store.events(result.run_id, kind="epoch")] == list(range(15))


def test_step_events_carry_gradient_signals(store):
    data = load_dataset("circles", **CIRCLES)
    trainer = Trainer(wb.templates.get("vqc-circles"), data, TrainConfig(epochs=1, batch_size=32), store=store)
    trainer.run()
    step = trainer.stream.events("step")[0]
    assert set(step["grad_norm"]) == {"fc_in", "vqc"}
    assert all(v > 0 for v in step["grad_norm"].values())
    quantum = step["quantum"]["vqc"]
    assert quantum["gradient_method"] == "adjoint"
    # The variance reported is the variance of the quantum weights' gradient entries.
    assert quantum["grad_variance"] > 0
    assert quantum["circuit_executions"] == 32  # one state per sample; the adjoint sweep runs no circuit


def test_cancel_mid_epoch_then_resume_matches_uninterrupted_run(store):
    data = load_dataset("circles", **CIRCLES)
    config = TrainConfig(epochs=6, batch_size=16, lr=0.05, seed=3, checkpoint_every_steps=1000)
    spec = wb.templates.get("vqc-circles")

    reference = Trainer(spec, data, config).run()

    stream = MetricStream()
    trainer = Trainer(spec, data, config, store=store, stream=stream)
    steps_per_epoch = trainer.steps_per_epoch
    stop_at = steps_per_epoch + 3  # in the middle of the second epoch
    trainer.start()
    reached = stream.wait_for(lambda ev: any(e.get("step") == stop_at for e in ev), timeout=120)
    assert reached, (trainer.status, trainer.error, [e["kind"] for e in stream.events()][-5:], stop_at)
    trainer.cancel()
    trainer.join(120)
    first = store.get_run(trainer.run_id)
    assert first.status == "cancelled"
    assert trainer._position["step"] < 6 * steps_per_epoch
    assert trainer._position["step"] % steps_per_epoch != 0 or trainer._position["batch"] != 0

    resumed = resume(first.id, store)
    second = resumed.run()
    assert second.status == "completed"
    steps = _steps(store.events(first.id))
    assert steps == list(range(6 * steps_per_epoch))  # no gap, no duplicate
    for a, b in zip(reference.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    assert second.final["test_accuracy"] == pytest.approx(reference.final["test_accuracy"])


def test_a_crash_after_a_mid_epoch_checkpoint_resumes_without_a_repeated_point(store):
    # A process that dies mid-epoch has flushed steps past its last checkpoint. Recreate that state from a run: keep
    # the checkpoint after 10 steps (steps 0..9 done) and the history to step 10, then resume with a live stream.
    data = load_dataset("circles", **CIRCLES)
    config = TrainConfig(epochs=2, batch_size=16, seed=5, checkpoint_every_steps=5, boundary_every=0)
    first = Trainer(wb.templates.get("vqc-circles"), data, config, store=store)
    reference = first.run()
    total = 2 * first.steps_per_epoch
    assert 5 < first.steps_per_epoch < 10  # step 10 is in the middle of the second epoch
    with sqlite3.connect(store.path) as connection:
        connection.execute("DELETE FROM checkpoints WHERE run_id = ? AND step != 10", (reference.run_id,))
        connection.execute("DELETE FROM events WHERE run_id = ? AND step > 10", (reference.run_id,))
    assert store.latest_checkpoint(reference.run_id)[0] == 10
    store.set_status(reference.run_id, "interrupted")
    stream = MetricStream()
    resumed = resume(reference.run_id, store, stream=stream)
    assert resumed.run().status == "completed"
    assert _steps(stream.events()) == list(range(total))  # what the live charts draw: each step once
    assert _steps(store.events(reference.run_id)) == list(range(total))
    assert [e["step"] for e in stream.events("epoch")] == [total // 2 - 1, total - 1]


def test_no_checkpoint_falls_between_an_epochs_last_step_and_its_end(store):
    # A checkpoint there (step count a multiple of the period at the epoch's last step) left the resumed run an
    # epoch end with no losses: ZeroDivisionError. None is taken there now, and one an older workbench took resumes.
    data = load_dataset("circles", **CIRCLES)
    first = Trainer(wb.templates.get("vqc-circles"), data, TrainConfig(epochs=1, batch_size=16, seed=2), store=store)
    config = TrainConfig(epochs=2, batch_size=16, seed=2, checkpoint_every_steps=first.steps_per_epoch,
                         boundary_every=0)
    trainer = Trainer(wb.templates.get("vqc-circles"), data, config, store=store)
    trainer.run()
    with sqlite3.connect(store.path) as connection:
        states = [row[0] for row in connection.execute("SELECT state FROM checkpoints WHERE run_id = ?",
                                                        (trainer.run_id,))]
    positions = [read_checkpoint(state)["position"] for state in states]
    assert positions and all(p["batch"] < trainer.steps_per_epoch for p in positions), positions
    # The state an older workbench could leave: after epoch 1's last step, before its end.
    saved = read_checkpoint(states[0])
    steps = trainer.steps_per_epoch
    saved["position"] = {"epoch": 0, "batch": steps, "step": steps}
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    with sqlite3.connect(store.path) as connection:
        connection.execute("DELETE FROM checkpoints WHERE run_id = ?", (trainer.run_id,))
    store.save_checkpoint(trainer.run_id, step=steps, epoch=0, state=buffer.getvalue())
    store.set_status(trainer.run_id, "interrupted")
    resumed = resume(trainer.run_id, store).run()
    assert resumed.status == "completed", resumed.final
    epochs = store.events(trainer.run_id, kind="epoch")
    assert [e["step"] for e in epochs] == [steps - 1, 2 * steps - 1]
    assert epochs[0]["loss"] is None and epochs[1]["loss"] > 0  # epoch 1's steps ran before the resume


def test_pause_holds_the_loop_and_resume_continues():
    data = load_dataset("circles", **CIRCLES)
    trainer = Trainer(wb.templates.get("vqc-circles"), data, TrainConfig(epochs=4, batch_size=8))
    trainer.stream.subscribe(lambda e: trainer.pause() if e["kind"] == "step" and e["step"] == 5 else None)
    trainer.start()
    assert trainer.stream.wait_for(lambda ev: any(e.get("step") == 5 for e in ev), timeout=60)
    deadline = time.monotonic() + 30
    while trainer.status != "paused" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert trainer.status == "paused"
    held = len(trainer.stream.events("step"))
    time.sleep(0.5)
    assert len(trainer.stream.events("step")) == held
    trainer.resume()
    trainer.join(120)
    assert trainer.status == "completed"
    assert len(trainer.stream.events("step")) == 4 * trainer.steps_per_epoch


def test_slow_subscriber_does_not_hold_back_training():
    data = load_dataset("circles", **CIRCLES)
    trainer = Trainer(wb.templates.get("vqc-circles"), data, TrainConfig(epochs=2, batch_size=8))
    seen = []
    subscription = trainer.stream.subscribe(lambda e: (time.sleep(0.5), seen.append(e["kind"])))
    trainer.run()
    emitted = len(trainer.stream)
    # Training finished every step while the sleeping subscriber had taken only a few events.
    assert len(trainer.stream.events("step")) == 2 * trainer.steps_per_epoch
    assert len(seen) < emitted / 4
    subscription.close()


def test_two_trainings_share_one_store(store):
    data = load_dataset("circles", **CIRCLES)
    trainers = [Trainer(wb.templates.get("vqc-circles"), data, TrainConfig(epochs=2, batch_size=8, seed=s),
                        store=store) for s in (1, 2)]
    threads = [threading.Thread(target=t.run) for t in trainers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for trainer in trainers:
        assert store.get_run(trainer.run_id).status == "completed"
        assert _steps(store.events(trainer.run_id)) == list(range(2 * trainer.steps_per_epoch))
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_nan_loss_stops_with_an_actionable_message(store):
    data = load_dataset("circles", **CIRCLES)
    poisoned = Dataset(**{**data.__dict__, "X_train": data.X_train.clone()})
    poisoned.X_train[3, 0] = float("nan")
    trainer = Trainer(wb.templates.get("vqc-circles"), poisoned, TrainConfig(epochs=1, batch_size=300, val_fraction=0),
                      store=store)
    result = trainer.run()
    assert result.status == "failed"
    assert "learning rate" in result.final["error"] and "nan" in result.final["error"].lower()
    assert store.get_run(result.run_id).status == "failed"


def test_decision_boundary_is_the_models_prediction_on_the_grid():
    data = load_dataset("circles", **CIRCLES)
    trainer = Trainer(wb.templates.get("vqc-circles"), data, TrainConfig(epochs=2, boundary_every=1,
                                                                         boundary_resolution=12))
    trainer.run()
    boundaries = trainer.stream.events("boundary")
    assert len(boundaries) == 2
    last = boundaries[-1]
    x, y, z = last["x"], last["y"], torch.tensor(last["z"])
    assert z.shape == (12, 12)
    with torch.no_grad():
        point = torch.tensor([[x[7], y[4]]])
        expected = torch.sigmoid(trainer.model.eval()(point)).item()
    assert z[4, 7].item() == pytest.approx(expected, abs=1e-5)


def test_matched_baseline_has_at_least_the_quantum_parameters():
    for name in ("vqc-circles", "hybrid-digits", "tyxonq-3x3", "quantum-output"):
        spec = wb.templates.get(name)
        classical = matched_classical_spec(spec)
        assert not classical.quantum_blocks()
        assert classical.output_shape() == spec.output_shape()
        model_q, model_c = wb.compile(spec), wb.compile(classical)
        q_params = sum(quantum_parameter_count(b) for b in spec.quantum_blocks())
        classical_only = sum(p.numel() for p in model_q.parameters()) - q_params
        replacement = sum(p.numel() for p in model_c.parameters()) - classical_only
        assert replacement >= q_params
    with pytest.raises(wb.SpecError, match="energy"):
        matched_classical_spec(wb.templates.get("vqe-parameter-input"))


def test_energy_task_lowers_the_ising_energy():
    data = load_dataset("tfim", n_qubits=4, n_samples=16)
    trainer = Trainer(wb.templates.get("vqe-parameter-input"), data, TrainConfig(epochs=30, batch_size=16, lr=0.02,
                                                                                 val_fraction=0))
    trainer.run()
    energies = [e["energy"] for e in trainer.stream.events("epoch")]
    assert energies[-1] < energies[0] - 0.5


def test_mismatched_dataset_is_refused_with_a_fix():
    with pytest.raises(Exception, match="input_shape"):
        Trainer(wb.templates.get("vqc-circles"), load_dataset("iris"), TrainConfig(epochs=1))


def _cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_cli_train_writes_json_and_runs_commands_work(tmp_path):
    db, out = tmp_path / "runs.sqlite3", tmp_path / "result.json"
    done = _cli("train", "--template", "vqc-circles", "--epochs", "2", "--option", "n_samples=120",
                "--store", str(db), "--out", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert summary["status"] == "completed" and 0 <= summary["final"]["test_accuracy"] <= 1
    run_id = summary["run_id"]
    listing = _cli("runs", "list", "--store", str(db))
    row = next(line for line in listing.stdout.splitlines() if run_id in line)  # one line: nothing broken in a pipe
    assert "completed" in row and f"accuracy {summary['final']['test_accuracy']:.3f}" in row, listing.stdout
    # An 80-column terminal: every value is there, no word is broken, no line is longer than the terminal.
    narrow = _cli("runs", "list", "--store", str(db), env={"COLUMNS": "80", "FORCE_COLOR": "1"})
    text = re.sub(r"\x1b\[[0-9;]*m", "", narrow.stdout)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    words = text.split()
    for value in (run_id, "vqc-circles", "completed", "circles", "torch", "accuracy",
                  f"{summary['final']['test_accuracy']:.3f}"):
        assert value in words, (value, text)
    shown = _cli("runs", "show", run_id[:6], "--store", str(db))
    assert json.loads(shown.stdout)["epochs_recorded"] == 2
    exported = tmp_path / "run.csv"
    assert _cli("runs", "export", run_id, "--out", str(exported), "--format", "csv", "--store", str(db)).returncode == 0
    assert exported.read_text().count("\n") > 2
    compared = _cli("runs", "compare", run_id, "--metric", "loss", "--store", str(db))
    assert compared.returncode == 0 and "final test_accuracy" in compared.stdout
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(wb.templates.get("hybrid-digits").to_json())
    described = _cli("describe", str(spec_file))
    assert "qlayer" in described.stdout and "adjoint" in described.stdout
    assert _cli("describe", "--template", "hybrid-digits").stdout == described.stdout


def test_cli_errors_are_actionable(tmp_path):
    missing = _cli("train", "--spec", str(tmp_path / "nope.json"), "--dataset", "circles")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"input_shape": [16], "blocks": [
        {"type": "quantum", "id": "q1", "qubits": 4, "role": "output"}]}))
    invalid = _cli("train", "--spec", str(bad), "--dataset", "circles")
    assert invalid.returncode == 2 and "q1" in invalid.stderr and "16" in invalid.stderr
    unknown = _cli("train", "--template", "vqc-circles", "--dataset", "nosuchset")
    assert unknown.returncode == 2 and "circles" in unknown.stderr


def test_killed_cli_run_resumes_without_losing_history(tmp_path):
    db = tmp_path / "runs.sqlite3"
    process = subprocess.Popen([sys.executable, "-m", "workbench.cli", "train", "--template", "vqc-circles",
                                "--epochs", "60", "--batch-size", "8", "--option", "n_samples=160",
                                "--store", str(db)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = RunStore(db)
    deadline = time.monotonic() + 240
    checkpoint = None
    while time.monotonic() < deadline:
        runs = store.list_runs()
        if runs and (checkpoint := store.latest_checkpoint(runs[0].id)) and checkpoint[1] >= 2:
            break
        time.sleep(0.02)  # an epoch takes well under a second: kill it while it still has most of its run ahead
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert checkpoint is not None, "the run never reached a checkpoint"
    run_id = store.list_runs()[0].id
    assert run_id in store.mark_stale_running_as_interrupted()
    done = _cli("runs", "resume", run_id, "--store", str(db))
    assert done.returncode == 0, done.stderr
    record = store.get_run(run_id)
    assert record.status == "completed"
    steps = _steps(store.events(run_id))
    assert steps == list(range(len(steps))) and len(steps) % 60 == 0
    assert [e["epoch"] for e in store.events(run_id, kind="epoch")] == list(range(60))
