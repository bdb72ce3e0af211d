"""The submitting side of a job: a handle with the controls a Trainer has (start, pause, resume, cancel,
join, status, stream, run_id, error, model), whose work runs elsewhere — a local worker process
(`LocalJob`) or a Ray task (`ray_jobs.RayJob`).

The submitting side is the run store's one writer: it creates the run, owns it (jobs.ownership), and
applies the store writes its worker sends, so a worker needs no disk shared with the store (a Ray node
elsewhere) and two processes never write one run. Cancelling stops the worker at its next step: it
checkpoints and ends as cancelled (Ctrl-C/SIGTERM on the submitting side: as interrupted); a worker that
does not stop within `STOP_GRACE_S` is killed. A worker that dies marks the run interrupted with the reason,
and it resumes from its last checkpoint (`workbench runs resume`).

Example:
    job = LocalJob(JobSpec.training(spec, "circles", TrainConfig(epochs=3)), store=RunStore()).start()
    job.join(); print(job.status, job.final)
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..store import RunStore
from ..training.metrics import MetricStream
from . import ownership
from .queue import JobManager, default_manager
from .spec import JobSpec

STOP_GRACE_S = 5.0
STORE_METHODS = ("append_events", "save_checkpoint", "set_status")
ACTIVE = ("queued", "starting", "running", "paused")


class SavedModel:
    """A trained model as its saved file (what a worker sends back): save it, or load it to use it."""

    def __init__(self, data: bytes):
        self.data = data

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.data)
        return path

    def load(self, **overrides: Any):
        """The model itself (compiled here: this runs the target's warm-up circuit in this process)."""
        import tempfile

        from ..compiler import load_model

        with tempfile.TemporaryDirectory() as tmp:
            return load_model(self.save(Path(tmp) / "model.pt"), **overrides)


class Job:
    """A job seen from the submitting side. Subclasses run the worker; this class applies its messages."""

    def __init__(self, spec: JobSpec, *, store: RunStore | None = None, stream: MetricStream | None = None,
                 manager: JobManager | None = None):
        self.spec = spec
        self.store = store
        self.stream = stream if stream is not None else MetricStream()
        self.manager = manager or default_manager()
        self.status = "idle"
        self.run_id: str | None = spec.run_id
        self.error: str | None = None
        self.final: dict[str, Any] = {}
        self.gradient: dict[str, Any] = {}
        self.steps_per_epoch: int | None = None
        self.worker: dict[str, Any] = {}
        self.cpu_s: float | None = None
        self.paused = False
        self._step_delay = 0.0
        self._step_pending = False  # step_once before the worker listens: sent with the settings
        self.progress: dict[str, Any] | None = None  # the last circuit-batch progress event
        # The newest weight snapshot of a training worker ({"step", "epoch", "state"}; worker.WeightsSnapshots):
        # only the newest is kept, and never stored (checkpoints are the run's record; this is for watching).
        self.weights: dict[str, Any] | None = None
        self._model: bytes | None = None
        self._stop_reason: str | None = None
        self._done = False
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()
        self._last_heartbeat = 0.0

    # -- controls (same names as Trainer) ---------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name or "job"

    @property
    def config(self):
        from ..training import TrainConfig

        return TrainConfig(**self.spec.config) if self.spec.kind == "train" else self.spec.config

    def start(self) -> "Job":
        """Queue the job (returns at once); it runs when the manager has a free slot."""
        self.status = "queued"
        self._thread = threading.Thread(target=self._lifecycle, name=f"job-{self.spec.job_id}", daemon=True)
        self._thread.start()
        return self

    def run(self) -> "Job":
        """Start and wait for the end (Ctrl-C interrupts the run, keeping its last checkpoint)."""
        self.start()
        try:
            while not self._finished.wait(0.2):
                pass
        except KeyboardInterrupt:
            self.interrupt()
            self._finished.wait(STOP_GRACE_S + 10)
            raise
        return self

    def pause(self) -> None:
        self.paused = True
        self._control("pause")

    def resume(self) -> None:
        self.paused = False
        self._step_pending = False
        self._control("resume")

    def step_once(self) -> None:
        """Take one optimiser step and pause again (before start: the run begins with that step)."""
        self.paused = True
        self._step_pending = True
        self._control("step")

    @property
    def step_delay(self) -> float:
        """Seconds the worker waits after each step (the playground's speed control)."""
        return self._step_delay

    @step_delay.setter
    def step_delay(self, seconds: float) -> None:
        self._step_delay = float(seconds)
        self._control(("delay", self._step_delay))

    def _send_settings(self) -> None:
        """What was set before the worker listened: pause, speed, a pending single step."""
        if self.paused:
            self._control("pause")
        if self._step_delay:
            self._control(("delay", self._step_delay))
        if self._step_pending:
            self._control("step")

    def cancel(self) -> None:
        """Stop the job; its run keeps the last checkpoint and is marked cancelled."""
        self._stop("cancelled")

    def interrupt(self) -> None:
        """Stop the job as Ctrl-C does; its run is marked interrupted (resumable)."""
        self._stop("interrupted")

    def join(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def queue_position(self) -> int | None:
        """Runs ahead of this one in the server's queue (None once it runs)."""
        return self.manager.position(self) if self.status == "queued" else None

    def queue_message(self) -> str:
        ahead = self.queue_position
        if ahead is None:
            return ""
        return "waiting for a free worker" if ahead == 0 else \
            f"{ahead} run{'s' if ahead != 1 else ''} ahead of yours"

    def progress_text(self) -> str:
        """'circuits 120/584 in step 3 · 12,000 shots · ETA 40 s' while circuit batches are reported."""
        event = self.progress
        if event is None or self.finished:
            return ""
        eta = f" · step ETA {event['eta']:.0f} s" if event.get("eta") is not None else ""
        shots = f" · {event['shots_total']:,} shots" if event.get("shots_total") else ""
        return f"circuits {event['circuits_done']}/{event['circuits_total']} in step {event['step'] + 1}{shots}{eta}"

    @property
    def model(self) -> SavedModel | None:
        return SavedModel(self._model) if self._model is not None else None

    # -- lifecycle ----------------------------------------------------------------------------------
    def _lifecycle(self) -> None:
        try:
            if not self.manager.acquire(self):
                self._end_without_worker("cancelled", "cancelled while queued")
                return
            try:
                self.status = "starting"
                self._prepare_run()
                self._execute()
            finally:
                self.manager.release(self)
        except Exception as err:  # the submitting side failed (store unwritable, worker would not start)
            self.error = f"{err.__class__.__name__}: {err}"
            self._end_without_worker("failed", self.error)
        finally:
            if self.store is not None and self.run_id is not None:
                ownership.release(self.store, self.run_id)
            self._finished.set()

    def _prepare_run(self) -> None:
        if self.store is None or self.spec.kind != "train":
            return
        if self.run_id is None:
            from ..training.trainer import environment
            from .spec import load_reference

            dataset = self.spec.dataset
            description = dataset.description if not isinstance(dataset, dict) else \
                load_reference(dataset).description
            self.run_id = self.store.create_run(spec=self.spec.spec, config=self.spec.config, dataset=description,
                                                environment={**environment(self.config), **_kept(self.spec)},
                                                name=self.spec.name,
                                                parent_id=self.spec.parent_id)
            self.spec = replace(self.spec, run_id=self.run_id)
        ownership.claim(self.store, self.run_id)
        self._last_heartbeat = time.monotonic()

    def _execute(self) -> None:
        raise NotImplementedError

    def _control(self, message: str) -> None:
        raise NotImplementedError

    def _stop(self, reason: str) -> None:
        if self._finished.is_set():
            return
        self._stop_reason = self._stop_reason or reason
        if self.status == "queued":
            self.manager.withdraw(self)
            return
        self._terminate()

    def _terminate(self) -> None:
        raise NotImplementedError

    # -- messages from the worker ----------------------------------------------------------------------
    def handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "event":
            event = message[1]
            if event.get("kind") == "progress":
                self.progress = event
            if event.get("kind") == "start":
                self.gradient = event.get("gradient") or {}
                self.steps_per_epoch = event.get("steps_per_epoch")
            if event.get("kind") == "end" and self._stop_reason == "interrupted" and event.get("status") == "cancelled":
                event = {**event, "status": "interrupted"}
            self.stream.emit(event)
        elif kind == "store":
            _, method, args, kwargs = message
            if method not in STORE_METHODS:
                raise ValueError(f"a worker asked the store for {method!r}")
            if method == "set_status":
                run_id, status, final = args
                if status == "cancelled" and self._stop_reason == "interrupted":
                    status = "interrupted"
                self.status = status
                args = (run_id, status, final)
            if self.store is not None:
                getattr(self.store, method)(*args, **kwargs)
        elif kind == "status":
            status = message[1]
            self.status = "interrupted" if status == "cancelled" and self._stop_reason == "interrupted" else status
        elif kind == "weights":
            snapshot = message[1]
            # A retried Ray worker replays steps it already reported: the newer snapshot stays.
            if self.weights is None or snapshot["step"] >= self.weights["step"]:
                self.weights = snapshot
        elif kind == "worker":
            self.worker = message[1]
            if self.status in ("starting", "queued"):
                self.status = "running"
        elif kind == "done":
            payload = message[1]
            self._done = True
            self.final, self.error, self._model = payload["final"], payload["error"], payload["model"]
            self.cpu_s = payload.get("cpu_s")  # the worker's CPU time (benchmarks)
            status = payload["status"]
            if status == "cancelled" and self._stop_reason == "interrupted":
                status = "interrupted"
            self.status = status
        self._beat()

    def _beat(self) -> None:
        if self.store is not None and self.run_id is not None and \
                time.monotonic() - self._last_heartbeat > ownership.HEARTBEAT_EVERY_S:
            self._last_heartbeat = time.monotonic()
            ownership.heartbeat(self.store, self.run_id)

    def worker_ended(self, reason: str) -> None:
        """The worker is gone; without its 'done' message the run ends here with `reason`."""
        if self._done:
            return
        status = self._stop_reason or "interrupted"
        message = reason if status == "interrupted" else f"{status}: {reason}"
        self._end_without_worker(status, message)

    def _end_without_worker(self, status: str, reason: str) -> None:
        self.status = status
        self.error = reason if status in ("failed", "interrupted") else self.error
        self.final = {"error": reason}
        if self.store is not None and self.run_id is not None:
            self.store.set_status(self.run_id, status, {"error": reason})
        position = self._last_position()
        self.stream.emit({"kind": "end", "status": status, "reason": reason, "time": time.time(), **position})

    def _last_position(self) -> dict[str, int]:
        steps = self.stream.events("step")
        return {"step": steps[-1]["step"] if steps else 0, "epoch": steps[-1]["epoch"] if steps else 0}


class LocalJob(Job):
    """A job in a worker process on this machine (forkserver: a clean process, never a fork of one with
    CUDA-Q threads; the server preloads torch and the workbench so a job starts in well under a second)."""

    def _execute(self) -> None:
        context = _context()
        events_in, events_out = context.Pipe(duplex=False)
        control_in, control_out = context.Pipe(duplex=False)
        from .worker import process_main

        self._process = context.Process(target=process_main, args=(self.spec, events_out, control_in),
                                        name=f"workbench-job-{self.spec.job_id}", daemon=True)
        self._control_out = control_out
        self._process.start()
        events_out.close()
        control_in.close()
        if self._stop_reason:  # cancelled while it was starting
            self._terminate()
        self._send_settings()
        while True:
            try:
                if not events_in.poll(1.0):
                    self._beat()
                    if not self._process.is_alive() and not events_in.poll(0):
                        break
                    continue
                self.handle(events_in.recv())
            except (EOFError, OSError):
                break
        self._process.join(10)
        self.worker_ended(_exit_reason(self._process.exitcode))
        control_out.close()

    def _control(self, message: str | tuple) -> None:
        connection = getattr(self, "_control_out", None)
        if connection is not None:
            try:
                connection.send(message)
            except (OSError, ValueError):
                pass  # the worker has ended

    def _terminate(self) -> None:
        process = getattr(self, "_process", None)
        if process is None or process.pid is None:
            return  # not started yet: _execute sees the stop reason
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
            threading.Timer(STOP_GRACE_S, _kill_if_alive, args=(process,)).start()

    @property
    def pid(self) -> int | None:
        process = getattr(self, "_process", None)
        return process.pid if process is not None else None


def _kill_if_alive(process) -> None:
    if process.is_alive():
        process.kill()


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "the worker process did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker process was killed by {name}"
    return f"the worker process exited with code {code} before the run ended"


_CONTEXT = None


def _context():
    """The forkserver context, its server preloading the worker's imports (torch, the workbench; not CUDA-Q)."""
    global _CONTEXT
    if _CONTEXT is None:
        context = multiprocessing.get_context("forkserver")
        # torch._dynamo: the first optimizer a process builds imports it (seconds); CUDA-Q stays out (threads).
        context.set_forkserver_preload(["workbench.jobs.worker", "torch._dynamo"])
        _CONTEXT = context
    return _CONTEXT


def _kept(job: JobSpec) -> dict:
    """What a run records so that it can be resumed anywhere: the text of its target's files."""
    return {"target_files": job.files} if job.files else {}
