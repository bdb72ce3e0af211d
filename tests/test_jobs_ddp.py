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
        losses.append(loss.item())
    for name, value in model.state_dict().items():
        assert torch.allclose(result["state_dict"][name], value, atol=1e-5), name
    assert [e["loss"] for e in events] == pytest.approx(losses, abs=1e-5)
    assert [e["step"] for e in events] == list(range(steps)) and result["final"]["ranks"] == 2
    initial = wb.compile(spec)  # the weights really moved: the check is not trivially true
    assert any(not torch.allclose(initial.state_dict()[k], v) for k, v in model.state_dict().items())


def test_uneven_batches_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="multiple of 3"):
        train_ddp(wb.templates.get("vqc-circles"), "circles", TrainConfig(batch_size=16), nproc=3)


def _train_cli(runner, store_path, *args: str):
    from workbench.cli import app

    common = ["train", "--template", "vqc-circles", "--dataset", "circles", "--option", "n_samples=64", "--option",
              "noise=0.05", "--batch-size", "16", "--lr", "0.1", "--store", str(store_path)]
    return runner.invoke(app, [*common, *args])


@pytest.mark.slow
def test_an_interrupted_data_parallel_run_resumes_from_its_epoch_checkpoint_as_if_never_stopped(tmp_path,
                                                                                               monkeypatch):
    """`workbench train --nproc 2 --epochs 2`, stopped by Ctrl-C in the middle of epoch 2, then
    `workbench runs resume RUN`, equals a straight 2-epoch run over 2 processes: the stored history has every
    step once with the same losses, and the weights are the same."""
    import io
    import json
    import multiprocessing

    from typer.testing import CliRunner

    import workbench.jobs.ddp as ddp
    from workbench.cli import app
    from workbench.store import RunStore

    store_path = tmp_path / "runs.sqlite3"
    runner = CliRunner()
    per_epoch = -(-len(load_dataset("circles", **{**CIRCLES, "n_samples": 64}).X_train) // 16)
    stop_at = per_epoch + 1  # the second step of epoch 2: after the epoch-1 checkpoint, before the next one
    real = ddp.train_ddp

    def interrupted(*args, on_event, **kwargs):
        def watch(event: dict) -> None:
            on_event(event)
            if event["step"] == stop_at:
                raise KeyboardInterrupt  # what Ctrl-C raises in the CLI process

        return real(*args, on_event=watch, **kwargs)

    monkeypatch.setattr(ddp, "train_ddp", interrupted)
    first = _train_cli(runner, store_path, "--nproc", "2", "--epochs", "2")
    monkeypatch.setattr(ddp, "train_ddp", real)
    store = RunStore(store_path)
    (stopped,) = [run.id for run in store.list_runs()]
    assert first.exit_code == 130 and f"workbench runs resume {stopped}" in first.output, first.output
    assert "Traceback" not in first.output
    assert not multiprocessing.active_children()  # the ranks were ended with the CLI's run
    assert store.get_run(stopped).status == "interrupted"

    def history(run_id: str) -> list[tuple[int, float]]:
        return [(e["step"], e["loss"]) for e in store.events(run_id, "step")]

    def weights(run_id: str) -> dict:  # no map_location: the checkpoint holds CPU tensors
        return torch.load(io.BytesIO(store.latest_checkpoint(run_id)[2]), weights_only=True)["model"]

    # The checkpoint's step column is a step count, as the Trainer's; the steps after it were recorded.
    assert store.latest_checkpoint(stopped)[:2] == (per_epoch, 1)
    assert [step for step, _ in history(stopped)] == list(range(stop_at + 1))
    after_first = weights(stopped)

    resumed = runner.invoke(app, ["runs", "resume", stopped, "--store", str(store_path)])
    assert resumed.exit_code == 0, resumed.output
    straight = _train_cli(runner, store_path, "--nproc", "2", "--epochs", "2", "--out",
                          str(tmp_path / "straight.json"))
    assert straight.exit_code == 0, straight.output
    reference_id = json.loads((tmp_path / "straight.json").read_text())["run_id"]

    expected = history(reference_id)
    assert [step for step, _ in expected] == list(range(2 * per_epoch))
    assert [step for step, _ in history(stopped)] == list(range(2 * per_epoch))  # no gap, no duplicate
    assert [loss for _, loss in history(stopped)] == pytest.approx([loss for _, loss in expected], rel=1e-6)
    # The resumed steps ran over as many processes as the checkpoint's.
    assert {e["ranks"] for e in store.events(stopped, "step")} == {2}
    mine, reference = weights(stopped), weights(reference_id)
    assert mine.keys() == reference.keys()
    for name, value in reference.items():
        assert torch.allclose(mine[name], value, atol=1e-6), name
    # Not trivially equal: the resumed epoch moved the weights.
    assert any(not torch.allclose(after_first[k], v) for k, v in reference.items())
    record = store.get_run(stopped)
    assert record.status == "completed" and record.final_metrics["steps"] == 2 * per_epoch


def test_refused_data_parallel_runs_leave_nothing_in_the_store(tmp_path):
    from typer.testing import CliRunner

    from workbench.store import RunStore

    store_path = tmp_path / "runs.sqlite3"
    runner = CliRunner()
    uneven = _train_cli(runner, store_path, "--nproc", "3")
    assert uneven.exit_code != 0 and "multiple of 3" in uneven.output and "Traceback" not in uneven.output
    if not torch.cuda.is_available():
        gpu = _train_cli(runner, store_path, "--nproc", "2", "--target", "nvidia")
        assert gpu.exit_code != 0 and "one GPU per process" in gpu.output, gpu.output
    assert RunStore(store_path).list_runs() == []


@pytest.mark.slow
def test_a_rank_killed_by_a_signal_is_one_message_and_ends_the_others(monkeypatch):
    import multiprocessing

    import workbench.jobs.ddp as ddp

    started = []
    real_start = ddp.mp.start_processes

    def start(*args, **kwargs):
        started.append(real_start(*args, **kwargs))
        return started[0]

    monkeypatch.setattr(ddp.mp, "start_processes", start)

    def kill_rank_1(event: dict) -> None:
        if event["step"] == 0:
            started[0].processes[1].kill()  # SIGKILL, as the OOM killer sends

    with pytest.raises(RuntimeError, match=r"^data-parallel process 1 was killed by SIGKILL"):
        train_ddp(wb.templates.get("vqc-circles"), {"name": "circles", "options": CIRCLES},
                  TrainConfig(epochs=3, batch_size=16), nproc=2, on_event=kill_rank_1)
    assert not multiprocessing.active_children()


def test_gpu_data_parallel_training_without_gpus_is_one_clear_refusal():
    from workbench.jobs.ddp import check_gpus

    with pytest.raises(ValueError, match="one GPU per process, and torch sees none here: use --device cpu"):
        check_gpus({"device": "cuda", "target": "torch"}, 2, 0)
    with pytest.raises(ValueError, match="2 processes, but torch sees 1 GPU"):
        check_gpus({"device": "cpu", "target": "nvidia"}, 2, 1)
    check_gpus({"device": "cpu", "target": "qpp-cpu"}, 2, 0)  # CPU runs need none


def test_the_backend_follows_the_parameters_device_and_gpu_targets_still_get_a_gpu():
    from workbench.jobs.ddp import placement

    # nccl reduces only CUDA tensors: it goes with parameters on cuda, gloo with parameters on the CPU.
    assert placement({"device": "cuda", "target": "torch"}) == ("nccl", "cuda:0", True)
    assert placement({"device": "cuda:1", "target": "nvidia"}) == ("nccl", "cuda:0", True)  # its pinned GPU
    assert placement({"device": "cpu", "target": "nvidia"}) == ("gloo", "cpu", True)  # CUDA-Q on the GPU
    assert placement({"device": "cpu", "target": "qpp-cpu"}) == ("gloo", "cpu", False)
    assert placement({"device": "cpu", "target": "torch"}) == ("gloo", "cpu", False)


def test_an_empty_cuda_visible_devices_means_no_gpus(monkeypatch):
    import os

    from workbench.jobs.ddp import main, pin_gpu

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    pin_gpu(1)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"  # unset: all GPUs, the local rank's one
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    pin_gpu(1)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"  # the local rank's of those given
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    pin_gpu(2)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""  # more ranks than GPUs given: none, not someone else's
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    pin_gpu(0)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""  # the user hid every GPU: they stay hidden
    if not torch.cuda.is_initialized():  # torch reads the variable when CUDA starts
        for name, value in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match="torch sees none here"):
            main(["--template", "vqc-circles", "--device", "cuda"])
