"""`baseline`: the hybrid network against its matched classical model (each quantum block replaced by dense
layers of at least its parameter count, then tanh) trained the same way on the same dataset: accuracy,
parameters, time."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from ..data import load_dataset
from ..training.baseline import matched_classical_spec
from . import common as C


def load_data(name: str, **options):
    """(X_train, y_train, X_test, y_test, n_classes, description) of a workbench dataset."""
    data = load_dataset(name, **options)
    return (data.X_train.float(), data.y_train, data.X_test.float(), data.y_test, data.n_classes or 2,
            data.description)


def workload_for(features: int, classes: int, n: int) -> dict:
    """The standard workload's shape for a dataset: Linear(features→n), π·tanh, the n-qubit layer, Linear(n→classes)."""
    spec = C.standard_spec_dict(n)
    spec["name"] = f"standard-{n}q-{features}f"
    spec["input_shape"] = [features]
    spec["blocks"][-1]["out_features"] = max(2, classes)
    return spec


def _accuracy(model, X, y) -> float:
    with torch.no_grad():
        out = model(X)
    if out.shape[1] == 1:
        predicted = (out.squeeze(1) > 0).long()
    else:
        predicted = out.argmax(1)
    return float((predicted == y).float().mean())


def train(spec, X, y, Xt, yt, *, epochs: int, batch: int, lr: float, seed: int, target: str, gradient: str) -> dict:
    from .. import compile as wb_compile

    model = wb_compile(spec, target=target, gradient=gradient, seed=seed)
    loss_fn = C.loss_for(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    steps, losses = 0, []
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        for i in range(0, len(X), batch):
            idx = order[i:i + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            optimizer.step()
            steps += 1
            losses.append(loss.item())
    seconds = time.perf_counter() - start
    return {"train_accuracy": _accuracy(model, X, y), "test_accuracy": _accuracy(model, Xt, yt),
            "final_loss": float(np.mean(losses[-max(1, len(X) // batch):])),
            "parameters": sum(p.numel() for p in model.parameters()),
            "quantum_parameters": sum(layer.circuit.n_weights for layer in model.quantum_layers.values()),
            "train_seconds": seconds, "steps": steps, "ms_per_step": seconds / max(1, steps) * 1e3}


def run_baseline(qubits=(4,), batch: int = C.DEFAULT_BATCH, repeats: int = 1, *, template: str | None = None,
                 spec=None, dataset: str | None = None, epochs: int = 30, lr: float = 0.05, target: str = "torch",
                 gradient: str = "adjoint", threads: int | None = 1,
                 progress: Callable[[str], None] | None = None) -> dict:
    """Train hybrid and classical `repeats` times each (different seeds, alternating) and compare."""
    C.set_threads(threads)
    given = C.resolve_spec(template, spec)
    if dataset is None:
        if template:
            from ..templates import DEFAULT_DATASETS

            dataset, options = DEFAULT_DATASETS.get(template, ("circles", {}))
        else:
            dataset, options = "circles", {"standardize": True}
    else:
        options = {}
    X, y, Xt, yt, classes, description = load_data(dataset, **options)
    n = list(qubits)[0]
    if given is None:
        from .. import load_spec

        given = load_spec(workload_for(X.shape[1], classes, n))
    X = X.reshape(len(X), *given.input_shape)
    Xt = Xt.reshape(len(Xt), *given.input_shape)
    classical = matched_classical_spec(given)
    result = C.new_result("baseline", {"template": template, "spec": given.name, "dataset": dataset,
                                       "dataset_description": description, "epochs": epochs, "batch": batch,
                                       "lr": lr, "repeats": repeats, "target": target, "gradient": gradient,
                                       "threads": threads, "qubits": C.quantum_qubits(given)})
    runs: dict[str, list[dict]] = {"hybrid": [], "classical": []}
    for seed in range(repeats):
        for kind in (("hybrid", "classical") if seed % 2 == 0 else ("classical", "hybrid")):
            if progress:
                progress(f"baseline: training the {kind} model (seed {seed})")
            model_spec = given if kind == "hybrid" else classical
            runs[kind].append(train(model_spec, X, y, Xt, yt, epochs=epochs, batch=batch, lr=lr, seed=seed,
                                    target=target if kind == "hybrid" else "torch",
                                    gradient=gradient if kind == "hybrid" else "auto"))
    for kind, items in runs.items():
        row = {"model": kind, "spec": given.name if kind == "hybrid" else classical.name, "runs": len(items)}
        for key in ("train_accuracy", "test_accuracy", "final_loss", "train_seconds", "ms_per_step"):
            values = [r[key] for r in items]
            row[key] = float(np.mean(values))
            if len(values) > 1:
                row[f"{key}_std"] = float(np.std(values))
        row["parameters"] = items[0]["parameters"]
        row["quantum_parameters"] = items[0]["quantum_parameters"]
        row["steps"] = items[0]["steps"]
        result["rows"].append(row)
    hybrid, classic = result["rows"]
    result["notes"].append(
        f"hybrid {hybrid['test_accuracy']:.3f} vs classical {classic['test_accuracy']:.3f} test accuracy on "
        f"{dataset}; {hybrid['parameters']} vs {classic['parameters']} parameters; "
        f"{hybrid['ms_per_step']:.2f} vs {classic['ms_per_step']:.2f} ms per step")
    return C.finish(result)
