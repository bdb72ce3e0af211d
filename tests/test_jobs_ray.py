"""Jobs on Ray: a local Ray instance started by the tests; a worker killed mid-run is retried from its last
checkpoint with no gap or duplicate, and a 4-run sweep gives the same final metrics as the same runs locally."""

from __future__ import annotations

import io
import os
import signal

import pytest
import torch

import workbench as wb
from workbench.data import load_dataset
from workbench.jobs import JobManager, run_many
from workbench.jobs.api import submit
from workbench.jobs.spec import JobSpec
from workbench.store import RunStore
from workbench.training import TrainConfig, Trainer

ray = pytest.importorskip("ray", reason="the [cluster] extra (ray) is not installed")
pytestmark = pytest.mark.slow
CIRCLES = {"n_samples": 120, "noise": 0.05, "standardize": True}
SMALL = {**CIRCLES, "n_samples": 60}


@pytest.fixture()
def store(tmp_path):
    return RunStore(tmp_path / "runs.sqlite3")


def test_a_killed_ray_worker_is_retried_from_its_checkpoint(local_ray, store):
    data = load_dataset("circles", **CIRCLES)
    config = TrainConfig(epochs=2, batch_size=16, checkpoint_every_steps=3, boundary_every=0)
    job = submit(wb.templates.get("vqc-circles"), data, config, store=store, cluster="auto")
    assert job.stream.wait_for(lambda events: sum(e["kind"] == "step" for e in events) >= 8, 240), job.error
    os.kill(job.worker["pid"], signal.SIGKILL)
    assert job.join(300) and job.status == "completed", job.error
    assert job.retries == 1 and job.stream.events("retry")[0]["step"] == 6
    reference = Trainer(wb.templates.get("vqc-circles"), data, config)
    reference.run()
    expected = [e["loss"] for e in reference.stream.events("step")]
    stored = store.events(job.run_id, "step")
    assert [e["step"] for e in stored] == list(range(len(expected)))  # no gap, no duplicate
    assert [e["loss"] for e in stored] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert [e["step"] for e in job.stream.events("step")] == list(range(len(expected)))
    assert store.get_run(job.run_id).status == "completed"


def test_a_sweep_on_ray_matches_the_same_runs_locally(local_ray, store):
    data = load_dataset("circles", **SMALL)
    sweep = [JobSpec.training(wb.templates.get("vqc-circles"), data,
                              TrainConfig(epochs=1, batch_size=16, seed=seed, lr=lr, boundary_every=0))
             for seed, lr in ((0, 0.05), (1, 0.05), (0, 0.1), (1, 0.1))]
    on_ray = run_many(sweep, store=store, cluster="auto")
    local = run_many(sweep, store=store, manager=JobManager(max_concurrent=2))
    assert all(j.status == "completed" for j in on_ray + local), [j.error for j in on_ray + local]
    for remote, here in zip(on_ray, local):
        assert remote.final.keys() == here.final.keys()
        for key, value in here.final.items():
            assert remote.final[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        assert store.get_run(remote.run_id).final_metrics == remote.final
        # The weight snapshots the Quantum state tab follows come back from Ray as from a local worker.
        theirs, ours = (torch.load(io.BytesIO(j.weights["state"]), weights_only=True) for j in (remote, here))
        assert sorted(theirs) == sorted(ours) == ["blocks.fc_in.bias", "blocks.fc_in.weight", "blocks.vqc.weight"]
        assert remote.weights["step"] == here.weights["step"]  # the last snapshot is the last step's
        for key, value in ours.items():
            assert torch.allclose(theirs[key], value, rtol=1e-5, atol=1e-6), key
    assert len({j.final["test_loss"] for j in local}) == 4  # the four settings really differ
