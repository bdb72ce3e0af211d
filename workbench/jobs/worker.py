"""The worker side of a job: runs one JobSpec and sends everything it produces as messages.

Messages (tuples, in order): ("worker", {pid, host}), ("event", event) for the metric stream,
("store", method, args, kwargs) for the run store (the submitting side applies them: it is the store's
one writer), ("weights", {step, epoch, state}) now and then while training (`WeightsSnapshots`: what the
quantum-state view follows; never stored), ("done", {status, final, error, model}). The same `execute` runs in a local worker
process (messages over a pipe) and in a Ray task (messages over a Ray queue).

Inside the worker, CUDA-Q's per-circuit C++ warnings are filtered at the file-descriptor level
(`quiet_stderr`), and SIGTERM asks the trainer to stop at its next step boundary: it checkpoints and ends.
"""

from __future__ import annotations

import io
import math
import os
import re
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..training.metrics import MetricStream
from ..engine import progress
from .spec import JobSpec, load_reference

Send = Callable[[tuple], None]

# CUDA-Q's emulated hardware targets print one of these per sampled circuit.
NOISE_LINES = re.compile(rb"(named measurement|sampling mode|\[warning\]|cudaq::|WARNING: .*cudaq)", re.I)
PROGRESS_EVERY_S = 0.25
SNAPSHOT_EVERY_S = 0.5  # at most two weight snapshots a second, however fast the steps are
SNAPSHOT_MAX_BYTES = 256 * 1024  # larger: no snapshots (the quantum-state view follows the checkpoints)


class StoreProxy:
    """What the Trainer calls on a RunStore, turned into messages for the submitting side."""

    def __init__(self, send: Send):
        self._send = send

    def append_events(self, run_id: str, events: list[dict]) -> None:
        self._send(("store", "append_events", (run_id, list(events)), {}))

    def save_checkpoint(self, run_id: str, *, step: int, epoch: int, state: bytes) -> None:
        self._send(("store", "save_checkpoint", (run_id,), {"step": step, "epoch": epoch, "state": bytes(state)}))

    def set_status(self, run_id: str, status: str, final_metrics: dict | None = None) -> None:
        self._send(("store", "set_status", (run_id, status, final_metrics), {}))


class WeightsSnapshots:
    """Sends, at most every SNAPSHOT_EVERY_S, the weights the quantum state depends on: those of the quantum
    blocks and of every block before the last of them (they make the features it encodes). The message is
    ("weights", {"step", "epoch", "state"}), `step` the index of the step whose update gave these weights and
    `state` the tensors as `torch.save` bytes (loadable with weights_only). A network whose such weights pass
    SNAPSHOT_MAX_BYTES sends none: a snapshot must stay small beside the step events it rides with.

    Example:
        snapshots = WeightsSnapshots(trainer.model, send)   # then snapshots.stepped(step_event) after each step
    """

    def __init__(self, model, send: Send, every_s: float = SNAPSHOT_EVERY_S, max_bytes: int = SNAPSHOT_MAX_BYTES):
        self._send, self.every_s = send, every_s
        quantum = list(getattr(model, "quantum_layers", {}) or {})
        names = list(model.blocks) if quantum else []
        prefixes = tuple(f"blocks.{name}." for name in names[:names.index(quantum[-1]) + 1]) if quantum else ()
        self._tensors = {key: value for key, value in model.state_dict(keep_vars=True).items()
                         if key.startswith(prefixes)} if prefixes else {}
        size = sum(t.numel() * t.element_size() for t in self._tensors.values())
        self.enabled = bool(self._tensors) and size <= max_bytes
        self._last = -math.inf  # the first step's weights go out at once
        self._pending: dict | None = None  # the newest step not yet sent

    def stepped(self, event: dict) -> None:
        """A step event: its weights go out unless one went out less than `every_s` ago."""
        if not self.enabled:
            return
        self._pending = {"step": event["step"], "epoch": event["epoch"]}
        if time.monotonic() - self._last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Send the newest step's weights if they have not gone out (a run that pauses shows where it stopped)."""
        if self._pending is None:
            return
        import torch  # here, not at import: the jobs package loads without torch until a job runs

        buffer = io.BytesIO()
        torch.save({key: value.detach().cpu().clone() for key, value in self._tensors.items()}, buffer)
        self._send(("weights", {**self._pending, "state": buffer.getvalue(), "time": time.time()}))
        self._pending, self._last = None, time.monotonic()


