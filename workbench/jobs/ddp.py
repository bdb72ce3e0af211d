"""One model trained data-parallel over N processes with torch DistributedDataParallel.

Every rank builds the same model (same seed), takes the same shuffled order each epoch and trains on its
contiguous share of every batch; DDP averages the gradients, so with equal shares one step equals a
single-process step on the whole batch. The backend follows the parameters' device (`placement`): nccl with
--device cuda, gloo otherwise. A GPU run (--device cuda or a CUDA-Q GPU target) needs one GPU per rank: each
rank sees only its local rank's GPU (CUDA_VISIBLE_DEVICES, set before anything touches CUDA), so its torch
tensors (cuda:0 in that process) and its CUDA-Q target run there. Without enough GPUs that is refused before
any process starts (`check_launch`).

At every epoch end rank 0 sends a checkpoint (CPU tensors: weights, optimizer, shuffling state, position,
process count); the CLI stores it with the run under its step count, like the Trainer, and
`workbench runs resume RUN` continues the run over as many processes as that checkpoint's (or `--nproc N`,
which must divide the batch) from there: the history has no gap and no duplicate, and the weights equal
those of an uninterrupted run.

Launch: `workbench train --nproc N ...` (rank 0's events come back to the CLI, which records the run),
or torchrun, which sets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR itself (this entry keeps no store):
    torchrun --nproc-per-node 2 -m workbench.jobs.ddp --template vqc-circles --epochs 5 --out result.json

Example:
    result = train_ddp(spec, {"name": "circles", "options": {}}, TrainConfig(epochs=2), nproc=2)
    result["state_dict"], result["final"]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import socket
import time
from dataclasses import asdict
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .spec import dataset_reference, load_reference


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def needs_gpus(config: dict) -> bool:
    """Whether the run trains on GPUs (nccl, one per rank): --device cuda or a CUDA-Q GPU target."""
    from ..engine.targets import TARGETS

    target = TARGETS.get(config.get("target") or "torch")
    return torch.device(config.get("device") or "cpu").type == "cuda" or bool(target and target.needs_gpu)


def placement(config: dict) -> tuple[str, str, bool]:
    """(backend, device of the parameters, pin a GPU) of one rank: nccl only for CUDA parameters (it cannot
    reduce CPU tensors), gloo otherwise, also when only the CUDA-Q target runs on the rank's GPU.

    Example:
        placement({"device": "cpu", "target": "nvidia"})  # ("gloo", "cpu", True)
    """
    # The rank's one visible GPU (pin_gpu) is cuda:0 in its process.
    on_gpu = torch.device(config.get("device") or "cpu").type == "cuda"
    return ("nccl", "cuda:0", True) if on_gpu else ("gloo", "cpu", needs_gpus(config))


def check_launch(config: dict, nproc: int) -> None:
    """ValueError, with the fix, when `nproc` processes cannot train `config`: called before anything is
    recorded or started."""
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    if config["batch_size"] % nproc:
        raise ValueError(f"batch size {config['batch_size']} does not split evenly over {nproc} processes: use a "
                         f"batch size that is a multiple of {nproc}, or an --nproc that divides {config['batch_size']}")
    check_gpus(config, nproc, torch.cuda.device_count() if needs_gpus(config) else 0)


def check_gpus(config: dict, nproc: int, available: int) -> None:
    """ValueError, with the fix, when a GPU run has fewer GPUs than processes."""
    if needs_gpus(config) and available < nproc:
        raise ValueError(f"data-parallel training on GPUs (nccl) needs one GPU per process: {nproc} processes, but "
                         f"torch sees {available} GPU(s). Use --device cpu with a CPU target (gloo), or at most "
                         f"{available} processes" if available else
                         "data-parallel training on GPUs (nccl) needs one GPU per process, and torch sees none "
                         "here: use --device cpu with a CPU target (gloo)")


def pin_gpu(local_rank: int) -> None:
    """This process sees only the GPU of `local_rank` (of those it was given); call it before anything touches
    CUDA, which reads CUDA_VISIBLE_DEVICES once. torch's cuda:0 and CUDA-Q's GPU targets then both use it.
    A set but empty CUDA_VISIBLE_DEVICES (all GPUs hidden), or fewer entries than ranks, leaves it none, so
    `check_gpus` refuses the run instead of it using GPUs the user hid."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(local_rank)
        return
    visible = [v.strip() for v in given.split(",") if v.strip()]
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[local_rank] if local_rank < len(visible) else ""


