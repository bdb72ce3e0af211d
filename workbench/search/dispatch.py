"""Where candidates train: in this process, in N local worker processes, or on Ray.

Everything a search needs from the execution layer is `make_dispatcher(workers, backend)` returning an
object with `run(tasks, on_result) -> results` (results in task order; `on_result` is called in this
process as each one finishes) and `close()`. A general job layer can replace this module by providing
the same two methods.

Example:
    >>> with make_dispatcher(workers=2) as dispatcher:
    ...     results = dispatcher.run([task_a, task_b], on_result=print)
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Protocol

from .evaluate import evaluate

BACKENDS = ("local", "process", "ray")  # process: worker processes even for one worker (a server)
OnResult = Callable[[dict], None]


class DispatchError(RuntimeError):
    pass


class Dispatcher(Protocol):
    def run(self, tasks: list[dict], on_result: OnResult | None = None) -> list[dict]: ...

    def close(self) -> None: ...


class _Base:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass


class InProcess(_Base):
    """One task after another in this process (workers=1): no start-up cost, easy to debug."""

    def run(self, tasks: list[dict], on_result: OnResult | None = None) -> list[dict]:
        results = []
        for task in tasks:
            results.append(evaluate(task))
            if on_result:
                on_result(results[-1])
        return results


class LocalPool(_Base):
    """N worker processes (spawned, so each starts clean of this process's threads and CUDA-Q state)."""

    def __init__(self, workers: int):
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def run(self, tasks: list[dict], on_result: OnResult | None = None) -> list[dict]:
        futures = {self.pool.submit(evaluate, task): i for i, task in enumerate(tasks)}
        results: list[dict | None] = [None] * len(tasks)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                results[futures[future]] = future.result()
                if on_result:
                    on_result(results[futures[future]])
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayPool(_Base):
    """Tasks as Ray tasks (one CPU each) on the Ray instance this process is connected to, or a local one
    started with `workers` CPUs (address from RAY_ADDRESS when set)."""

    def __init__(self, workers: int):
        try:
            import ray
        except ImportError as err:
            raise DispatchError("backend 'ray' needs Ray: pip install 'hybrid-quantum-workbench[cluster]'") from err
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            ray.init(**({"address": address} if address else {"num_cpus": workers}), include_dashboard=False,
                     log_to_driver=False)
            self.started = True
        self.remote = ray.remote(num_cpus=1)(evaluate)

    def run(self, tasks: list[dict], on_result: OnResult | None = None) -> list[dict]:
        refs = {self.remote.remote(task): i for i, task in enumerate(tasks)}
        results: list[dict | None] = [None] * len(tasks)
        pending = list(refs)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            for ref in done:
                results[refs[ref]] = self.ray.get(ref)
                if on_result:
                    on_result(results[refs[ref]])
        return results  # type: ignore[return-value]

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make_dispatcher(workers: int = 1, backend: str = "local") -> Dispatcher:
    """The executor for a search: in-process for one local worker, a process pool for more (or always, with
    backend 'process': the GUI server trains no candidate itself), or Ray."""
    if backend not in BACKENDS:
        raise DispatchError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if not isinstance(workers, int) or workers < 1:
        raise DispatchError(f"workers must be a positive integer, got {workers!r}")
    if backend == "ray":
        return RayPool(workers)
    if backend == "process":
        return LocalPool(workers)
    return InProcess() if workers == 1 else LocalPool(workers)
