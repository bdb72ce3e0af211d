"""Command-line running of jobs: a progress bar with per-step and per-circuit-batch progress, the cost
preview of hardware runs, and Ctrl-C/SIGTERM ending the run as interrupted (resumable)."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..engine.gradients.surrogate import describe_accounting
from .job import Job


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM is handled like Ctrl-C (KeyboardInterrupt in the main thread) while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_with_progress(job: Job, label: str, console: Console, *, total_steps: int | None, done_steps: int = 0) -> Job:
    """Run the job to its end with a live bar: steps, loss and metric; circuits done/total this step,
    shots and ETA when the engine reports circuit batches (CUDA-Q targets)."""
    # A run that trains until paused has no total: its bar counts steps ("412 steps") instead of "412/None".
    count = TextColumn("{task.completed}/{task.total}" if total_steps is not None else "{task.completed} steps")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), count,
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=console, transient=False) as progress:
        steps = progress.add_task(label, total=total_steps, status="", completed=done_steps)
        circuits = None

        def on_event(event: dict) -> None:
            nonlocal circuits
            kind = event["kind"]
            if kind == "step":
                metric = event["metric"]
                progress.update(steps, completed=event["step"] + 1,
                                status=f"loss {event['loss']:.4f} {metric} {event[metric]:.3f}"
                                       + describe_accounting(event.get("quantum", {})))
            elif kind == "epoch" and "val_loss" in event:
                progress.update(steps, status=f"epoch {event['epoch'] + 1}: val loss {event['val_loss']:.4f}")
            elif kind == "progress":
                if circuits is None:
                    circuits = progress.add_task("  circuits this step", total=event["circuits_total"], status="")
                eta = f", step ETA {event['eta']:.0f} s" if event.get("eta") is not None else ""
                progress.update(circuits, total=event["circuits_total"], completed=event["circuits_done"],
                                status=f"shots {event['shots_total']:,}{eta}")
            elif kind == "log":
                console.print(f"[dim]{event['message']}[/]")

        subscription = job.stream.subscribe(on_event, replay=False)
        try:
            with sigterm_as_interrupt():
                job.run()
        finally:
            subscription.join(timeout=5)
    return job


def train_distributed(spec, dataset, config, nproc: int, store, console: Console, label: str, *,
                      run_id: str | None = None, checkpoint: tuple[int, int, bytes] | None = None) -> dict:
    """`workbench train --nproc N`: one data-parallel run over N local processes; this process records it
    (the store's one writer): rank 0's step events, and a checkpoint at every epoch end.

    run_id, checkpoint: continue that run from that (step count, epochs done, state) (see `resume_distributed`).
    ValueError before anything is recorded when nproc cannot train config (`check_launch`). The exception of a
    run that stops carries its id as `run_id`.
    """
    from dataclasses import asdict

    from ..training.trainer import environment
    from . import ownership
    from .ddp import check_launch, train_ddp

    check_launch(asdict(config), nproc)  # a refused run leaves nothing in the store
    if run_id is None:
        run_id = store.create_run(spec=spec.to_dict(), config={**asdict(config), "nproc": nproc},
                                  dataset=dataset.description, environment={**environment(config), "ranks": nproc},
                                  name=spec.name)
    ownership.claim(store, run_id)
    steps_per_epoch = -(-len(dataset.X_train) // config.batch_size)
    pending: list[dict] = []

    def flush() -> None:
        store.append_events(run_id, pending)
        pending.clear()

    def save(step: int, epoch: int, state: bytes) -> None:
        flush()  # the events up to the checkpoint are stored before it: a resume truncates to it
        store.save_checkpoint(run_id, step=step, epoch=epoch, state=state)

    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task(f"{label} ({nproc} processes)", total=steps_per_epoch * config.epochs,
                                     completed=checkpoint[0] if checkpoint else 0, status="")

            def on_event(event: dict) -> None:
                pending.append(event)
                progress.update(task, completed=event["step"] + 1, status=f"loss {event['loss']:.4f}")
                if len(pending) >= 20:
                    flush()

            with sigterm_as_interrupt():
                result = train_ddp(spec, dataset, config, nproc, on_event=on_event, on_checkpoint=save,
                                   checkpoint=checkpoint[2] if checkpoint else None)
    except BaseException as err:
        flush()
        interrupted = isinstance(err, KeyboardInterrupt)
        store.set_status(run_id, "interrupted" if interrupted else "failed",
                         {"error": "interrupted (Ctrl-C or SIGTERM)" if interrupted else str(err)})
        ownership.release(store, run_id)
        err.run_id = run_id  # the CLI names the run to resume
        raise
    flush()
    store.set_status(run_id, "completed", result["final"])
    ownership.release(store, run_id)
    return {"run_id": run_id, "status": "completed", "final": result["final"], "state_dict": result["state_dict"]}


def resume_distributed(record, store, console: Console, *, nproc: int | None = None,
                       epochs: int | None = None) -> dict:
    """Continue the data-parallel run `record` (a RunRecord whose config has "nproc") from its last epoch-end
    checkpoint, over `nproc` processes (default: as many as trained up to that checkpoint; the checkpoints
    record each resume's count). The events from the checkpoint's step count on are dropped first (the run
    redoes them): no gap, no duplicate. Nothing changes in the store when the resume is refused."""
    from dataclasses import asdict

    from ..data import load_dataset
    from ..spec import load_spec
    from ..training import TrainConfig, TrainingError
    from . import ownership
    from .ddp import check_launch

    ownership.claim(store, record.id)
    try:
        checkpoint = store.latest_checkpoint(record.id)
        if checkpoint is None:
            raise TrainingError(f"run {record.id} has no checkpoint yet (data-parallel runs save one at each epoch "
                                "end): start it again with `workbench train --nproc N`")
        settings = {k: v for k, v in record.config.items() if k != "nproc"}
        config = TrainConfig(**{**settings, **({"epochs": epochs} if epochs else {})})
        count, ranks = _checkpoint_position(checkpoint[2], record)
        processes = nproc or ranks
        check_launch(asdict(config), processes)
        dataset = load_dataset(record.dataset["name"], **record.dataset.get("options", {}))
        store.drop_events_to_redo(record.id, count)  # keeps steps 0 .. count - 1: the run redoes the rest
        store.set_status(record.id, "running")
    except BaseException as err:
        ownership.release(store, record.id)
        if isinstance(err, KeyboardInterrupt):  # refusals changed nothing; an interrupt names the run to resume
            err.run_id = record.id
        raise
    spec = load_spec(record.spec)
    return train_distributed(spec, dataset, config, processes, store, console, f"resume {record.id}",
                             run_id=record.id, checkpoint=checkpoint)


def _checkpoint_position(state: bytes, record) -> tuple[int, int]:
    """(steps done, processes that trained them) of a data-parallel checkpoint, read from the state itself:
    checkpoints saved before the step column became a count, and before they named their process count
    (the run's starting one then), resume the same way."""
    import io

    import torch

    from ..training import TrainingError

    try:
        saved = torch.load(io.BytesIO(state), map_location="cpu", weights_only=True)
        return int(saved["step"]), int(saved.get("ranks", record.config["nproc"]))
    except Exception as err:  # UnpicklingError, KeyError...: not a data-parallel checkpoint of this workbench
        raise TrainingError(f"the checkpoint of run {record.id} is damaged or is not a data-parallel checkpoint "
                            f"({type(err).__name__}); it was not loaded: start the run again with "
                            f"`workbench train --nproc {record.config['nproc']}`") from None