def rank_loop(spec: dict, dataset_ref: Any, config: dict, rank: int, world: int,
              emit: Callable[[dict], None] | None = None, max_steps: int | None = None,
              checkpoint: bytes | None = None,
              on_checkpoint: Callable[[int, int, bytes], None] | None = None) -> dict[str, Any]:
    """The training loop of one rank (the process group is initialised; on GPUs `pin_gpu` was called).

    Rank 0 emits step events and, at each epoch end, calls on_checkpoint(step count, epochs done, state).
    checkpoint: such a state to continue from (every rank loads the same one).
    """
    from torch.nn.parallel import DistributedDataParallel

    from .. import compiler
    from ..training import TrainConfig
    from ..training.trainer import loss_function, task_metric

    settings = TrainConfig(**config)
    if settings.optimizer == "lbfgs":
        raise ValueError("data-parallel training supports adam, sgd and rmsprop (L-BFGS steps are not shardable)")
    _, device, _ = placement(config)
    dataset = load_reference(dataset_ref)
    torch.manual_seed(settings.seed)
    model = compiler.compile(spec, execution=settings.execution.replace(device=device))
    state = torch.load(io.BytesIO(checkpoint), map_location=device, weights_only=True) \
        if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
    parallel = DistributedDataParallel(model)
    params = [p for p in parallel.parameters() if p.requires_grad]
    optimizer = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}[
        settings.optimizer](params, lr=settings.lr)
    loss_fn = loss_function(model.spec.task, model.spec.output_shape()[0])
    X, y = dataset.X_train.to(device), dataset.y_train.to(device)
    order_rng = torch.Generator().manual_seed(settings.seed)
    batch = settings.batch_size
    steps_per_epoch = math.ceil(len(X) / batch)
    step, first_epoch = 0, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        order_rng.set_state(state["order_rng"])
        step, first_epoch = state["step"], state["epoch"] + 1
    for epoch in range(first_epoch, settings.epochs):
        # Dropout draws depend on (seed, epoch, rank) only: a resumed run draws what an uninterrupted one would.
        torch.manual_seed(settings.seed + 7919 * (epoch + 1) + rank)
        order = torch.randperm(len(X), generator=order_rng)
        for b in range(steps_per_epoch):
            index = order[b * batch:(b + 1) * batch]
            share = math.ceil(len(index) / world)
            mine = index[rank * share:(rank + 1) * share]
            start = time.perf_counter()
            optimizer.zero_grad()
            out = parallel(X[mine])
            # A rank's loss is the mean over its share; DDP averages over ranks: equal shares give the batch mean.
            loss = loss_fn(out, y[mine])
            loss.backward()
            optimizer.step()
            total = loss.detach().clone()
            dist.all_reduce(total)
            if emit is not None and rank == 0:
                metric, value = task_metric(model.spec.task, out.detach(), y[mine])
                emit({"kind": "step", "step": step, "epoch": epoch, "loss": float(total) / world, "metric": metric,
                      metric: value, "step_time": time.perf_counter() - start, "ranks": world,
                      "time": time.time()})
            step += 1
            if max_steps is not None and step >= max_steps:
                break
        if max_steps is not None and step >= max_steps:
            break
        if on_checkpoint is not None and rank == 0:
            # CPU tensors: any reader (the GUI, export, a resume on CPU or elsewhere) can load them.
            snapshot = _on_cpu({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "order_rng": order_rng.get_state(), "step": step, "epoch": epoch, "ranks": world})
            on_checkpoint(step, epoch + 1, _state_bytes(snapshot))
    model.eval()
    with torch.no_grad():
        out = model(dataset.X_test.to(device))
    metric, value = task_metric(model.spec.task, out, dataset.y_test.to(device))
    final = {"test_loss": float(loss_fn(out, dataset.y_test.to(device))), f"test_{metric}": value,
             "steps": step, "ranks": world}
    return {"final": final, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def _on_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(item) for item in value)
    return value


def _state_bytes(value: Any) -> bytes:
    # Bytes, not tensors: torch would share tensor storage by file descriptor, gone once the rank exits.
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _rank_main(rank: int, world: int, port: int, spec: dict, dataset_ref: Any, config: dict, results,
               max_steps: int | None, checkpoint: bytes | None) -> None:
    backend, _, gpu = placement(config)
    if gpu:
        pin_gpu(rank)  # spawned on one machine: the local rank is the rank
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        emit = (lambda event: results.put(("event", event))) if rank == 0 else None
        save = (lambda step, epoch, state: results.put(("checkpoint", (step, epoch, state)))) if rank == 0 else None
        result = rank_loop(spec, dataset_ref, config, rank, world, emit, max_steps, checkpoint, save)
        if rank == 0:
            results.put(("done", _state_bytes(result)))
    finally:
        dist.destroy_process_group()


