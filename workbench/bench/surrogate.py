"""`surrogate`: parameter shift against the surrogate gradient (qtDNN) on one spec and target, under the same
shot budget and under the same wall-clock budget: test accuracy against shots spent and against time.

Shots are counted from the executor (circuits it ran times shots per circuit), never assumed. Test-accuracy
evaluations are inference circuits outside the budget: a user would evaluate either model the same way.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Callable

import torch

from ..data import load_dataset
from . import common as C
from .report import COLUMNS, _STYLE, _html_table, _num, check_rows

METHODS = ("parameter_shift", "surrogate")

# A small classifier for 2-D data: 2 qubits, features re-uploaded before each of 3 RY/RZ + CNOT layers, <Z0>.
SMALL_CIRCLES_SPEC = {
    "name": "surrogate-circles-2q", "task": "classification", "input_shape": [2],
    "blocks": [
        {"type": "linear", "id": "fc_in", "out_features": 2},
        {"type": "activation", "id": "to_angles", "fn": "scaled_tanh", "scale": 3.141592653589793},
        {"type": "quantum", "id": "vqc", "role": "output", "qubits": 2, "encoding": "reupload", "rotation": "ry",
         "ansatz": "hardware_efficient", "depth": 3, "entanglement": "linear",
         "readout": {"mode": "estimator", "observables": ["ZI"]}},
    ],
}

COLUMNS.setdefault("surrogate", [
    ("budget", lambda r: r["budget"]), ("gradient", lambda r: r["gradient"]), ("steps", lambda r: str(r["steps"])),
    ("shots", lambda r: str(r["shots"])), ("circuits", lambda r: str(r["circuits"])),
    ("seconds", lambda r: _num(r["seconds"], "{:.1f}")), ("test acc", lambda r: _num(r["test_accuracy"], "{:.3f}")),
    ("best test acc", lambda r: _num(r["best_test_accuracy"], "{:.3f}")),
    ("fit err", lambda r: _num(r.get("fit_error"), "{:.3f}")), ("cos", lambda r: _num(r.get("gradient_cosine"))),
])


def _accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        out = model(X)
    predicted = (out.squeeze(1) > 0).long() if out.shape[1] == 1 else out.argmax(1)
    return float((predicted == y).float().mean())


def train_under_budget(spec, data, *, gradient: str, target: str, shots: int, shot_budget: int | None = None,
                       seconds: float | None = None, batch: int = 16, lr: float = 0.05, seed: int = 0,
                       eval_every: int = 5, gradient_options: dict | None = None, max_steps: int = 10_000,
                       eval_target: str | None = None) -> dict:
    """Train until the next step would exceed `shot_budget` (counted from the executor) or `seconds` pass.

    Returns steps, shots and circuits spent on training, seconds, the final and the best test accuracy seen
    (evaluated every `eval_every` steps) and the curve of (shots, seconds, test accuracy) points.
    eval_target: evaluate the trained weights on this target instead (e.g. 'torch' exact for a slow emulated
    device: the accuracy of the weights on the ideal machine, with no evaluation circuits on the device).
    """
    from .. import compile as wb_compile, load_spec

    spec = load_spec(spec)
    model = wb_compile(spec, target=target, gradient=gradient, shots=shots, seed=seed,
                       gradient_options=gradient_options if gradient == "surrogate" else None)
    layers = list(model.quantum_layers.values())
    judge = wb_compile(spec, target=eval_target) if eval_target else model

    def accuracy() -> float:
        if judge is not model:
            judge.load_state_dict(model.state_dict())
        return _accuracy(judge, Xt, yt)

    loss_fn = C.loss_for(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    X, y, Xt, yt = data.X_train.float(), data.y_train, data.X_test.float(), data.y_test
    spent = {"shots": 0, "circuits": 0, "seconds": 0.0}
    curve = [{"shots": 0, "seconds": 0.0, "test_accuracy": accuracy()}]
    steps, last_cost, reports = 0, None, {}
    order = torch.randperm(len(X), generator=generator)
    while steps < max_steps:
        if seconds is not None and spent["seconds"] >= seconds:
            break
        if shot_budget is not None and last_cost is not None and spent["shots"] + last_cost > shot_budget:
            break
        start_row = (steps * batch) % len(X)
        if start_row + batch > len(X):
            order = torch.randperm(len(X), generator=generator)
        idx = order[start_row:start_row + batch] if start_row + batch <= len(X) else order[:batch]
        before = sum(layer.circuit_executions for layer in layers)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(X[idx]), y[idx]).backward()
        optimizer.step()
        spent["seconds"] += time.perf_counter() - started
        circuits = sum(layer.circuit_executions for layer in layers) - before
        last_cost = circuits * shots
        if shot_budget is not None and spent["shots"] + last_cost > shot_budget and steps == 0:
            spent.update(shots=last_cost, circuits=circuits)  # even one step exceeds the budget: report it
            steps = 1
            break
        spent["shots"] += last_cost
        spent["circuits"] += circuits
        steps += 1
        for layer in layers:
            reports = layer.gradient_report() or reports
        if steps % eval_every == 0:
            curve.append({"shots": spent["shots"], "seconds": spent["seconds"],
                          "test_accuracy": accuracy()})
    final = accuracy()
    if curve[-1]["shots"] != spent["shots"]:
        curve.append({"shots": spent["shots"], "seconds": spent["seconds"], "test_accuracy": final})
    return {"gradient": gradient, "steps": steps, **spent, "test_accuracy": final,
            "best_test_accuracy": max(p["test_accuracy"] for p in curve), "curve": curve,
            "fit_error": reports.get("fit_error"), "gradient_cosine": reports.get("gradient_cosine")}


def run_surrogate(*, template: str | None = None, spec: str | None = None, dataset: str = "circles",
                  target: str = "torch", shots: int = 100, shot_budget: int = 400_000, seconds: float = 20.0,
                  batch: int = 16, lr: float = 0.05, seed: int = 0, gradient_options: dict | None = None,
                  eval_target: str | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Both methods under the same shot budget, then under the same wall-clock budget (alternating order)."""
    network = C.resolve_spec(template, spec) or SMALL_CIRCLES_SPEC
    from .. import load_spec

    network = load_spec(network)
    data = load_dataset(dataset, **({"n_samples": 300, "noise": 0.05, "standardize": True}
                                    if dataset == "circles" else {}))
    config = {"spec": network.name, "dataset": dataset, "target": target, "shots": shots, "shot_budget": shot_budget,
              "seconds": seconds, "batch": batch, "lr": lr, "seed": seed, "gradient_options": gradient_options,
              "eval_target": eval_target}
    result = C.new_result("surrogate", config)
    for budget, limits in (("shots", {"shot_budget": shot_budget}), ("time", {"seconds": seconds})):
        methods = METHODS if budget == "shots" else tuple(reversed(METHODS))
        for method in methods:
            if progress:
                progress(f"{method} under the {budget} budget")
            options = dict(gradient_options or {})
            if budget == "time":  # the exact reference for the cosine metric is a diagnostic: not on the clock
                options["reference_max_qubits"] = 0
            row = train_under_budget(network, data, gradient=method, target=target, shots=shots, batch=batch,
                                     lr=lr, seed=seed, gradient_options=options or None, eval_target=eval_target,
                                     **limits)
            result["rows"].append({"budget": budget, **row})
    for budget in ("shots", "time"):
        rows = {r["gradient"]: r for r in result["rows"] if r["budget"] == budget}
        gain = rows["surrogate"]["best_test_accuracy"] - rows["parameter_shift"]["best_test_accuracy"]
        C.check(result, f"surrogate - parameter shift best test accuracy ({budget} budget)", gain, "> 0",
                met=gain > 0, executor=target)
    result["notes"].append(f"{shots} shots per circuit; shots counted from the executor's circuit count. "
                           "Test-accuracy evaluations are not charged to the budget"
                           + (f" (they run on {eval_target})." if eval_target else ".")
                           + " The surrogate's seconds include its refits; under the time budget it computes no exact "
                           "reference gradient (so no cosine), under the shot budget it does on small noise-free "
                           "circuits.")
    return C.finish(result)