class ForwardingStream(MetricStream):
    """A metric stream whose every event is also sent to the submitting side (and, after each step, the
    weight snapshot when one is due)."""

    def __init__(self, send: Send):
        super().__init__()
        self._send = send
        self.snapshots: WeightsSnapshots | None = None

    def emit(self, event: dict) -> None:
        super().emit(event)
        self._send(("event", event))
        if self.snapshots is not None and event.get("kind") == "step":
            self.snapshots.stepped(event)


class ProgressReporter:
    """Turns engine circuit reports into throttled 'progress' events: circuits done / total this step,
    shots spent, elapsed time and an ETA for the step (from the cost estimate of a full step)."""

    def __init__(self, trainer, circuits_per_step: int, stream: MetricStream):
        self.trainer, self.total, self.stream = trainer, max(1, circuits_per_step), stream
        self.step = None
        self.done = self.shots = self.shots_total = 0
        self.step_start = self.last = 0.0
        self.run_start = self.previous = time.monotonic()

    def __call__(self, circuits: int, shots: int) -> None:
        position = self.trainer._position
        now = time.monotonic()
        if position["step"] != self.step:
            # The step began when the previous one's last batch ended (the first: when the run began).
            start = self.previous if self.step is not None else self.run_start
            self.step, self.done, self.shots, self.step_start = position["step"], 0, 0, start
        self.previous = now
        self.done += circuits
        self.shots += shots
        self.shots_total += shots
        if now - self.last < PROGRESS_EVERY_S and self.done < self.total:
            return
        self.last = now
        elapsed = now - self.step_start
        rate = self.done / elapsed if elapsed > 0 else None
        eta = max(0.0, (self.total - self.done) / rate) if rate else None
        self.stream.emit({"kind": "progress", "step": position["step"], "epoch": position["epoch"],
                          "circuits_done": self.done, "circuits_total": max(self.total, self.done),
                          "shots": self.shots, "shots_total": self.shots_total, "elapsed": elapsed,
                          "eta": eta, "run_elapsed": now - self.run_start, "time": time.time()})


def quiet_stderr(forward_to: int | None = None) -> Callable[[], int]:
    """Route this process's fd 2 through a filter that drops CUDA-Q's per-circuit warnings (C++ writes them
    straight to fd 2, past Python). Other lines go on to the original stderr. Returns a function giving the
    number of lines dropped so far."""
    original = os.dup(2) if forward_to is None else forward_to
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    dropped = [0]

    def pump() -> None:
        buffer = b""
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            kept = []
            for line in lines:
                if NOISE_LINES.search(line):
                    dropped[0] += 1
                else:
                    kept.append(line)
            if kept:
                os.write(original, b"\n".join(kept) + b"\n")
        if buffer:
            os.write(original, buffer)

    threading.Thread(target=pump, name="stderr-filter", daemon=True).start()
    return lambda: dropped[0]


def execute(job: JobSpec, send: Send, stop_requested: threading.Event | None = None) -> dict[str, Any]:
    """Run the job to its end; every result goes through `send`. Returns the 'done' payload."""
    send(("worker", {"pid": os.getpid(), "host": socket.gethostname()}))
    if job.kind == "benchmark":
        from .benchmark import execute_benchmark

        return execute_benchmark(job, send, stop_requested)
    if job.kind == "bench-suite":
        from .bench_suite import execute_suite

        return execute_suite(job, send, stop_requested)
    return execute_training(job, send, stop_requested)


