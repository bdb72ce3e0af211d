"""The Dynamic Circuit Connector: one circuit IR that every executor runs and every gradient method walks.

A circuit is a list of gates on `n_qubits`. A rotation gate's angle comes from a parameter source:
an input feature (times a scale), a product of two features (IQP), a trainable weight, or a constant.
`Circuit.angles(x, w)` turns a batch of inputs and the weights into one angle per rotation gate per
sample, as a differentiable torch expression; executors and gradient methods only ever see angles,
so the chain rule to inputs and weights is left to torch autograd.

Qubit convention: qubit q is bit q of the basis-state index (|b_{n-1} ... b_1 b_0⟩ has index Σ b_q 2^q),
which is CUDA-Q's `get_state` order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from .block import Quantum, ansatz_weight_count

ParamKind = Literal["input", "input_product", "weight", "const"]


@dataclass(frozen=True)
class Param:
    """Where a rotation angle comes from: angle = scale * source (+ value for const)."""

    kind: ParamKind
    index: int = 0
    index2: int = 0
    scale: float = 1.0
    value: float = 0.0


@dataclass(frozen=True)
class Gate:
    name: str
    wires: tuple[int, ...]
    param: Param | None = None


@dataclass
class Circuit:
    n_qubits: int
    gates: list[Gate] = field(default_factory=list)
    n_inputs: int = 0
    n_weights: int = 0
    amplitude_inputs: int = 0  # > 0: the initial state is the normalised input vector (padded to 2**n)

    def add(self, name: str, *wires: int, param: Param | None = None) -> None:
        self.gates.append(Gate(name, tuple(wires), param))

    @property
    def rotation_gates(self) -> list[int]:
        return [i for i, g in enumerate(self.gates) if g.param is not None]

    def structure_key(self) -> tuple:
        return (self.n_qubits, self.amplitude_inputs, tuple((g.name, g.wires) for g in self.gates))

    def angles(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Angles of the rotation gates, shape (batch, n_rotations), differentiable in x and w."""
        params = [self.gates[i].param for i in self.rotation_gates]
        batch = x.shape[0]
        if not params:
            return x.new_zeros(batch, 0)
        # One gather per kind of angle and one reordering, not a tensor op per gate: at small n the per-gate
        # ops (and their autograd nodes) were a large part of a training step.
        groups: dict[str, list[int]] = {}
        for column, p in enumerate(params):
            groups.setdefault(p.kind, []).append(column)
        parts, order = [], []
        for kind, columns in groups.items():
            chosen = [params[c] for c in columns]
            scale = x.new_tensor([p.scale for p in chosen])
            if kind == "input":
                parts.append(x[:, [p.index for p in chosen]] * scale)
            elif kind == "input_product":
                parts.append(x[:, [p.index for p in chosen]] * x[:, [p.index2 for p in chosen]] * scale)
            elif kind == "weight":
                parts.append((w[[p.index for p in chosen]] * scale.to(w.dtype)).expand(batch, -1))
            else:
                parts.append(x.new_tensor([p.scale * p.value for p in chosen]).expand(batch, -1))
            order.extend(columns)
        stacked = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
        if order == sorted(order):
            return stacked
        inverse = [0] * len(order)
        for position, column in enumerate(order):
            inverse[column] = position
        return stacked[:, inverse]

    def initial_state(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        """Amplitude encoding: x normalised and zero-padded to 2**n (differentiable); None for |0...0⟩."""
        if not self.amplitude_inputs:
            return None
        dim = 2**self.n_qubits
        padded = torch.nn.functional.pad(x[:, : self.amplitude_inputs], (0, dim - self.amplitude_inputs))
        norm = padded.norm(dim=1, keepdim=True)
        # A zero feature vector has no direction: map it to |0...0> rather than dividing by zero.
        basis0 = torch.zeros_like(padded)
        basis0[:, 0] = 1.0
        safe = torch.where(norm > 1e-12, padded / norm.clamp_min(1e-12), basis0)
        return safe.to(dtype)

    def gate_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for g in self.gates:
            counts[g.name] = counts.get(g.name, 0) + 1
        return counts


# ---------------------------------------------------------------------------------------------
# Encodings


def _encode(circuit: Circuit, block: Quantum, n_features: int) -> None:
    n, s = block.qubits, block.input_scaling
    if block.encoding in ("angle", "reupload"):
        for q in range(n):
            circuit.add(block.rotation, q, param=Param("input", q, scale=s))
    elif block.encoding == "dense_angle":
        for q in range(n):
            circuit.add("ry", q, param=Param("input", 2 * q, scale=s))
            circuit.add("rz", q, param=Param("input", 2 * q + 1, scale=s))
    elif block.encoding == "iqp":
        for q in range(n):
            circuit.add("h", q)
        for q in range(n):
            circuit.add("rz", q, param=Param("input", q, scale=s))
        for a in range(n):
            for b in range(a + 1, n):
                # exp(-i x_a x_b Z_a Z_b / 2) as CNOT, RZ, CNOT: every executor and noise model sees the same gates.
                circuit.add("cx", a, b)
                circuit.add("rz", b, param=Param("input_product", a, b, scale=s * s))
                circuit.add("cx", a, b)
    elif block.encoding == "amplitude":
        circuit.amplitude_inputs = n_features


def entangling_pairs(pattern: str, n: int) -> list[tuple[int, int]]:
    if n < 2 or pattern == "none":
        return []
    if pattern == "linear":
        return [(i, i + 1) for i in range(n - 1)]
    if pattern == "ring":
        return [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(0, 1)]
    return [(a, b) for a in range(n) for b in range(a + 1, n)]


def _ansatz_layer(circuit: Circuit, block: Quantum, layer: int, weight_param) -> None:
    n = block.qubits
    if block.ansatz == "hardware_efficient":
        for q in range(n):
            for rot in block.rotations:
                circuit.add(rot, q, param=weight_param())
        for a, b in entangling_pairs(block.entanglement, n):
            circuit.add("cx", a, b)
    elif block.ansatz == "strongly_entangling":
        for q in range(n):
            for rot in ("rz", "ry", "rz"):
                circuit.add(rot, q, param=weight_param())
        if n > 1:
            reach = layer % (n - 1) + 1
            for q in range(n):
                circuit.add("cx", q, (q + reach) % n)
    elif block.ansatz == "basic_entangler":
        for q in range(n):
            circuit.add("rx", q, param=weight_param())
        for a, b in entangling_pairs("ring", n):
            circuit.add("cx", a, b)


def _custom_gates(circuit: Circuit, block: Quantum) -> None:
    # With role parameter_input the circuit's parameters (the 'weight' sources) are the block's input features.
    weight_kind = "input" if block.role == "parameter_input" else "weight"
    for g in block.gates or []:
        if g.source is None:
            param = None
        elif g.source == "const":
            param = Param("const", scale=1.0, value=float(g.value))
        else:
            param = Param("input" if g.source == "input" else weight_kind, int(g.index), scale=g.scale)
        if g.gate == "rzz":
            a, b = g.wires
            circuit.add("cx", a, b)
            circuit.add("rz", b, param=param)
            circuit.add("cx", a, b)
        elif g.gate == "swap":
            # Three CNOTs: CUDA-Q's noise model cannot attach a channel to swap, so every executor and noise
            # model sees the same noisy CNOTs.
            a, b = g.wires
            circuit.add("cx", a, b)
            circuit.add("cx", b, a)
            circuit.add("cx", a, b)
        else:
            circuit.add(g.gate, *g.wires, param=param)


def build_circuit(block: Quantum, n_features: int) -> Circuit:
    """The circuit of a quantum block. For role parameter_input the ansatz angles are the block's inputs."""
    n_weights = ansatz_weight_count(block)
    parameter_input = block.role == "parameter_input"
    circuit = Circuit(block.qubits, n_inputs=n_features, n_weights=0 if parameter_input else n_weights)
    counter = iter(range(n_weights))

    def weight_param() -> Param:
        return Param("input" if parameter_input else "weight", next(counter))

    if block.ansatz == "custom":
        # A custom gate list is one layer: re-uploading encodes the input once before it, like angle encoding.
        if block.encoding != "none":
            _encode(circuit, block, n_features)
        _custom_gates(circuit, block)
        return circuit
    for layer in range(block.depth):
        if layer == 0 or block.encoding == "reupload":
            _encode(circuit, block, n_features)
        _ansatz_layer(circuit, block, layer, weight_param)
    return circuit


# ---------------------------------------------------------------------------------------------
# Readouts


@dataclass(frozen=True)
class ReadoutPlan:
    """What an executor returns for a batch: estimator expectations or sampler probabilities."""

    mode: Literal["estimator", "sampler"]
    paulis: tuple[str, ...] = ()  # estimator: one output per string unless coefficients combine them
    coefficients: tuple[float, ...] | None = None  # estimator with a Hamiltonian: output = Σ c_k ⟨P_k⟩
    marginal: tuple[int, ...] | None = None  # sampler: qubits kept
    shots: int | None = None

    @property
    def width(self) -> int:
        if self.mode == "sampler":
            return 2 ** len(self.marginal)
        return 1 if self.coefficients is not None else len(self.paulis)


def readout_plan(block: Quantum, shots: int | None = None) -> ReadoutPlan:
    """What a run of the block returns; `shots` (e.g. the execution plan's) overrides the block's own."""
    r, n = block.readout, block.qubits
    shots = shots if shots is not None else r.shots
    if r.mode == "sampler":
        return ReadoutPlan("sampler", marginal=tuple(r.marginal) if r.marginal else tuple(range(n)), shots=shots)
    if r.hamiltonian:
        return ReadoutPlan("estimator", tuple(t.pauli for t in r.hamiltonian), tuple(t.coeff for t in r.hamiltonian),
                           shots=shots)
    paulis = tuple(r.observables) if r.observables else tuple("I" * q + "Z" + "I" * (n - q - 1) for q in range(n))
    return ReadoutPlan("estimator", paulis, shots=shots)


def draw_text(circuit: Circuit) -> str:
    """A plain-text listing of the circuit, one gate per line."""
    lines = [f"{circuit.n_qubits} qubits, {len(circuit.gates)} gates"]
    if circuit.amplitude_inputs:
        lines.append(f"amplitude encoding of {circuit.amplitude_inputs} features")
    for g in circuit.gates:
        source = ""
        if g.param is not None:
            p = g.param
            source = {"input": f"x[{p.index}]", "input_product": f"x[{p.index}]*x[{p.index2}]",
                      "weight": f"w[{p.index}]", "const": f"{p.value:g}"}[p.kind]
            if p.scale != 1.0 and p.kind != "const":
                source = f"{p.scale:g}*{source}"
            source = f"({source})"
        lines.append(f"{g.name}{source} q{','.join(map(str, g.wires))}")
    return "\n".join(lines)



@dataclass(frozen=True)
class WeightSlot:
    """Where one trainable weight acts: weight index → gate (index in the circuit's gate list), qubit, layer."""

    index: int
    gate: str
    gate_index: int
    qubit: int
    layer: int


def weight_layout(circuit: Circuit, block: Quantum) -> list[WeightSlot]:
    """The layout of the weight vector: for every weight, the rotation gate, qubit and ansatz layer it drives.

    Weights are numbered layer by layer, qubit by qubit, rotation by rotation (hardware_efficient: for
    each layer, for each qubit, one weight per entry of `rotations`). A custom circuit is one layer;
    a weight read by several gates is listed once per gate.

    Example:
        >>> [(s.index, s.gate, s.qubit, s.layer) for s in weight_layout(circuit, block)][:2]
        [(0, 'ry', 0, 0), (1, 'rz', 0, 0)]
    """
    per_layer = max(1, circuit.n_weights // block.depth) if block.ansatz != "custom" else max(1, circuit.n_weights)
    slots = []
    for gate_index, gate in enumerate(circuit.gates):
        if gate.param is not None and gate.param.kind == "weight":
            slots.append(WeightSlot(gate.param.index, gate.name, gate_index, gate.wires[0],
                                    gate.param.index // per_layer))
    return sorted(slots, key=lambda s: (s.index, s.gate_index))
