"""What a job carries: everything a worker process (local or on a Ray node) needs to run it, as plain
picklable data, with no open files, store connections or CUDA-Q objects.

Example:
    job = JobSpec.training(spec, {"name": "circles", "options": {"n_samples": 200}}, TrainConfig(epochs=2))
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..data import Dataset
from ..engine.mapping import FILE_OPTIONS, read_mapping
from ..engine.targets import TARGETS

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
    files: the text of the files the target options name (an iqm qubit mapping), read and checked on the
        submitting side: a worker on another node cannot read this machine's paths.
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
    files: dict[str, str] | None = None
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
        settings = dict(config if isinstance(config, dict) else asdict(config))
        return cls("train", data, settings, dataset_reference(dataset), name=name or data.get("name"),
                   parent_id=parent_id, files=target_files(settings))

    def with_files_in(self, folder: str) -> "JobSpec":
        """This job with its target files written into `folder` and its target options naming them there."""
        options = dict(self.config.get("target_options") or {})
        for key, text in (self.files or {}).items():
            path = Path(folder) / f"{key}.txt"
            path.write_text(text, encoding="utf-8")
            options[key] = str(path)
        return replace(self, config={**self.config, "target_options": options}, files=None)


def target_files(settings: dict, kept: dict[str, str] | None = None) -> dict[str, str] | None:
    """The text of each file the chosen target needs (`Target.needs`, e.g. iqm's mapping_file), checked.

    Args:
        settings: TrainConfig fields (target, target_options).
        kept: the texts a run recorded when it started: a resumed run uses them, so it does not depend on a
            file that may be gone (a GUI session's upload is deleted with the session).
    """
    target = settings.get("target") or ""
    options = settings.get("target_options") or {}
    needed = TARGETS[target].needs if target in TARGETS else ()
    files = {}
    for key in FILE_OPTIONS:
        if key in needed and options.get(key):
            files[key] = (kept or {}).get(key) or read_mapping(options[key], target)
    return files or None


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
