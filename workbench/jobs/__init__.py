"""Jobs: every training run, matched baseline and benchmark runs in its own worker process (or a Ray
task), never in the process that submitted it; events stream back into a MetricStream, and the
submitting side writes the run store.

Modules: spec (JobSpec: what a job carries), worker (the worker side), job (Job, LocalJob: the handle),
queue (JobManager: the per-server cap and queue), ownership (one live writer per run), cost (circuits and
shots before a run), api (submit, resume, run_many). The worker listens to the engine's circuit-batch
hook, `workbench.engine.progress`.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "JobSpec": "spec", "Job": "job", "LocalJob": "job", "SavedModel": "job", "JobManager": "queue",
    "default_manager": "queue", "RunOwnedError": "ownership", "CostEstimate": "cost", "estimate": "cost",
    "submit": "api", "resume": "api", "run_many": "api", "cluster_from": "api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy: `import workbench.jobs` stays cheap for a front end that only names a job.
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
