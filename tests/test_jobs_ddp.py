"""torch.distributed: two gloo processes with DDP take the same steps as one process on the whole batch."""

from __future__ import annotations

import pytest
import torch

import workbench as wb
from workbench.data import load_dataset
from workbench.jobs.ddp import train_ddp
from workbench.training import TrainConfig
from workbench.training.trainer import loss_function

CIRCLES = {"n_samples": 100, "noise": 0.05, "standardize": True}


@pytest.mark.slow
def test_two_ddp_processes_equal_one_process_on_the_combined_batch():
    spec = wb.templates.get("vqc-circles")
    # SGD: weights are then a linear function of the averaged gradients. (Adam divides by sqrt(v) + 1e-8, which
    # turns float noise in the analytically-zero gradients of the last RZ gates into visible steps.)
    config = TrainConfig(epochs=1, batch_size=16, lr=0.2, seed=3, optimizer="sgd")
    steps = 4
    events = []
    result = train_ddp(spec, {"name": "circles", "options": CIRCLES}, config, nproc=2, max_steps=steps,
                       on_event=events.append)
    # The oracle: plain torch, one process, the whole batch of each step, same init and order.
    data = load_dataset("circles", **CIRCLES)
    torch.manual_seed(config.seed)
    model = wb.compile(spec)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    loss_fn = loss_function("classification", 1)
    order = torch.randperm(len(data.X_train), generator=torch.Generator().manual_seed(config.seed))
    losses = []
    for b in range(steps):
        index = order[b * 16:(b + 1) * 16]
        optimizer.zero_grad()
        loss = loss_fn(model(data.X_train[index]), data.y_train[index])
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    for name, value in model.state_dict().items():
        assert torch.allclose(result["state_dict"][name], value, atol=1e-5), name
    assert [e["loss"] for e in events] == pytest.approx(losses, abs=1e-5)
    assert [e["step"] for e in events] == list(range(steps)) and result["final"]["ranks"] == 2
    initial = wb.compile(spec)  # the weights really moved: the check is not trivially true
    assert any(not torch.allclose(initial.state_dict()[k], v) for k, v in model.state_dict().items())


def test_uneven_batches_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="multiple of 3"):
        train_ddp(wb.templates.get("vqc-circles"), "circles", TrainConfig(batch_size=16), nproc=3)


@pytest.mark.slow
def test_a_data_parallel_run_resumes_from_its_epoch_checkpoint_as_if_never_stopped(tmp_path):
    """`workbench train --nproc 2 --epochs 1`, then `workbench runs resume RUN --epochs 2`, equals a straight
    2-epoch run over 2 processes: same step losses with no gap or duplicate, same weights."""
    import io
    import json

    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.store import RunStore

    store_path = tmp_path / "runs.sqlite3"
    common = ["--template", "vqc-circles", "--dataset", "circles", "--option", "n_samples=64",
              "--option", "noise=0.05", "--batch-size", "16", "--lr", "0.1", "--nproc", "2", "--store", str(store_path)]
    runner = CliRunner()

    def train(epochs: int, name: str) -> str:
        result = runner.invoke(app, ["train", *common, "--epochs", str(epochs), "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / name).read_text())["run_id"]

    stopped = train(1, "first.json")
    store = RunStore(store_path)

    def weights(run_id: str) -> dict:
        return torch.load(io.BytesIO(store.latest_checkpoint(run_id)[2]), weights_only=True)["model"]

    def history(run_id: str) -> list[tuple[int, float]]:
        return [(e["step"], e["loss"]) for e in store.events(run_id, "step")]

    per_epoch = len(history(stopped))
    assert store.latest_checkpoint(stopped)[:2] == (per_epoch - 1, 0)  # at the epoch's last step
    after_first = weights(stopped)
    resumed = runner.invoke(app, ["runs", "resume", stopped, "--epochs", "2", "--store", str(store_path)])
    assert resumed.exit_code == 0, resumed.output
    straight = train(2, "straight.json")

    expected = history(straight)
    assert len(expected) == 2 * per_epoch
    assert [step for step, _ in history(stopped)] == list(range(len(expected)))  # no gap, no duplicate
    assert [loss for _, loss in history(stopped)] == pytest.approx([loss for _, loss in expected], rel=1e-6)
    mine, reference = weights(stopped), weights(straight)
    assert mine.keys() == reference.keys()
    for name, value in reference.items():
        assert torch.allclose(mine[name], value, atol=1e-6), name
    # Not trivially equal: the resumed epoch moved the weights.
    assert any(not torch.allclose(after_first[k], v) for k, v in reference.items())
    record = store.get_run(stopped)
    assert record.status == "completed" and record.final_metrics["steps"] == len(expected)


def test_gpu_data_parallel_training_without_gpus_is_one_clear_refusal():
    from workbench.jobs.ddp import check_gpus

    with pytest.raises(ValueError, match="one GPU per process, and torch sees none here: use --device cpu"):
        check_gpus({"device": "cuda", "target": "torch"}, 2, 0)
    with pytest.raises(ValueError, match="2 processes, but torch sees 1 GPU"):
        check_gpus({"device": "cpu", "target": "nvidia"}, 2, 1)
    check_gpus({"device": "cpu", "target": "qpp-cpu"}, 2, 0)  # CPU runs need none
