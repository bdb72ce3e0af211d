"""VQE as an optimiser of a discrete choice (seed 001, §4.2, generalised).

Candidates are n-bit codes; their measured costs form a diagonal Hamiltonian H = Σ_x c(x)|x⟩⟨x|, written
as a sum of Pauli-Z products by the Walsh–Hadamard transform. A VQE on the workbench's own engine
(`workbench.CircuitFunction`, so any target works) minimises ⟨ψ|H|ψ⟩; the most probable basis
state of the trained circuit is the chosen candidate, reported with its probability.

Example:
    >>> result = minimise_diagonal(np.array([3.0, 1.0, 2.0, 5.0]))
    >>> result.best, round(result.probability, 2)
    (1, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..engine.function import CircuitFunction

MAX_BITS = 10  # 2**10 Pauli-Z terms is the most a search Hamiltonian may have


class VQEError(ValueError):
    pass


def walsh_hadamard(values: np.ndarray) -> np.ndarray:
    """a_S = 2^-n Σ_x values[x] (-1)^popcount(S & x), the Pauli-Z coefficients of diag(values)."""
    a = np.array(values, dtype=float)
    h = 1
    while h < len(a):
        for i in range(0, len(a), 2 * h):
            left, right = a[i:i + h].copy(), a[i + h:i + 2 * h].copy()
            a[i:i + h], a[i + h:i + 2 * h] = left + right, left - right
        h *= 2
    return a / len(a)


def diagonal_hamiltonian(costs: np.ndarray) -> list[dict]:
    """Pauli-Z terms of diag(costs); character q of a term acts on qubit q, the code's bit q."""
    n = int(np.log2(len(costs)))
    if 2**n != len(costs):
        raise VQEError(f"a diagonal Hamiltonian needs 2**n costs, got {len(costs)}")
    coefficients = walsh_hadamard(costs)
    return [{"coeff": float(c), "pauli": "".join("Z" if (s >> q) & 1 else "I" for q in range(n))}
            for s, c in enumerate(coefficients) if abs(c) > 1e-12]


@dataclass
class VQEResult:
    best: int  # the most probable code
    probability: float  # its probability |<best|psi>|^2
    probabilities: np.ndarray  # shape (2**n,)
    energy: float  # final <psi|H|psi> of the kept restart (standardised costs)
    ground_energy: float  # min of the standardised costs (exact diagonalisation of a diagonal H)
    curves: list[list[float]] = field(default_factory=list)  # energy per step, per restart


def minimise_diagonal(costs: np.ndarray, *, depth: int = 2, steps: int = 150, lr: float = 0.1, restarts: int = 3,
                      seed: int = 0, target: str = "torch") -> VQEResult:
    """Find the ground state of diag(costs) with a hardware-efficient RY ansatz (linear CNOTs).

    Args:
        costs: shape (2**n,), finite; standardised inside (ranking unchanged).
        depth, steps, lr, restarts: ansatz layers, Adam steps, learning rate, random starts (lowest energy kept).
        target: the workbench target the circuit runs on.
    """
    costs = np.asarray(costs, dtype=float)
    n = int(np.log2(len(costs)))
    if not 1 <= n <= MAX_BITS or 2**n != len(costs):
        raise VQEError(f"the VQE optimiser handles 2..2**{MAX_BITS} candidates as 2**n codes, got {len(costs)}")
    if not np.all(np.isfinite(costs)):
        raise VQEError("every code needs a finite cost: give invalid candidates a penalty cost")
    spread = costs.std() or 1.0
    scaled = (costs - costs.mean()) / spread
    block = {"qubits": n, "encoding": "none", "ansatz": "hardware_efficient", "depth": depth, "rotations": ["ry"],
             "entanglement": "linear" if n > 1 else "none"}
    energy_fn = CircuitFunction({**block, "readout": {"hamiltonian": diagonal_hamiltonian(scaled) or
                                                      [{"coeff": 0.0, "pauli": "Z" * n}]}}, target=target)
    sampler = CircuitFunction({**block, "readout": {"mode": "sampler"}}, target=target)
    best_weights, best_energy, curves = None, np.inf, []
    for restart in range(restarts):
        rng = np.random.default_rng(seed + restart)
        weights = torch.tensor(rng.uniform(-np.pi, np.pi, energy_fn.n_weights), requires_grad=True)
        optimiser = torch.optim.Adam([weights], lr=lr)
        curve = []
        for _ in range(steps):
            value, grad = energy_fn.value_and_grad(weights.detach().numpy())
            optimiser.zero_grad()
            weights.grad = torch.from_numpy(np.asarray(grad, dtype=float))
            optimiser.step()
            curve.append(float(value))
        final = float(energy_fn(weights.detach().numpy())[0])
        curves.append(curve + [final])
        if final < best_energy:
            best_energy, best_weights = final, weights.detach().numpy().copy()
    probabilities = np.asarray(sampler(best_weights), dtype=float)
    best = int(np.argmax(probabilities))
    return VQEResult(best, float(probabilities[best]), probabilities, best_energy, float(scaled.min()), curves)
