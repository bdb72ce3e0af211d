"""A benchmark suite (`workbench bench <suite> --cluster ...`) as a job: the suite runs in a worker (a Ray task),
its progress messages stream back as 'log' events, and its result dict comes back in the job's final payload,
so the submitting side writes the JSON and HTML (workers need no shared disk).

Example:
    result = run_suite_job("engine", {"qubits": [4], "repeats": 1}, cluster="auto", progress=print)
    print(result["worker"])    # {'pid': ..., 'host': ...}: where it ran
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Callable

from .spec import JobSpec


class SuiteError(RuntimeError):
    """The suite did not complete on the cluster; the message says why."""


def suite_job(suite: str, arguments: dict[str, Any], *, threads: int | None = None) -> JobSpec:
    """The job that runs `suite` with `arguments`; refused at once for a suite that needs this machine.

    threads: the thread count for OpenMP and BLAS, set in the worker's environment before CUDA-Q loads.
    """
    from ..bench.common import thread_environment
    from ..bench.suites import LOCAL_ONLY, SUITES

    if suite in LOCAL_ONLY:
        raise SuiteError(LOCAL_ONLY[suite])
    if suite not in SUITES:
        raise SuiteError(f"benchmark suite {suite!r}: use one of {', '.join(SUITES)}")
    return JobSpec("bench-suite", {}, {"suite": suite, "arguments": dict(arguments)}, None, name=f"bench {suite}",
                   env=thread_environment(threads) or None)


def execute_suite(job: JobSpec, send, stop_requested: threading.Event | None = None) -> dict[str, Any]:
    """Worker side: run the suite, sending each progress message as a 'log' event; the result is the final."""
    from ..bench.suites import run_suite

    def progress(message: str) -> None:
        send(("event", {"kind": "log", "message": str(message), "step": 0, "epoch": 0, "time": time.time()}))

    started = time.process_time()  # a Ray worker process is reused: count this suite's CPU only
    try:
        result = run_suite(job.config["suite"], job.config["arguments"], progress=progress)
    except Exception as err:  # a suite that fails is a failed job with the reason, not a lost worker
        message = f"{err.__class__.__name__}: {err}"
        payload = {"status": "failed", "final": {"error": message}, "error": message, "model": None}
    else:
        result["worker"] = {"pid": os.getpid(), "host": socket.gethostname()}
        payload = {"status": "completed", "final": result, "error": None, "model": None,
                   "cpu_s": time.process_time() - started}
    send(("done", payload))
    return payload


def run_suite_job(suite: str, arguments: dict[str, Any], *, cluster: str, threads: int | None = None,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Run `suite` as a job on `cluster` and wait; returns its result with the worker and cluster recorded.

    Raises SuiteError when the suite is refused or does not complete (the reason in the message).
    Ctrl-C cancels the job and propagates.
    """
    from .api import make_job

    job = make_job(suite_job(suite, arguments, threads=threads), cluster=cluster)
    printer = job.stream.subscribe(lambda event: progress(event["message"]) if event.get("kind") == "log" else None) \
        if progress is not None else None
    try:
        job.run()
    finally:
        if printer is not None:
            printer.join(5)  # every message printed before the table
    if job.status != "completed":
        raise SuiteError(f"the {suite} suite did not complete on the cluster ({job.status}): {job.error}")
    return {**job.final, "cluster": cluster}
