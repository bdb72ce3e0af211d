"""Jobs as Ray tasks on an existing Ray cluster (`--cluster ray://HOST:PORT`, `auto`, or $WORKBENCH_CLUSTER).

The task runs the same worker code as a local job; its messages come back over a Ray queue (an actor),
so events and checkpoints reach the submitting side, which writes the run store: worker nodes need no
shared disk. A worker that dies mid-run (node lost, process killed) is retried from the last checkpoint
the submitting side received, after dropping the events recorded past it: the history has no gap and
no duplicate. Ray is the optional `[cluster]` extra.

Example:
    ray.init(num_cpus=2)    # or an existing cluster: submit(..., cluster="ray://head:10001")
    job = submit(spec, "circles", epochs=3, store=store, cluster="auto"); job.join()
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from .job import STOP_GRACE_S, Job
from .spec import JobSpec

MAX_RETRIES = 2
_CONNECT_LOCK = threading.Lock()


def connect(address: str):
    """The ray module, connected to `address` ('auto' or 'ray://HOST:PORT'); reuses an existing connection."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("--cluster needs Ray: pip install 'hybrid-quantum-workbench[cluster]' "
                           "(or leave --cluster out to run jobs in local worker processes)") from None
    with _CONNECT_LOCK:
        if not ray.is_initialized():
            try:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
            except ConnectionError as err:
                raise RuntimeError(f"cannot reach the Ray cluster at {address!r} ({err}): start one with "
                                   "`ray start --head` or check the address") from None
    return ray


def _follow_control(control, stop: threading.Event, handle) -> None:
    """Poll the control queue on a thread until `stop`, passing each message to `handle`."""
    def loop() -> None:
        while not stop.is_set():
            try:
                message = control.get(timeout=0.5)
            except Exception:  # Empty, or the queue is gone
                continue
            handle(message)

    threading.Thread(target=loop, name="job-control", daemon=True).start()


def _task_body(job: JobSpec, events, control) -> None:
    """Runs on a Ray worker: the job, with control messages polled from the control queue."""
    from .worker import apply_control, execute, execute_training, quiet_stderr

    quiet_stderr()
    stop = threading.Event()
    if job.kind != "train":  # a benchmark has no pause or single step: only cancel applies
        _follow_control(control, stop, lambda message: stop.set() if message == "cancel" else None)
        execute(job, events.put, stop)
        stop.set()
        return

    import os
    import socket

    events.put(("worker", {"pid": os.getpid(), "host": socket.gethostname()}))
    execute_training(job, events.put, stop,
                     controls=lambda trainer: _follow_control(control, stop,
                                                              lambda message: apply_control(trainer, message, stop)))


class RayJob(Job):
    """A job run as a Ray task; the submitting side (this process) owns the store and retries lost workers."""

    def __init__(self, spec: JobSpec, *, address: str, max_retries: int = MAX_RETRIES, **kwargs):
        super().__init__(spec, **kwargs)
        self.address = address
        self.max_retries = max_retries
        self.retries = 0
        self._seen: dict[str, int] = {}
        self._ref = None

    def _execute(self) -> None:
        ray = connect(self.address)
        from ray.util.queue import Empty, Queue

        options = {"runtime_env": {"env_vars": dict(self.spec.env)}} if self.spec.env else {}
        remote = ray.remote(num_cpus=1, max_retries=0, **options)(_task_body)
        while True:
            events, self._controls = Queue(), Queue()
            self._ref = remote.remote(self.spec, events, self._controls)
            self._send_settings()
            if self._stop_reason:
                self._control("cancel")
            error = None
            while True:
                try:
                    self.handle(events.get(timeout=0.5))
                    continue
                except Empty:
                    self._beat()
                ready, _ = ray.wait([self._ref], timeout=0)
                if ready:
                    while not events.empty():
                        self.handle(events.get_nowait())
                    try:
                        ray.get(self._ref)
                    except Exception as err:  # the task failed: its worker died, or the job raised
                        error = err
                    break
            for actor in (events, self._controls):
                ray.kill(actor.actor)
            if error is None or self._done or self._stop_reason or not self._retry(error):
                break
        if error is not None and not self._done:
            self.worker_ended(f"the Ray task failed: {error.__class__.__name__}: {str(error).splitlines()[0]}")

    def _retry(self, error: Exception) -> bool:
        """Set the job up to continue from its last checkpoint; False when it cannot."""
        if self.retries >= self.max_retries or self.store is None or self.run_id is None:
            return False
        checkpoint = self.store.latest_checkpoint(self.run_id)
        if checkpoint is None:
            return False
        step, _, state = checkpoint
        self.retries += 1
        self.store.drop_events_to_redo(self.run_id, step)
        self.spec = replace(self.spec, checkpoint=state)
        self.stream.emit({"kind": "retry", "step": step, "epoch": checkpoint[1], "attempt": self.retries,
                          "time": time.time(), "message": f"worker lost ({error.__class__.__name__}); "
                                                          f"continuing from the checkpoint at step {step}"})
        return True

    def handle(self, message: tuple) -> None:
        # After a retry the worker replays the steps past the checkpoint: identical values, already shown.
        if message[0] == "event" and message[1].get("kind") in ("step", "epoch", "boundary"):
            event = message[1]
            if event["step"] <= self._seen.get(event["kind"], -1) and self.retries:
                return
            self._seen[event["kind"]] = max(event["step"], self._seen.get(event["kind"], -1))
        super().handle(message)

    def _control(self, message: str) -> None:
        queue = getattr(self, "_controls", None)
        if queue is not None:
            try:
                queue.put(message)
            except Exception:
                pass  # the task has ended

    def _terminate(self) -> None:
        self._control("cancel")
        if self._ref is not None:
            threading.Timer(STOP_GRACE_S, self._force_cancel).start()

    def _force_cancel(self) -> None:
        if not self._finished.is_set() and self._ref is not None:
            import ray

            ray.cancel(self._ref, force=True)
