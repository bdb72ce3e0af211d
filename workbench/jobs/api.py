"""The Python API of jobs: submit a training, resume a run, run a sweep; locally or on a Ray cluster.

Example:
    from workbench.jobs import submit
    job = submit(spec, "circles", epochs=5, store=RunStore())
    job.join(); print(job.status, job.final["test_accuracy"])
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from ..data import Dataset
from ..store import RunStore
from ..training.metrics import MetricStream
from . import ownership
from .job import Job, LocalJob
from .queue import JobManager
from .spec import JobSpec, target_files

CLUSTER_VARIABLE = "WORKBENCH_CLUSTER"


def cluster_from(option: str | None) -> str | None:
    """The cluster to use: the option, else $WORKBENCH_CLUSTER, else None (local worker processes).

    'local' forces local; 'auto' or 'ray://HOST:PORT' address a Ray cluster.
    """
    value = option if option is not None else os.environ.get(CLUSTER_VARIABLE) or None
    if value in (None, "", "local"):
        return None
    if value == "auto" or value.startswith("ray://") or _host_port(value):
        return value
    raise ValueError(f"cluster {value!r}: use 'auto' (the Ray cluster this machine belongs to), "
                     "'ray://HOST:PORT' (a Ray client address, port 10001 by default) or 'local'")


def _host_port(value: str) -> bool:
    host, _, port = value.rpartition(":")
    return bool(host) and port.isdigit()


def make_job(spec: JobSpec, *, store: RunStore | None = None, stream: MetricStream | None = None,
             cluster: str | None = None, manager: JobManager | None = None) -> Job:
    """The job handle for `spec` on this machine or on the given Ray cluster (not started)."""
    address = cluster_from(cluster)
    if address is None:
        return LocalJob(spec, store=store, stream=stream, manager=manager)
    from .ray_jobs import RayJob

    return RayJob(spec, address=address, store=store, stream=stream, manager=manager)


def submit(spec: Any, dataset: Dataset | dict | str, config: Any = None, *, store: RunStore | None = None,
           stream: MetricStream | None = None, cluster: str | None = None, name: str | None = None,
           parent_id: str | None = None, manager: JobManager | None = None, **settings: Any) -> Job:
    """Start training `spec` on `dataset` as a job and return its handle at once.

    config: a TrainConfig (or leave it out and pass its fields as keywords, e.g. epochs=5, target="qpp-cpu").
    """
    from ..training import TrainConfig

    config = config if config is not None else TrainConfig(**settings)
    job = JobSpec.training(spec, dataset, asdict(config) if not isinstance(config, dict) else config, name=name,
                           parent_id=parent_id)
    return make_job(job, store=store, stream=stream, cluster=cluster, manager=manager).start()


def resume(run_id: str, store: RunStore, *, stream: MetricStream | None = None, epochs: int | None = None,
           cluster: str | None = None, manager: JobManager | None = None) -> Job:
    """Continue run `run_id` from its last checkpoint as a job (not started).

    Refused (RunOwnedError, naming the owner) while another live process trains it; a dead owner's run is
    taken over. Events after the checkpoint are dropped (the job redoes them): no gap, no duplicate.
    """
    from ..training import TrainingError
    from ..training.trainer import read_checkpoint

    record = store.get_run(run_id)
    ownership.claim(store, record.id)
    try:
        checkpoint = store.latest_checkpoint(record.id)
        if checkpoint is None:
            raise TrainingError(f"run {record.id} has no checkpoint to resume from: start it again with "
                                "`workbench train`")
        step, _, state = checkpoint
        read_checkpoint(state, record.id)  # refuse a damaged or foreign checkpoint before anything changes
        store.drop_events_to_redo(record.id, step)
        config = {**record.config, **({"epochs": epochs} if epochs else {})}
        job = JobSpec("train", record.spec, config, {"name": record.dataset["name"],
                                                     "options": record.dataset.get("options", {})},
                      name=record.name, parent_id=record.parent_id, run_id=record.id, checkpoint=state,
                      files=target_files(config, record.environment.get("target_files")))
        stream = stream if stream is not None else MetricStream()
        for event in store.events(record.id):
            stream.emit(event)
        store.set_status(record.id, "running")
    except BaseException:
        ownership.release(store, record.id)
        raise
    return make_job(job, store=store, stream=stream, cluster=cluster, manager=manager)


def run_many(jobs: list[JobSpec], *, store: RunStore | None = None, cluster: str | None = None,
             manager: JobManager | None = None) -> list[Job]:
    """Run several jobs (a sweep) and wait for all of them; each gets its own stream."""
    handles = [make_job(job, store=store, cluster=cluster, manager=manager).start() for job in jobs]
    for handle in handles:
        handle.join()
    return handles
