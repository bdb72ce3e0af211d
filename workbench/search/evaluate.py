"""Training one candidate: the unit of work a search hands to a worker.

A task is plain JSON-able data (so it crosses process and Ray boundaries unchanged); the result is too.
Each candidate is an ordinary training run recorded in the store with the search as its parent, so it
shows up in `workbench runs list`, can be compared and resumed like any run.

Torch runs single-threaded while a task trains: parallelism comes from workers, and one thread per task
makes a candidate's numbers independent of how many workers run beside it.
"""

from __future__ import annotations

import json
import traceback
from functools import lru_cache
from typing import Any

import torch

from ..data import Dataset, load_dataset
from ..store import RunStore
from ..training import TrainConfig, Trainer, resume
from . import objectives as O


@lru_cache(maxsize=4)
def _dataset(name: str, options_json: str) -> Dataset:
    return load_dataset(name, **json.loads(options_json))


def make_task(*, key: str, spec: dict, train: dict, dataset: str, dataset_options: dict, store: str | None,
              search_id: str | None, run_id: str | None = None, gradient_variance: bool = True) -> dict:
    """A task for `evaluate`: `run_id` continues that run (successive halving) to `train['epochs']`."""
    return {"key": key, "spec": spec, "train": train, "dataset": dataset, "dataset_options": dataset_options,
            "store": store, "search_id": search_id, "run_id": run_id, "gradient_variance": gradient_variance}


def evaluate(task: dict) -> dict[str, Any]:
    """Train (or continue) one candidate and measure it. Never raises: a failure is a result with 'error'."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _evaluate(task)
    except Exception as err:  # one broken candidate must not stop the search
        return {"key": task["key"], "run_id": task.get("run_id"), "status": "failed",
                "error": f"{err.__class__.__name__}: {err}", "traceback": traceback.format_exc(limit=3),
                "measures": {}, "epochs": task["train"].get("epochs")}
    finally:
        torch.set_num_threads(threads)


def _evaluate(task: dict) -> dict[str, Any]:
    store = RunStore(task["store"]) if task.get("store") else None
    config = TrainConfig(**task["train"])
    if task.get("run_id") and store is not None and store.latest_checkpoint(task["run_id"]) is not None:
        trainer = resume(task["run_id"], store, epochs=config.epochs)
    else:
        data = _dataset(task["dataset"], json.dumps(task["dataset_options"], sort_keys=True))
        trainer = Trainer(task["spec"], data, config, store=store, name=f"search:{task['key']}",
                          parent_id=task.get("search_id"))
    result = trainer.run()
    if result.status != "completed":
        return {"key": task["key"], "run_id": result.run_id, "status": result.status,
                "error": result.final.get("error", result.status), "measures": {}, "epochs": config.epochs}
    epochs = [e for e in result.history if e["kind"] == "epoch"]
    steps = [e for e in result.history if e["kind"] == "step"]
    if store is not None and task.get("run_id"):
        # A continued run's stream holds only the new steps; the store holds the whole history.
        epochs = store.events(result.run_id, "epoch")
        steps = store.events(result.run_id, "step")
    measures: dict[str, Any] = {k: v for k, v in result.final.items() if isinstance(v, (int, float))}
    if epochs:
        measures.update({k: v for k, v in epochs[-1].items() if k.startswith("val_")})
    measures.update(O.circuit_measures(trainer.model))
    measures.update(O.step_measures(steps))
    if task.get("gradient_variance", True):
        batch = slice(0, min(32, len(trainer.X_train)))
        measures["grad_variance"] = O.gradient_variance(trainer.model, trainer.loss_fn, trainer.X_train[batch],
                                                        trainer.y_train[batch], seed=config.seed)
    return {"key": task["key"], "run_id": result.run_id, "status": "completed", "error": None,
            "measures": measures, "epochs": config.epochs}
