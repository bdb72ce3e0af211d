"""The GUI's benchmark (time one training step per target and gradient method) as a job: the timing runs in
a worker process, the rows stream back. `BenchmarkJob` has BenchmarkRun's interface (rows, snapshot(),
version, done, total, batch, recommendation, finished, start(), cancel(), join()), so the GUI swaps one class for the other.

Example:
    run = BenchmarkJob(spec, targets=target_choices(), dataset=data, batch=8).start()
    run.join(); print(run.snapshot())
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .job import LocalJob
from .spec import JobSpec, dataset_reference, load_reference

REPORT_EVERY_S = 0.2


def execute_benchmark(job: JobSpec, send, stop_requested: threading.Event | None = None) -> dict[str, Any]:
    """Worker side: run the benchmark, sending the rows whenever they change."""
    from ..bench.common import thread_environment
    from ..bench.step_benchmark import BenchmarkRun

    # This process is the benchmark's own: its simulators get the thread count torch gets, as in the suites.
    os.environ.update(thread_environment(job.config.get("threads", 1)))
    dataset = load_reference(job.dataset) if job.dataset is not None else None
    run = BenchmarkRun(job.spec, dataset=dataset, **job.config)
    if stop_requested is not None:
        threading.Thread(target=lambda: (stop_requested.wait(), run.cancel()), daemon=True).start()
    finished = threading.Event()

    def report() -> None:
        seen = -1
        while not finished.wait(REPORT_EVERY_S):
            if run.version != seen:
                seen = run.version
                send(("event", _bench_event(run)))

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        run.run()
    finally:
        finished.set()
        reporter.join()
    send(("event", _bench_event(run)))
    payload = {"status": "cancelled" if stop_requested is not None and stop_requested.is_set() else "completed",
               "final": {"done": run.done}, "error": None, "model": None}
    send(("done", payload))
    return payload


def _bench_event(run) -> dict[str, Any]:
    """The rows, the count done and the recommendation (once it has run), as one stream event."""
    return {"kind": "bench", "rows": run.snapshot(), "done": run.done, "recommendation": run.recommendation,
            "step": 0, "epoch": 0}


class BenchmarkJob(LocalJob):
    """The submitting side: rows as the worker last reported them."""

    def __init__(self, spec: Any, *, targets: list[dict], dataset=None, batch: int = 16, noise: dict | None = None,
                 shots: int | None = None, precision: str = "single", include_hardware: bool = False,
                 repeats: int = 2, **kwargs):
        from ..bench.step_benchmark import benchmark_batch, plan
        from ..spec import load_spec

        checked = load_spec(spec)
        settings = {"targets": targets, "batch": batch, "noise": noise, "shots": shots, "precision": precision,
                    "include_hardware": include_hardware, "repeats": repeats}
        super().__init__(JobSpec("benchmark", checked.to_dict(), settings,
                                 dataset_reference(dataset) if dataset is not None else None,
                                 name=f"benchmark {checked.name}"), **kwargs)
        self.rows = plan(checked, targets=targets, noise=noise, shots=shots, include_hardware=include_hardware)
        self.batch = len(benchmark_batch(checked, dataset, batch)[0])
        self.done = 0
        self.recommendation: dict | None = None  # workbench.bench.recommend's answer, as the worker sent it
        self.version = 0
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(1 for r in self.rows if not r["skip"])

    def handle(self, message: tuple) -> None:
        if message[0] == "event" and message[1].get("kind") == "bench":
            with self._lock:
                self.rows, self.done = message[1]["rows"], message[1]["done"]
                self.recommendation = message[1].get("recommendation")
                self.version += 1
        super().handle(message)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self.rows]

    def _lifecycle(self) -> None:
        super()._lifecycle()
        with self._lock:
            self.version += 1  # `finished` changed: the GUI redraws once more