def execute_training(job: JobSpec, send: Send, stop_requested: threading.Event | None = None,
                     controls: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Train the job's run; the target's files (a qubit mapping) travel as text and live here for the run."""
    if not job.files:
        return _train(job, send, stop_requested, controls)
    with tempfile.TemporaryDirectory(prefix="workbench-target-files-") as folder:
        return _train(job.with_files_in(folder), send, stop_requested, controls)


def _train(job: JobSpec, send: Send, stop_requested: threading.Event | None,
           controls: Callable[[Any], None] | None) -> dict[str, Any]:
    from ..training import TrainConfig, Trainer
    from .cost import estimate

    stream = ForwardingStream(send)
    try:
        dataset = load_reference(job.dataset)
        config = TrainConfig(**job.config)
        trainer = Trainer(job.spec, dataset, config, store=StoreProxy(send) if job.run_id else None, stream=stream,
                          name=job.name, parent_id=job.parent_id)
        trainer.run_id = job.run_id
        stream.snapshots = snapshots = WeightsSnapshots(trainer.model, send)

        def on_status(status: str) -> None:
            if status == "paused":
                snapshots.flush()
            send(("status", status))

        trainer.on_status = on_status
        if job.checkpoint is not None:
            trainer.restore(job.checkpoint)
        cost = estimate(trainer.spec, config, n_train=len(dataset.X_train), n_test=len(dataset.X_test))
    except Exception as err:  # a job that cannot start is a failed job with the reason, not a crash
        message = str(err) if err.__class__.__name__ in ("TrainingError", "DatasetError") else \
            f"{err.__class__.__name__}: {err}"
        stream.emit({"kind": "error", "message": message, "step": 0, "epoch": 0, "time": time.time()})
        if job.run_id:
            StoreProxy(send).set_status(job.run_id, "failed", {"error": message})
        payload = {"status": "failed", "final": {"error": message}, "error": message, "model": None}
        send(("done", payload))
        return payload
    if controls is not None:
        controls(trainer)
    if stop_requested is not None:
        threading.Thread(target=_cancel_when, args=(stop_requested, trainer), daemon=True).start()
    with progress.listening(ProgressReporter(trainer, cost.circuits_per_step, stream)):
        result = trainer.run()
    snapshots.flush()  # the last step's weights: the view's last live state is the run's end
    payload = {"status": result.status, "final": result.final, "error": trainer.error,
               "model": _model_bytes(trainer.model), "cpu_s": time.process_time()}
    send(("done", payload))
    return payload


def _cancel_when(event: threading.Event, trainer) -> None:
    event.wait()
    trainer.cancel()


def _model_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return model.save(Path(tmp) / "model.pt").read_bytes()


# -- the local worker process ------------------------------------------------------------------------


def apply_control(trainer, message: str | tuple, stop: threading.Event) -> None:
    """One control message from the submitting side: pause, resume, step (one step, then pause), cancel, or
    ("delay", seconds) between steps (the playground's speed)."""
    if isinstance(message, tuple) and message[0] == "delay":
        trainer.step_delay = float(message[1])
        return
    {"pause": trainer.pause, "resume": trainer.resume, "step": trainer.step_once,
     "cancel": stop.set}.get(message, lambda: None)()


def process_main(job: JobSpec, events, control) -> None:
    """Entry point of a local worker process (spawned: no CUDA-Q state is inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    dropped = quiet_stderr()
    lock = threading.Lock()

    def send(message: tuple) -> None:
        with lock:
            try:
                events.send(message)
            except OSError:  # the submitting side is gone: nobody would record the rest
                os._exit(1)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def listen(trainer) -> None:
        def loop() -> None:
            while True:
                try:
                    message = control.recv()
                except (EOFError, OSError):
                    stop.set()  # the submitting side is gone: nobody would record the rest
                    return
                apply_control(trainer, message, stop)

        threading.Thread(target=loop, name="job-control", daemon=True).start()

    try:
        if job.kind == "train":
            send(("worker", {"pid": os.getpid(), "host": socket.gethostname()}))
            execute_training(job, send, stop, controls=listen)
        else:
            execute(job, send, stop)
    finally:
        if dropped():
            send(("event", {"kind": "log", "step": 0, "epoch": 0, "time": time.time(),
                            "message": f"{dropped()} CUDA-Q warning lines filtered"}))
        events.close()
