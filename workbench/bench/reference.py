"""An independent float64 reference for the peers suite: dense matrices in NumPy, no torch, no engine code.

The standard workload (see `peer_models`) is rebuilt here from first principles: each gate is a 2^n × 2^n
matrix made by Kronecker products (qubit q is bit q of the basis index), the state is a plain vector, and
⟨Z_q⟩ is read off the probabilities. Gradients of the whole network's cross-entropy loss come from the
parameter-shift rule (exact for RY/RZ: every angle enters one gate) and a hand-written chain rule through the
two linear layers and π·tanh. Nothing here shares code with the workbench engine or with autograd.

Example:
    >>> import numpy as np
    >>> state = ry(0.3) @ np.array([1.0, 0.0])
    >>> float(state[0] ** 2 - state[1] ** 2)  # ⟨Z⟩ = cos θ
    0.955336489125606
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

SHIFT = math.pi / 2


def ry(theta: float) -> np.ndarray:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -s], [s, c]], dtype=np.complex128)


def rz(theta: float) -> np.ndarray:
    return np.diag([np.exp(-0.5j * theta), np.exp(0.5j * theta)])


def on_qubit(gate: np.ndarray, qubit: int, n: int) -> np.ndarray:
    """The 2^n matrix of a one-qubit gate; qubit q is bit q of the index, so it is the q-th factor from the right."""
    return np.kron(np.kron(np.eye(2 ** (n - 1 - qubit)), gate), np.eye(2**qubit))


@lru_cache(maxsize=64)
def cnot(control: int, target: int, n: int) -> np.ndarray:
    """CNOT as a permutation matrix built from its action on basis states."""
    dim = 2**n
    out = np.zeros((dim, dim), dtype=np.complex128)
    for index in range(dim):
        flipped = index ^ (1 << target) if (index >> control) & 1 else index
        out[flipped, index] = 1.0
    return out


def ring(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(0, 1)]


def gate_list(n: int, inputs: np.ndarray, weights: np.ndarray) -> list[tuple[str, int, int, float]]:
    """(name, qubit/control, target, angle) in circuit order; weight k = 2·n·layer + 2·qubit + rotation."""
    gates = [("ry", q, -1, float(inputs[q])) for q in range(n)]
    for layer in range(2):
        for q in range(n):
            gates.append(("ry", q, -1, float(weights[2 * n * layer + 2 * q])))
            gates.append(("rz", q, -1, float(weights[2 * n * layer + 2 * q + 1])))
        gates.extend(("cnot", a, b, 0.0) for a, b in ring(n))
    return gates


def run_gates(n: int, gates: list[tuple[str, int, int, float]]) -> np.ndarray:
    state = np.zeros(2**n, dtype=np.complex128)
    state[0] = 1.0
    for name, a, b, angle in gates:
        matrix = cnot(a, b, n) if name == "cnot" else on_qubit(ry(angle) if name == "ry" else rz(angle), a, n)
        state = matrix @ state
    return state


def z_expectations(n: int, state: np.ndarray) -> np.ndarray:
    """⟨Z_q⟩ for q = 0..n-1: Σ |ψ_i|² (1 − 2·bit_q(i))."""
    probabilities = np.abs(state) ** 2
    index = np.arange(2**n)
    return np.array([probabilities @ (1 - 2 * ((index >> q) & 1)) for q in range(n)])


def circuit_values(n: int, inputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """⟨Z_q⟩ of the workload circuit for one input row. Shape: (n,)."""
    return z_expectations(n, run_gates(n, gate_list(n, inputs, weights)))


def circuit_jacobian(n: int, inputs: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d⟨Z_q⟩/d input (n, n) and d⟨Z_q⟩/d weight (n, 4n), by the two-term shift rule on each angle."""
    d_inputs = np.zeros((n, n))
    d_weights = np.zeros((n, 4 * n))
    for k in range(n):
        plus, minus = inputs.copy(), inputs.copy()
        plus[k] += SHIFT
        minus[k] -= SHIFT
        d_inputs[:, k] = (circuit_values(n, plus, weights) - circuit_values(n, minus, weights)) / 2
    for k in range(4 * n):
        plus, minus = weights.copy(), weights.copy()
        plus[k] += SHIFT
        minus[k] -= SHIFT
        d_weights[:, k] = (circuit_values(n, inputs, plus) - circuit_values(n, inputs, minus)) / 2
    return d_inputs, d_weights


def network(n: int, state: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict:
    """Outputs, mean cross-entropy loss and its gradient for every weight of the standard network.

    Args:
        n: qubits (= input features).
        state: fc_in.weight (n, n), fc_in.bias (n,), q.weight (4n,), head.weight (2, n), head.bias (2,).
        x: inputs, shape (batch, n). y: class labels, shape (batch,).
    Returns:
        {"output": (batch, 2), "loss": float, "grads": {name: flat list}}.
    """
    W1, b1 = np.asarray(state["fc_in.weight"], float), np.asarray(state["fc_in.bias"], float)
    theta = np.asarray(state["q.weight"], float).reshape(-1)
    W2, b2 = np.asarray(state["head.weight"], float), np.asarray(state["head.bias"], float)
    x, y = np.asarray(x, float), np.asarray(y, int)
    batch = x.shape[0]
    pre = x @ W1.T + b1
    angles = math.pi * np.tanh(pre)
    values = np.stack([circuit_values(n, a, theta) for a in angles])
    logits = values @ W2.T + b2
    shifted = logits - logits.max(1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    loss = float(-np.log(probabilities[np.arange(batch), y]).mean())
    d_logits = probabilities.copy()
    d_logits[np.arange(batch), y] -= 1
    d_logits /= batch
    d_values = d_logits @ W2
    d_theta = np.zeros_like(theta)
    d_angles = np.zeros_like(angles)
    for b in range(batch):
        jac_in, jac_w = circuit_jacobian(n, angles[b], theta)
        d_angles[b] = d_values[b] @ jac_in
        d_theta += d_values[b] @ jac_w
    d_pre = d_angles * math.pi * (1 - np.tanh(pre) ** 2)
    grads = {"fc_in.weight": d_pre.T @ x, "fc_in.bias": d_pre.sum(0), "q.weight": d_theta,
             "head.weight": d_logits.T @ values, "head.bias": d_logits.sum(0)}
    return {"output": logits.tolist(), "loss": loss, "grads": {k: v.reshape(-1).tolist() for k, v in grads.items()}}
