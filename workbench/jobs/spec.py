"""What a job carries: everything a worker process (local or on a Ray node) needs to run it, as plain
picklable data, with no open files, store connections or CUDA-Q objects.

Example:
    job = JobSpec.training(spec, {"name": "circles", "options": {"n_samples": 200}}, TrainConfig(epochs=2))
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from ..data import Dataset

KINDS = ("train", "benchmark", "bench-suite")


@dataclass
class JobSpec:
    """One unit of work for a worker.

    kind: "train" (a training run or matched baseline), "benchmark" (the GUI's per-method step timing) or
        "bench-suite" (a `workbench bench` suite: config {"suite", "arguments"}).
    spec: the architecture spec as a dict.
    config: TrainConfig fields (training) — they include the execution settings (target, gradient,
        device, shots, noise, precision) — or benchmark settings.
    dataset: a reference {"name", "options"} the worker loads, or a Dataset (uploaded data: sent inline).
    run_id: the store's run the submitting side created for it; checkpoint: state to resume from.
    env: environment variables the worker needs before it imports anything (OpenMP thread counts); a Ray
        task gets them through its runtime environment.
    """

    kind: str
    spec: dict
    config: dict
    dataset: dict | Dataset | None
    name: str | None = None
    parent_id: str | None = None
    run_id: str | None = None
    checkpoint: bytes | None = None
    env: dict[str, str] | None = None
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"job kind {self.kind!r}: use one of {', '.join(KINDS)}")

    @classmethod
    def training(cls, spec: Any, dataset: Dataset | dict | str, config: Any, *, name: str | None = None,
                 parent_id: str | None = None) -> "JobSpec":
        """A training job; `config` is a TrainConfig or its dict, `dataset` a Dataset, a name or a reference."""
        from ..spec import load_spec

        data = load_spec(spec).to_dict()
        settings = config if isinstance(config, dict) else asdict(config)
        return cls("train", data, dict(settings), dataset_reference(dataset), name=name or data.get("name"),
                   parent_id=parent_id)


def dataset_reference(dataset: Dataset | dict | str) -> dict | Dataset:
    """A name-and-options reference when the dataset can be rebuilt from its description, else the data."""
    if isinstance(dataset, str):
        return {"name": dataset, "options": {}}
    if isinstance(dataset, dict):
        return {"name": dataset["name"], "options": dict(dataset.get("options") or {})}
    description = dataset.description or {}
    # A CSV's options name a file on this machine: a worker elsewhere gets the data itself.
    if "options" in description and description.get("name") not in (None, "csv"):
        return {"name": description["name"], "options": dict(description["options"])}
    return dataset


def load_reference(reference: dict | Dataset) -> Dataset:
    from ..data import load_dataset

    if isinstance(reference, Dataset):
        return reference
    return load_dataset(reference["name"], **reference.get("options", {}))
