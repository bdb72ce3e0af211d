"""Noise models: one description, applied identically by CUDA-Q's density-matrix target and the torch
density-matrix engine (so either is the other's oracle).

Gate noise follows every gate on the qubits it touched, in a fixed channel order; a two-qubit gate
gets two-qubit depolarizing noise. Readout error is a classical bit flip of each measured bit, applied
to the results (it scales a Pauli expectation by (1 - 2p) per non-identity factor). Finite shots are
drawn here too, from exact values, for the engines that compute exact values.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import torch

from .circuits import ReadoutPlan
from .pauli import pauli_tensor


@dataclass(frozen=True)
class NoiseModel:
    depolarizing: float = 0.0  # single-qubit depolarizing probability after every single-qubit gate
    depolarizing2: float = 0.0  # two-qubit depolarizing probability after every two-qubit gate
    amplitude_damping: float = 0.0
    bit_flip: float = 0.0
    phase_flip: float = 0.0
    readout: float = 0.0  # probability that a measured bit is reported flipped

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            limit = 0.75 if name == "depolarizing" else (15 / 16 if name == "depolarizing2" else 1.0)
            if not 0.0 <= value <= limit:
                raise ValueError(f"noise {name}={value} must lie in [0, {limit:g}]")

    @classmethod
    def from_any(cls, value: "NoiseModel | dict | None") -> "NoiseModel | None":
        if value is None or isinstance(value, NoiseModel):
            return value if value is None or value.any() else None
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown noise channel(s) {sorted(unknown)}: use {sorted(cls.__dataclass_fields__)}")
        model = cls(**{k: float(v) for k, v in value.items()})
        return model if model.any() else None

    def any(self) -> bool:
        return any(v > 0 for v in asdict(self).values())

    def gate_noise(self) -> bool:
        return any(v > 0 for k, v in asdict(self).items() if k != "readout")

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v}


def single_qubit_kraus(model: NoiseModel) -> list[list[torch.Tensor]]:
    """Channels (each a list of 2x2 Kraus matrices) applied after a single-qubit gate, in order."""
    channels = []
    if model.depolarizing:
        p = model.depolarizing
        channels.append([math.sqrt(1 - p) * pauli_tensor("I")] + [math.sqrt(p / 3) * pauli_tensor(k) for k in "XYZ"])
    if model.amplitude_damping:
        g = model.amplitude_damping
        channels.append([torch.tensor([[1, 0], [0, math.sqrt(1 - g)]], dtype=torch.complex128),
                         torch.tensor([[0, math.sqrt(g)], [0, 0]], dtype=torch.complex128)])
    if model.bit_flip:
        p = model.bit_flip
        channels.append([math.sqrt(1 - p) * pauli_tensor("I"), math.sqrt(p) * pauli_tensor("X")])
    if model.phase_flip:
        p = model.phase_flip
        channels.append([math.sqrt(1 - p) * pauli_tensor("I"), math.sqrt(p) * pauli_tensor("Z")])
    return channels


def two_qubit_depolarizing_kraus(p: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Kraus operators of two-qubit depolarizing noise as (factor on first wire, factor on second)."""
    terms = []
    for a, b in itertools.product("IXYZ", repeat=2):
        weight = math.sqrt(1 - p) if a == b == "I" else math.sqrt(p / 15)
        terms.append((weight * pauli_tensor(a), pauli_tensor(b)))
    return terms


def apply_readout_error(values: torch.Tensor, plan: ReadoutPlan, model: NoiseModel | None) -> torch.Tensor:
    """Classical readout bit flips on executor outputs (per-term expectations or probabilities)."""
    if model is None or not model.readout:
        return values
    p = model.readout
    if plan.mode == "estimator":
        weights = torch.tensor([(1 - 2 * p) ** sum(ch != "I" for ch in pauli) for pauli in plan.paulis],
                               dtype=values.dtype, device=values.device)
        return values * weights
    k = len(plan.marginal)
    confusion = torch.tensor([[1 - p, p], [p, 1 - p]], dtype=values.dtype, device=values.device)
    probs = values.reshape(values.shape[0], *([2] * k))
    # Bit j of the outcome index is axis k - j; flip each axis independently.
    for axis in range(1, k + 1):
        probs = torch.movedim(torch.tensordot(probs, confusion, dims=([axis], [1])), -1, axis)
    return probs.reshape(values.shape[0], -1)


def sample_shots(values: torch.Tensor, plan: ReadoutPlan, shots: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Finite-shot estimates from exact values: ±1 outcomes per Pauli term, multinomial counts per bitstring.

    Shape: values (batch, width) → (batch, width), same dtype.
    """
    if plan.mode == "estimator":
        p_plus = ((1 + values) / 2).clamp(0, 1)
        return 2 * torch.binomial(torch.full_like(p_plus, float(shots)), p_plus, generator=generator) / shots - 1
    counts = torch.stack([torch.bincount(torch.multinomial(row.clamp_min(0), shots, replacement=True,
                                                           generator=generator), minlength=values.shape[1])
                          for row in values])
    return counts.to(values.dtype) / shots
