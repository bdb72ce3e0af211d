"""Objectives of a search: what a trained candidate scored and what it costs, the Pareto front over any
two of them, and the direction (maximise or minimise) of each.

Measures of one candidate (`measure`):
  * the task metric on the validation split (``val_accuracy``, ``val_loss``, ``val_energy``, ``val_mae``) and
    on the test split (``test_…``);
  * ``parameters`` (trainable numbers), ``circuit_depth`` (layers of gates that can run at once, summed over
    quantum blocks), ``two_qubit_gates``, ``executions_per_step`` (circuits run per training step, forward and
    gradient), ``time_per_step`` (seconds);
  * ``grad_variance``: the barren-plateau estimate — the variance, over random initialisations of the quantum
    weights (uniform in [0, 2π)), of the loss gradient with respect to each quantum weight, averaged over the
    weights. It shrinks exponentially with qubits on a barren plateau.

Example:
    >>> front = pareto_front(rows, ("val_accuracy", "parameters"))   # rows: dicts of measures
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import torch
from torch import nn

# Measures a search can optimise or plot, with their direction.
MAXIMISE = {"val_accuracy", "test_accuracy", "train_accuracy", "grad_variance"}
MINIMISE = {"val_loss", "test_loss", "train_loss", "val_energy", "test_energy", "train_energy", "val_mae",
            "test_mae", "train_mae", "parameters", "circuit_depth", "two_qubit_gates", "executions_per_step",
            "time_per_step"}
MEASURES = sorted(MAXIMISE | MINIMISE)
DETERMINISTIC = sorted((MAXIMISE | MINIMISE) - {"time_per_step"})  # the same seed gives the same value


class ObjectiveError(ValueError):
    pass


def check_measure(name: str) -> str:
    if name not in MAXIMISE and name not in MINIMISE:
        raise ObjectiveError(f"unknown objective {name!r}: use one of {', '.join(MEASURES)}")
    return name


def default_objective(task: str) -> str:
    """What a search optimises when not told: validation accuracy, energy or error."""
    return {"classification": "val_accuracy", "energy": "val_energy", "regression": "val_mae"}[task]


def cost(name: str, value: float | None) -> float:
    """The value as something to minimise (accuracy becomes its negative); missing values cost +inf."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    return -value if name in MAXIMISE else value


def circuit_depth(gates: Sequence[Any], n_qubits: int) -> int:
    """Layers of a gate list when every gate starts as soon as its wires are free (as-soon-as-possible)."""
    free_at = [0] * n_qubits
    for gate in gates:
        start = max(free_at[w] for w in gate.wires)
        for w in gate.wires:
            free_at[w] = start + 1
    return max(free_at, default=0)


def circuit_measures(model: nn.Module) -> dict[str, int]:
    """Depth and two-qubit gate count summed over the model's quantum layers (0 for a classical model)."""
    depth = two_qubit = 0
    for layer in getattr(model, "quantum_layers", {}).values():
        gates = layer.circuit.gates
        depth += circuit_depth(gates, layer.circuit.n_qubits)
        two_qubit += sum(1 for g in gates if len(g.wires) == 2)
    return {"circuit_depth": depth, "two_qubit_gates": two_qubit}


def gradient_variance(model: nn.Module, loss_fn, X: torch.Tensor, y: torch.Tensor, *, samples: int = 8,
                      seed: int = 0) -> float | None:
    """Barren-plateau estimate: Var over random quantum weights of d loss / d weight, averaged over weights.

    Args:
        model: a compiled model; its quantum layers' weights are drawn anew for each sample and restored after.
        loss_fn, X, y: the training loss on a small batch.
        samples: random initialisations.
    Returns:
        The mean per-weight variance, or None when the model has no trainable quantum weights.
    """
    layers = [layer for layer in getattr(model, "quantum_layers", {}).values() if layer.weight is not None]
    if not layers:
        return None
    saved = [layer.weight.detach().clone() for layer in layers]
    generator = torch.Generator().manual_seed(seed)
    grads = []
    model.eval()
    try:
        for _ in range(samples):
            with torch.no_grad():
                for layer in layers:
                    layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * math.pi)
            model.zero_grad()
            loss_fn(model(X), y).backward()
            grads.append(torch.cat([layer.weight.grad.detach().flatten().double() for layer in layers]))
    finally:
        with torch.no_grad():
            for layer, weight in zip(layers, saved):
                layer.weight.copy_(weight)
        model.zero_grad()
    return float(torch.stack(grads).var(dim=0).mean())


def step_measures(events: Iterable[dict]) -> dict[str, float | None]:
    """Mean circuit executions and seconds per training step from a run's step events."""
    steps = [e for e in events if e.get("kind") == "step"]
    if not steps:
        return {"executions_per_step": None, "time_per_step": None}
    executions = [sum(q.get("circuit_executions", 0) for q in e.get("quantum", {}).values()) for e in steps]
    return {"executions_per_step": sum(executions) / len(steps),
            "time_per_step": sum(e["step_time"] for e in steps) / len(steps)}


def dominates(a: dict, b: dict, objectives: Sequence[str]) -> bool:
    """a is at least as good as b in every objective and better in one."""
    ca = [cost(o, a.get(o)) for o in objectives]
    cb = [cost(o, b.get(o)) for o in objectives]
    return all(x <= y for x, y in zip(ca, cb)) and any(x < y for x, y in zip(ca, cb))


def pareto_front(rows: Sequence[dict], objectives: Sequence[str]) -> list[dict]:
    """The rows no other row dominates over `objectives` (any two or more measures), in input order."""
    for name in objectives:
        check_measure(name)
    usable = [r for r in rows if all(r.get(o) is not None for o in objectives)]
    return [r for r in usable if not any(dominates(other, r, objectives) for other in usable if other is not r)]