def train_ddp(spec: Any, dataset: Any, config: Any, nproc: int, *, on_event: Callable[[dict], None] | None = None,
              max_steps: int | None = None, checkpoint: bytes | None = None,
              on_checkpoint: Callable[[int, int, bytes], None] | None = None) -> dict[str, Any]:
    """Train over `nproc` local processes; returns rank 0's {"final", "state_dict"}.

    Args:
        on_event: gets rank 0's step events, in order.
        checkpoint: a state from on_checkpoint to continue from (the epoch after it).
        on_checkpoint: called at each epoch end with (step count, epochs done, state bytes), after that epoch's
            events.

    Raises:
        ValueError: `check_launch` refuses nproc for this config (nothing started).
        RuntimeError: a rank failed or was killed (the others are ended too).

    Example:
        train_ddp(spec, "circles", TrainConfig(epochs=2, batch_size=16), nproc=2, on_checkpoint=keep)
    """
    from ..spec import load_spec

    settings = config if isinstance(config, dict) else asdict(config)
    check_launch(settings, nproc)
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    spec_dict = load_spec(spec).to_dict()
    processes = mp.start_processes(_rank_main, args=(nproc, _free_port(), spec_dict, dataset_reference(dataset),
                                                     settings, results, max_steps, checkpoint),
                                   nprocs=nproc, join=False, start_method="spawn")
    outcome = None

    def drain() -> None:
        nonlocal outcome
        while not results.empty():
            kind, payload = results.get()
            if kind == "event" and on_event is not None:
                on_event(payload)
            elif kind == "checkpoint" and on_checkpoint is not None:
                on_checkpoint(*payload)
            elif kind == "done":
                outcome = torch.load(io.BytesIO(payload), weights_only=True)

    try:
        while outcome is None:
            drain()
            if outcome is None and processes.join(0.2):  # every rank ended: their last messages are queued
                drain()
                if outcome is None:
                    raise RuntimeError("the data-parallel processes ended without a result")
        while not processes.join():
            pass
    # A rank failed or was killed (a signal: ProcessExitedException, not a RuntimeError): one message, no traceback.
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as err:
        raise RuntimeError(_rank_failure(err)) from None
    finally:
        # Ctrl-C/SIGTERM here, or an error in on_event/on_checkpoint: no rank keeps training or waits forever
        # in a collective, holding its GPU and the port.
        _end(processes.processes)
    return outcome


def _rank_failure(err: Exception) -> str:
    rank = getattr(err, "error_index", "?")
    if isinstance(err, mp.ProcessExitedException):
        how = f"was killed by {err.signal_name}" if err.signal_name else f"exited with code {err.exit_code}"
        return f"data-parallel process {rank} {how} (out of memory, a crash or a kill?), so the run stopped"
    return f"a data-parallel process failed: {str(err).strip().splitlines()[-1]}"


def _end(processes: list) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(5)
        if process.is_alive():  # ignored SIGTERM (stuck in native code)
            process.kill()
            process.join()


def main(argv: list[str] | None = None) -> None:
    """torchrun entry: every rank runs this; rank 0 writes --out."""
    from .. import templates

    parser = argparse.ArgumentParser(description="Data-parallel training of a workbench spec (under torchrun).")
    parser.add_argument("--spec")
    parser.add_argument("--template")
    parser.add_argument("--dataset")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cuda: nccl, one GPU per rank (its LOCAL_RANK's)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    spec = templates.get(args.template) if args.template else args.spec
    name, options = templates.DEFAULT_DATASETS.get(args.template, (args.dataset, {}))
    from ..training import TrainConfig

    config = asdict(TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed))
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    config = {**config, "device": args.device}
    backend, _, gpu = placement(config)
    if gpu:
        pin_gpu(int(os.environ.get("LOCAL_RANK", rank)))
        check_gpus(config, 1, torch.cuda.device_count())  # this rank's own GPU
    dist.init_process_group(backend)
    try:
        from ..spec import load_spec

        result = rank_loop(load_spec(spec).to_dict(), {"name": args.dataset or name, "options": options}, config,
                           rank, world, emit=lambda event: print(json.dumps(event)) if rank == 0 else None)
    finally:
        dist.destroy_process_group()
    if rank == 0 and args.out:
        with open(args.out, "w") as f:
            json.dump(result["final"], f, indent=2)


if __name__ == "__main__":
    main()
