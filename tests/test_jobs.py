"""Jobs: training in worker processes, killed and cancelled workers, run ownership, Ctrl-C, the queue,
circuit-batch progress with the cost preview, and CUDA-Q's warnings kept off the terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import workbench as wb
from workbench.data import load_dataset
from workbench.jobs import JobManager, RunOwnedError, resume, submit
from workbench.jobs import ownership
from workbench.jobs.cost import estimate
from workbench.store import RunStore
from workbench.training import TrainConfig, Trainer

CIRCLES = {"n_samples": 120, "noise": 0.05, "standardize": True}
TINY = {"name": "tiny", "task": "classification", "input_shape": [2], "blocks": [
    {"id": "q", "type": "quantum", "role": "output", "qubits": 2, "encoding": "angle", "ansatz": "hardware_efficient",
     "depth": 1, "entanglement": "linear", "rotations": ["ry"],
     "readout": {"mode": "estimator", "observables": ["ZI"]}}]}


@pytest.fixture()
def store(tmp_path):
    return RunStore(tmp_path / "runs.sqlite3")


def _steps(store, run_id):
    return [e["step"] for e in store.events(run_id, "step")]


def _wait_steps(job, n, timeout=120):
    assert job.stream.wait_for(lambda events: sum(e["kind"] == "step" for e in events) >= n, timeout), \
        f"no {n} steps within {timeout} s (status {job.status}, error {job.error})"


def _reference_losses(config, data):
    """The same run, uninterrupted, in this process: the oracle for exact resume."""
    trainer = Trainer(wb.templates.get("vqc-circles"), data, config)
    trainer.run()
    return [e["loss"] for e in trainer.stream.events("step")]


@pytest.mark.slow
def test_killed_worker_is_interrupted_and_resumes_with_no_gap(store):
    data = load_dataset("circles", **CIRCLES)
    config = TrainConfig(epochs=3, batch_size=16, checkpoint_every_steps=4, boundary_every=0)
    job = submit(wb.templates.get("vqc-circles"), data, config, store=store)
    _wait_steps(job, 9)
    os.kill(job.pid, signal.SIGKILL)
    assert job.join(30)
    record = store.get_run(job.run_id)
    assert record.status == "interrupted" and job.status == "interrupted"
    assert record.final_metrics["error"] == "the worker process was killed by SIGKILL"
    assert job.stream.events("end")[-1]["status"] == "interrupted"
    checkpoint_step = store.latest_checkpoint(job.run_id)[0]
    assert checkpoint_step >= 8
    again = resume(job.run_id, store).start()
    assert again.join(180) and again.status == "completed", again.error
    reference = _reference_losses(config, data)
    assert _steps(store, job.run_id) == list(range(len(reference))) == list(range(3 * 5))  # no gap, no duplicate
    # The resumed job's stream (what its charts draw): the stored history, then the redone steps, each once.
    assert [e["step"] for e in again.stream.events("step")] == list(range(3 * 5))
    stored = [e["loss"] for e in store.events(job.run_id, "step")]
    assert stored == pytest.approx(reference, rel=1e-5, abs=1e-6)
    assert store.get_run(job.run_id).status == "completed"


@pytest.mark.slow
def test_second_writer_is_refused_while_the_owner_lives_and_a_dead_owner_is_taken_over(store, tmp_path):
    config = TrainConfig(epochs=5000, batch_size=8, boundary_every=0)  # cancelled long before its end
    job = submit(wb.templates.get("vqc-circles"), load_dataset("circles", **CIRCLES), config, store=store)
    _wait_steps(job, 2)
    refused = subprocess.run([sys.executable, "-m", "workbench.cli", "runs", "resume", job.run_id, "--store",
                              str(store.path)], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert f"process {os.getpid()} on " in refused.stderr and "second writer" in refused.stderr
    job.cancel()
    assert job.join(30) and store.get_run(job.run_id).status == "cancelled"
    assert store.latest_checkpoint(job.run_id) is not None
    # An owner that died without letting go (killed) is stale: the next claim takes the run over.
    subprocess.run([sys.executable, "-c", "import sys; from workbench.store import RunStore; "
                    "from workbench.jobs import ownership; ownership.claim(RunStore(sys.argv[1]), sys.argv[2])",
                    str(store.path), job.run_id], check=True, timeout=120)
    dead = ownership.owner_of(store, job.run_id)
    assert dead.pid != os.getpid() and not dead.alive()
    assert ownership.claim(store, job.run_id).pid == os.getpid()
    ownership.release(store, job.run_id)


def test_a_live_owner_elsewhere_is_named_in_the_refusal(store):
    run_id = store.create_run(spec={}, config={}, dataset={"name": "circles"}, environment={})
    ownership._ensure_table(store)
    with store._write() as connection:  # a writer on another machine that beat 1 s ago
        connection.execute("INSERT INTO run_owners VALUES (?, 'gpu-node-7', 4242, 1.0, ?)", (run_id, time.time() - 1))
    with pytest.raises(RunOwnedError, match="process 4242 on gpu-node-7"):
        ownership.claim(store, run_id)
    with store._write() as connection:  # ... and one silent for longer than STALE_AFTER_S: taken over
        connection.execute("UPDATE run_owners SET heartbeat = ?", (time.time() - ownership.STALE_AFTER_S - 1,))
    assert ownership.claim(store, run_id).pid == os.getpid()


@pytest.mark.slow
def test_ctrl_c_marks_the_cli_run_interrupted_and_it_resumes(tmp_path):
    db = tmp_path / "runs.sqlite3"
    command = [sys.executable, "-m", "workbench.cli", "train", "--template", "vqc-circles", "--epochs", "200",
               "--batch-size", "16", "--option", "n_samples=120", "--store", str(db)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    store = RunStore(db)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        runs = store.list_runs()
        if runs and store.latest_checkpoint(runs[0].id) and len(store.events(runs[0].id, "step")) >= 7:
            break
        time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("the CLI run recorded no checkpoint")
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group gets SIGINT
    _, err = process.communicate(timeout=60)
    run = store.list_runs()[0]
    assert process.returncode == 130 and f"workbench runs resume {run.id}" in err
    assert store.get_run(run.id).status == "interrupted"
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "runs", "resume", run.id, "--store", str(db)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _steps(store, run.id) == list(range(200 * 5)) and store.get_run(run.id).status == "completed"


@pytest.mark.slow
def test_the_queue_admits_one_job_at_a_time_and_shows_positions(store):
    manager = JobManager(max_concurrent=1)
    data = load_dataset("circles", **CIRCLES)
    jobs = [submit(wb.templates.get("vqc-circles"), data, TrainConfig(epochs=30, batch_size=8, seed=s,
                                                                      boundary_every=0),
                   store=store, manager=manager) for s in range(3)]
    _wait_steps(jobs[0], 1)
    assert [j.queue_message() for j in jobs] == ["", "waiting for a free worker", "1 run ahead of yours"]
    assert jobs[1].status == jobs[2].status == "queued" and jobs[1].run_id is None
    jobs[2].cancel()  # leaves the queue without ever starting
    assert jobs[2].join(5) and jobs[2].status == "cancelled"
    jobs[0].cancel()
    _wait_steps(jobs[1], 1)  # the freed slot goes to the next in line
    assert manager.running == 1 and manager.waiting == 0
    jobs[1].cancel()
    assert jobs[1].join(30) and jobs[0].join(30)
    assert {store.get_run(j.run_id).status for j in jobs[:2]} == {"cancelled"}


@pytest.mark.slow
def test_hardware_run_reports_circuit_batches_and_keeps_cudaq_warnings_off_stderr(capfd):
    data = load_dataset("circles", n_samples=6, test_fraction=1 / 3)
    config = TrainConfig(epochs=1, batch_size=4, val_fraction=0, target="quantinuum", shots=50, boundary_every=0)
    cost = estimate(TINY, config, n_train=len(data.X_train), n_test=len(data.X_test))
    assert cost.steps_per_epoch == 1 and cost.shots_per_circuit == 50
    job = submit(TINY, data, config)
    assert job.join(400) and job.status == "completed", job.error
    step = job.stream.events("step")[0]
    executed = step["quantum"]["q"]["circuit_executions"]
    assert executed == cost.circuits_per_step == 4 * (1 + 2 * 4)  # forward + parameter shift of 4 angles
    progress = [e for e in job.stream.events("progress") if e["step"] == 0]
    assert progress[-1]["circuits_done"] == progress[-1]["circuits_total"] == executed
    assert progress[-1]["shots"] == executed * 50
    assert len(progress) >= 2 and all(e["eta"] is not None and e["eta"] >= 0 for e in progress)
    assert [e["circuits_done"] for e in progress] == sorted(e["circuits_done"] for e in progress)
    filtered = [e["message"] for e in job.stream.events("log")]
    err = capfd.readouterr().err
    assert "named measurement" not in err and "sampling mode" not in err
    assert cost.circuits_total == executed + len(data.X_test) + len(data.X_train) and filtered, filtered


@pytest.mark.slow
def test_the_gui_benchmark_runs_as_a_job_and_counts_the_circuits_the_cost_model_predicts():
    from workbench.gui.run_setup import target_choices
    from workbench.jobs.benchmark import BenchmarkJob
    from workbench.jobs.cost import circuits_per_sample

    spec = wb.templates.get("vqc-circles")
    run = BenchmarkJob(spec, targets=[c for c in target_choices() if c["name"] == "torch"], batch=4, repeats=1)
    assert run.total == 5 and not run.finished  # adjoint, backprop, parameter shift, finite diff, surrogate
    run.start()
    assert run.join(300) and run.status == "completed", run.error
    assert run.worker["pid"] != os.getpid()  # timed in a worker process, not here
    rows = {r["gradient"]: r for r in run.snapshot() if not r["skip"]}
    assert {r["status"] for r in rows.values()} == {"done"} and run.done == 5
    for method, row in rows.items():
        per_sample, _, _ = circuits_per_sample(spec, {"target": "torch", "gradient": method})
        assert row["executions"] == 4 * per_sample, method


def test_hardware_runs_show_their_cost_before_starting(tmp_path):
    from workbench.gui.session import cost_preview
    from workbench.gui.run_setup import RunSetup

    data = load_dataset("circles", n_samples=120)
    config = TrainConfig(epochs=3, batch_size=16, target="ionq", shots=200)
    cost = estimate(TINY, config, n_train=len(data.X_train), n_test=len(data.X_test))
    # 96 training samples: 77 fit in 5 steps of 16, 19 validate; each fit sample 1 + 2*4 circuits.
    assert (cost.circuits_per_step, cost.circuits_per_epoch) == (16 * 9, 77 * 9 + 19)
    assert cost.shots_total == cost.circuits_total * 200
    declined = subprocess.run([sys.executable, "-m", "workbench.cli", "train", "--template", "vqc-circles",
                               "--target", "ionq", "--shots", "200", "--epochs", "3", "--store",
                               str(tmp_path / "runs.sqlite3")], input="n\n", capture_output=True, text=True,
                              timeout=300)
    assert declined.returncode == 1 and "not started" in declined.stderr
    assert "cost preview (ionq)" in declined.stderr and "200 shots each" in declined.stderr
    assert RunStore(tmp_path / "runs.sqlite3").list_runs() == []  # nothing ran, nothing recorded
    setup = RunSetup()
    setup.param.update(target="ionq", shots=200, epochs=3)
    spec = wb.templates.get("vqc-circles").to_dict()
    assert "200 shots each" in cost_preview(spec, setup)
    setup.target = "torch"
    assert cost_preview(spec, setup) == ""


def test_weight_snapshots_hold_what_the_quantum_state_depends_on_throttled_and_bounded():
    import io

    import torch

    from workbench.jobs.worker import WeightsSnapshots

    model = wb.compile(wb.templates.get("hybrid-digits"))  # flatten, fc_in, to_angles, qlayer, then a head
    sent: list[tuple] = []
    snapshots = WeightsSnapshots(model, sent.append, every_s=3600)
    snapshots.stepped({"step": 0, "epoch": 0})  # the first goes out at once
    with torch.no_grad():
        model.blocks["qlayer"].weight.add_(1.0)
    snapshots.stepped({"step": 1, "epoch": 0})  # within every_s: held back
    assert [(m[0], m[1]["step"]) for m in sent] == [("weights", 0)]
    snapshots.flush()  # the run paused: the newest weights go out
    snapshots.flush()  # nothing newer: nothing more
    assert [m[1]["step"] for m in sent] == [0, 1]
    first, second = (torch.load(io.BytesIO(m[1]["state"]), weights_only=True) for m in sent)
    # The quantum block and every block before it; not the head after it.
    assert sorted(second) == ["blocks.fc_in.bias", "blocks.fc_in.weight", "blocks.qlayer.weight"]
    assert torch.equal(second["blocks.qlayer.weight"], model.blocks["qlayer"].weight.detach())
    assert torch.equal(first["blocks.qlayer.weight"] + 1.0, second["blocks.qlayer.weight"])  # a copy, not a view
    # Too big to send now and then: no snapshots (the view follows the checkpoints).
    big = WeightsSnapshots(model, sent.append, max_bytes=64)
    big.stepped({"step": 2, "epoch": 0})
    big.flush()
    assert not big.enabled and len(sent) == 2


MAPPING = "Number of nodes: 2\nNumber of edges: ?\n0 --> {1}\n1 --> {0}\n"


def test_a_training_job_carries_its_mapping_file_as_text_for_a_worker_without_this_disk(tmp_path):
    from workbench.engine.targets import TargetError
    from workbench.jobs.spec import JobSpec

    mapping = tmp_path / "device.txt"
    mapping.write_text(MAPPING)
    config = TrainConfig(target="iqm", shots=100, target_options={"mapping_file": str(mapping)})
    job = JobSpec.training(wb.templates.get("vqc-circles"), "circles", config)
    mapping.unlink()  # the worker must not need the submitting machine's file
    assert job.files == {"mapping_file": MAPPING}
    (tmp_path / "worker").mkdir()
    on_worker = job.with_files_in(str(tmp_path / "worker"))
    path = on_worker.config["target_options"]["mapping_file"]
    assert path.startswith(str(tmp_path / "worker")) and open(path).read() == MAPPING and on_worker.files is None
    assert job.config["target_options"]["mapping_file"] == str(mapping)  # the record keeps the user's path

    with pytest.raises(TargetError, match="device.txt.*cannot be read"):
        JobSpec.training(wb.templates.get("vqc-circles"), "circles", config)
    mapping.write_text("0 -> 1\n")
    with pytest.raises(TargetError, match="Number of nodes"):
        JobSpec.training(wb.templates.get("vqc-circles"), "circles", config)


def test_a_run_keeps_its_mapping_text_so_it_resumes_after_the_file_is_gone(tmp_path):
    from workbench.jobs.job import _kept
    from workbench.jobs.spec import JobSpec, target_files

    mapping = tmp_path / "device.txt"
    mapping.write_text(MAPPING)
    settings = {"target": "iqm", "target_options": {"mapping_file": str(mapping)}}
    recorded = _kept(JobSpec.training(wb.templates.get("vqc-circles"), "circles", settings))
    assert recorded == {"target_files": {"mapping_file": MAPPING}}
    mapping.unlink()  # e.g. the GUI session that uploaded it has ended
    assert target_files(settings, recorded["target_files"]) == {"mapping_file": MAPPING}
    # a target that needs no file ignores a stale option instead of failing over a file it never reads
    assert target_files({**settings, "target": "qpp-cpu"}) is None
