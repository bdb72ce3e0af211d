"""One model trained data-parallel over N processes with torch DistributedDataParallel.

Every rank builds the same model (same seed), takes the same shuffled order each epoch and trains on its
contiguous share of every batch; DDP averages the gradients, so with equal shares one step equals a
single-process step on the whole batch. gloo on CPU; on GPUs nccl with one GPU per rank, the rank's
quantum layers (torch engine or a CUDA-Q GPU target) on that GPU (CUDA_VISIBLE_DEVICES=rank).

Launch: `workbench train --nproc N ...` (rank 0's events come back to the CLI, which records the run),
or torchrun, which sets RANK/WORLD_SIZE/MASTER_ADDR itself:
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

from .spec import dataset_reference, load_reference


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_loop(spec: dict, dataset_ref: Any, config: dict, rank: int, world: int,
              emit: Callable[[dict], None] | None = None, max_steps: int | None = None) -> dict[str, Any]:
    """The training loop of one rank (the process group is initialised); rank 0 emits events."""
    from torch.nn.parallel import DistributedDataParallel

    from .. import compiler
    from ..training import TrainConfig
    from ..training.trainer import loss_function, task_metric

    settings = TrainConfig(**config)
    if settings.optimizer == "lbfgs":
        raise ValueError("data-parallel training supports adam, sgd and rmsprop (L-BFGS steps are not shardable)")
    gpu = torch.cuda.is_available() and dist.get_backend() == "nccl"
    device = "cuda:0" if gpu else "cpu"
    dataset = load_reference(dataset_ref)
    torch.manual_seed(settings.seed)
    model = compiler.compile(spec, execution=settings.execution.replace(device=str(device)))
    parallel = DistributedDataParallel(model)
    params = [p for p in parallel.parameters() if p.requires_grad]
    optimizer = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}[
        settings.optimizer](params, lr=settings.lr)
    loss_fn = loss_function(model.spec.task, model.spec.output_shape()[0])
    X, y = dataset.X_train.to(device), dataset.y_train.to(device)
    order_rng = torch.Generator().manual_seed(settings.seed)
    batch = settings.batch_size
    steps_per_epoch = math.ceil(len(X) / batch)
    step = 0
    for epoch in range(settings.epochs):
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
    model.eval()
    with torch.no_grad():
        out = model(dataset.X_test.to(device))
    metric, value = task_metric(model.spec.task, out, dataset.y_test.to(device))
    final = {"test_loss": float(loss_fn(out, dataset.y_test.to(device))), f"test_{metric}": value,
             "steps": step, "ranks": world}
    return {"final": final, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def _rank_main(rank: int, world: int, port: int, spec: dict, dataset_ref: Any, config: dict, results,
               max_steps: int | None) -> None:
    gpu = torch.cuda.is_available() and torch.cuda.device_count() >= world
    if gpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(rank)  # this rank's GPU, for torch and CUDA-Q alike
    dist.init_process_group("nccl" if gpu else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        emit = (lambda event: results.put(("event", event))) if rank == 0 else None
        result = rank_loop(spec, dataset_ref, config, rank, world, emit, max_steps)
        if rank == 0:
            # Bytes, not tensors: torch would share tensor storage by file descriptor, gone once this rank exits.
            buffer = io.BytesIO()
            torch.save(result, buffer)
            results.put(("done", buffer.getvalue()))
    finally:
        dist.destroy_process_group()


def train_ddp(spec: Any, dataset: Any, config: Any, nproc: int, *, on_event: Callable[[dict], None] | None = None,
              max_steps: int | None = None) -> dict[str, Any]:
    """Train over `nproc` local processes; returns rank 0's {"final", "state_dict"}. Events go to on_event."""
    import torch.multiprocessing as mp

    from ..spec import load_spec

    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    settings = config if isinstance(config, dict) else asdict(config)
    if settings["batch_size"] % nproc:
        raise ValueError(f"batch size {settings['batch_size']} does not split evenly over {nproc} processes: "
                         f"use a multiple of {nproc}")
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    spec_dict = load_spec(spec).to_dict()
    processes = mp.start_processes(_rank_main, args=(nproc, _free_port(), spec_dict, dataset_reference(dataset),
                                                     settings, results, max_steps),
                                   nprocs=nproc, join=False, start_method="spawn")
    outcome = None
    while outcome is None:
        kind, payload = results.get()
        if kind == "event":
            if on_event is not None:
                on_event(payload)
        else:
            outcome = torch.load(io.BytesIO(payload), weights_only=True)
    while not processes.join():
        pass
    return outcome


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
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    spec = templates.get(args.template) if args.template else args.spec
    name, options = templates.DEFAULT_DATASETS.get(args.template, (args.dataset, {}))
    from ..training import TrainConfig

    config = asdict(TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed))
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    gpu = torch.cuda.is_available() and torch.cuda.device_count() >= world
    if gpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = os.environ.get("LOCAL_RANK", str(rank))
    dist.init_process_group("nccl" if gpu else "gloo")
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