def _figures(result: dict) -> list:
    import plotly.graph_objects as go

    figs = []
    for budget, axis, title in (("shots", "shots", "shots spent on training"),
                                ("time", "seconds", "training seconds (wall clock)")):
        fig = go.Figure()
        for row in (r for r in result["rows"] if r["budget"] == budget):
            fig.add_scatter(name=row["gradient"], x=[p[axis] for p in row["curve"]],
                            y=[p["test_accuracy"] for p in row["curve"]], mode="lines+markers")
        fig.update_layout(title=f"Test accuracy against {title} (same {budget} budget)", xaxis_title=title,
                          yaxis_title="test accuracy")
        figs.append(fig)
    return figs


def write_surrogate_html(result: dict, path: str | Path) -> Path:
    """A self-contained page (plotly.js inlined) in the style of the other suites' reports."""
    headers = [h for h, _ in COLUMNS["surrogate"]]
    rows = [[str(f(r)) for _, f in COLUMNS["surrogate"]] for r in result["rows"]]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>workbench bench surrogate</title>",
             f"<style>{_STYLE}</style></head><body><h1>Surrogate gradient vs parameter shift</h1>"]
    parts += [f"<p><b>{html.escape(note)}</b></p>" for note in result.get("notes", [])]
    parts.append(_html_table(["check", "where", "value", "target", "met"], check_rows(result)))
    for i, fig in enumerate(_figures(result)):
        parts.append(fig.to_html(include_plotlyjs=i == 0, full_html=False))
    parts.append("<h3>Measurements</h3>" + _html_table(headers, rows))
    parts.append("<details><summary>configuration and machine</summary><pre>" + html.escape(json.dumps(
        {"config": result.get("config"), "machine": result.get("machine")}, indent=1, default=str)) + "</pre></details>")
    parts.append("</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path
