"""A per-server cap on concurrent jobs, with a first-come queue whose positions users see.

Example:
    manager = JobManager(max_concurrent=2)
    job = LocalJob(spec, manager=manager).start()
    job.queue_message()   # "2 runs ahead of yours" while it waits
"""

from __future__ import annotations

import os
import threading


def default_limit() -> int:
    """$WORKBENCH_MAX_JOBS, else one job per CPU core (at least 1)."""
    value = os.environ.get("WORKBENCH_MAX_JOBS")
    if value:
        try:
            limit = int(value)
        except ValueError:
            raise ValueError(f"WORKBENCH_MAX_JOBS={value!r}: set it to a whole number of concurrent jobs") from None
        if limit < 1:
            raise ValueError(f"WORKBENCH_MAX_JOBS={value!r}: at least 1 job must be able to run")
        return limit
    return max(1, os.cpu_count() or 1)


class JobManager:
    """Admits at most `max_concurrent` jobs at a time; the others wait in arrival order."""

    def __init__(self, max_concurrent: int | None = None):
        self.max_concurrent = max_concurrent if max_concurrent is not None else default_limit()
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {self.max_concurrent}")
        self._waiting: list = []
        self._running: list = []
        self._withdrawn: set[int] = set()
        self._changed = threading.Condition()

    def acquire(self, job) -> bool:
        """Block until `job` may run (True) or it was withdrawn while waiting (False)."""
        with self._changed:
            self._waiting.append(job)
            while True:
                if id(job) in self._withdrawn:
                    self._withdrawn.discard(id(job))
                    self._waiting.remove(job)
                    self._changed.notify_all()
                    return False
                if self._waiting[0] is job and len(self._running) < self.max_concurrent:
                    self._waiting.pop(0)
                    self._running.append(job)
                    self._changed.notify_all()
                    return True
                self._changed.wait()

    def release(self, job) -> None:
        with self._changed:
            if job in self._running:
                self._running.remove(job)
            self._changed.notify_all()

    def withdraw(self, job) -> None:
        """Take a waiting job out of the queue (it was cancelled before it started)."""
        with self._changed:
            if job in self._waiting:
                self._withdrawn.add(id(job))
                self._changed.notify_all()

    def position(self, job) -> int | None:
        """How many jobs are ahead of `job` in the queue (None when it is not waiting)."""
        with self._changed:
            return self._waiting.index(job) if job in self._waiting else None

    @property
    def running(self) -> int:
        with self._changed:
            return len(self._running)

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._waiting)


_DEFAULT: JobManager | None = None
_DEFAULT_LOCK = threading.Lock()


def default_manager() -> JobManager:
    """The process's (the server's) job manager, created on first use."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = JobManager()
        return _DEFAULT
