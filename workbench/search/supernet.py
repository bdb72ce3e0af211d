"""A differentiable supernet over a quantum block's gates (DARTS-style quantum architecture search).

Every position (layer l, qubit q) holds a *mixed operation*: the state after it is
Σ_k softmax(s·α_lq)_k · U_k(θ_lqk)|ψ⟩ over the candidate gates U_k ∈ {RX, RY, RZ, identity}, each with its own
angle (s = ARCH_SCALE); every layer ends with a mixed entangler Σ_k softmax(s·β_l)_k · E_k|ψ⟩ over
{CNOT ring, CZ ring, none}.
The architecture weights α, β train jointly with the angles and the classical blocks on the training loss
(first-order, single-level DARTS). Discretising keeps the most weighted operation of each position and
writes the result as a custom gate list, so the chosen circuit is an ordinary spec that the workbench
trains on any target.

The mixture of states is simulated here in plain torch (a state of shape (batch, 2, …, 2), axis 1+q for
qubit q), because no executor applies a weighted sum of gates; the readout normalises the mixed state.
Supported blocks: encodings angle, reupload and dense_angle; estimator readouts of I/Z Pauli strings.

Example:
    >>> net = SuperCircuit(qubits=3, depth=2, n_features=3, encoding="angle")
    >>> net(torch.rand(5, 3)).shape
    torch.Size([5, 3])
"""

from __future__ import annotations

import copy
import hashlib
import math
from typing import Any

import torch
from torch import nn

from .. import compiler, spec as S
from ..training import TrainConfig, Trainer
from .space import Candidate
from .strategies import Strategy, StrategyError

SINGLE_OPS = ("rx", "ry", "rz", "identity")
ENTANGLERS = ("cx_ring", "cz_ring", "none")
ENCODINGS = ("angle", "reupload", "dense_angle")
# Architecture logits are softmax(ARCH_SCALE * alpha). DARTS gives the architecture weights their own optimiser;
# within the trainer's single Adam (whose steps ignore gradient scale) this lets them move ARCH_SCALE times
# faster than the angles, so a few epochs separate the operations instead of leaving them near uniform.
ARCH_SCALE = 10.0


def ring(n: int) -> list[tuple[int, int]]:
    return [] if n < 2 else [(0, 1)] if n == 2 else [(q, (q + 1) % n) for q in range(n)]


def _rotation(name: str, theta: torch.Tensor) -> torch.Tensor:
    """Rotation matrices, shape theta.shape + (2, 2), complex."""
    c, s = torch.cos(theta / 2).to(torch.complex64), torch.sin(theta / 2).to(torch.complex64)
    if name == "rx":
        rows = [torch.stack([c, -1j * s], -1), torch.stack([-1j * s, c], -1)]
    elif name == "ry":
        rows = [torch.stack([c, -s], -1), torch.stack([s, c], -1)]
    else:
        phase = torch.exp(-0.5j * theta.to(torch.complex64))
        zero = torch.zeros_like(phase)
        rows = [torch.stack([phase, zero], -1), torch.stack([zero, phase.conj()], -1)]
    return torch.stack(rows, -2)


def apply_single(psi: torch.Tensor, matrix: torch.Tensor, q: int) -> torch.Tensor:
    """psi (B, 2, ..., 2); matrix (2, 2) or (B, 2, 2) acting on qubit q."""
    x = psi.movedim(1 + q, -1)
    out = torch.einsum("ij,b...j->b...i", matrix, x) if matrix.dim() == 2 else torch.einsum("bij,b...j->b...i", matrix, x)
    return out.movedim(-1, 1 + q)


def apply_two(psi: torch.Tensor, name: str, a: int, b: int) -> torch.Tensor:
    """CNOT (control a, target b) or CZ on a (B, 2, ..., 2) state."""
    x = psi.movedim((1 + a, 1 + b), (-2, -1))
    if name == "cx":
        x = torch.stack([x[..., 0, :], x[..., 1, :].flip(-1)], -2)
    else:
        x = torch.stack([x[..., 0, :], torch.stack([x[..., 1, 0], -x[..., 1, 1]], -1)], -2)
    return x.movedim((-2, -1), (1 + a, 1 + b))


class SuperCircuit(nn.Module):
    """The mixed circuit: inputs (batch, n_features) -> Z-string expectations (batch, len(observables)).

    Args:
        qubits, depth: circuit size; n_features: inputs (qubits, or 2*qubits for dense_angle).
        encoding, rotation, input_scaling: as in a quantum block.
        observables: Pauli strings of I and Z (default: Z on each qubit).
    """

    def __init__(self, *, qubits: int, depth: int, n_features: int, encoding: str = "angle", rotation: str = "ry",
                 input_scaling: float = 1.0, observables: list[str] | None = None):
        super().__init__()
        if encoding not in ENCODINGS:
            raise StrategyError(f"the supernet handles encodings {', '.join(ENCODINGS)}, not {encoding!r}")
        self.qubits, self.depth, self.n_features = qubits, depth, n_features
        self.encoding, self.rotation, self.input_scaling = encoding, rotation, input_scaling
        self.observables = observables or ["I" * q + "Z" + "I" * (qubits - q - 1) for q in range(qubits)]
        if any(set(p) - {"I", "Z"} or len(p) != qubits for p in self.observables):
            raise StrategyError(f"the supernet reads out Pauli strings of I and Z on {qubits} qubits, got "
                                f"{self.observables}")
        self.entanglers = ENTANGLERS if qubits > 1 else ("none",)
        self.alpha = nn.Parameter(torch.zeros(depth, qubits, len(SINGLE_OPS)))
        self.beta = nn.Parameter(torch.zeros(depth, len(self.entanglers)))
        self.theta = nn.Parameter((torch.rand(depth, qubits, 3) - 0.5) * 0.2 * math.pi)

    def _encode(self, psi: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        s = self.input_scaling
        for q in range(self.qubits):
            if self.encoding == "dense_angle":
                psi = apply_single(psi, _rotation("ry", s * x[:, 2 * q]), q)
                psi = apply_single(psi, _rotation("rz", s * x[:, 2 * q + 1]), q)
            else:
                psi = apply_single(psi, _rotation(self.rotation, s * x[:, q]), q)
        return psi

    def _entangle(self, psi: torch.Tensor, name: str) -> torch.Tensor:
        if name == "none":
            return psi
        for a, b in ring(self.qubits):
            psi = apply_two(psi, name[:2], a, b)
        return psi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        psi = torch.zeros(batch, 2**self.qubits, dtype=torch.complex64)
        psi[:, 0] = 1
        psi = psi.reshape(batch, *([2] * self.qubits))
        x = x.float()
        for layer in range(self.depth):
            if layer == 0 or self.encoding == "reupload":
                psi = self._encode(psi, x)
            for q in range(self.qubits):
                weights = torch.softmax(ARCH_SCALE * self.alpha[layer, q], 0)
                mixed = weights[3] * psi
                for k, name in enumerate(SINGLE_OPS[:3]):
                    mixed = mixed + weights[k] * apply_single(psi, _rotation(name, self.theta[layer, q, k]), q)
                psi = mixed
            weights = torch.softmax(ARCH_SCALE * self.beta[layer], 0)
            psi = sum(w * self._entangle(psi, name) for w, name in zip(weights, self.entanglers))
        probs = psi.abs() ** 2
        probs = probs / probs.flatten(1).sum(1).clamp_min(1e-12).reshape(batch, *([1] * self.qubits))
        values = []
        for pauli in self.observables:
            signed = probs
            for q, char in enumerate(pauli):
                if char == "Z":
                    sign = torch.tensor([1.0, -1.0]).reshape(*([1] * (1 + q)), 2, *([1] * (self.qubits - q - 1)))
                    signed = signed * sign
            values.append(signed.flatten(1).sum(1))
        return torch.stack(values, 1).to(x.dtype)

    # -- discretisation --------------------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        """The strongest operation per position and per layer's entangler, with their softmax weights."""
        single = torch.softmax(ARCH_SCALE * self.alpha.detach(), -1)
        ent = torch.softmax(ARCH_SCALE * self.beta.detach(), -1)
        return {"gates": [[SINGLE_OPS[int(single[l, q].argmax())] for q in range(self.qubits)]
                          for l in range(self.depth)],
                "entanglers": [self.entanglers[int(ent[l].argmax())] for l in range(self.depth)],
                "gate_weights": single.tolist(), "entangler_weights": ent.tolist()}

    def discretise(self) -> tuple[list[dict], list[float]]:
        """(custom gate list, its weight values) of the strongest operations: encoding gates read the inputs,
        rotations read weights 0, 1, ... (the trained angles, in this order)."""
        arch = self.architecture()
        gates: list[dict] = []
        angles: list[float] = []
        s = self.input_scaling
        for layer in range(self.depth):
            if layer == 0 or self.encoding == "reupload":
                for q in range(self.qubits):
                    if self.encoding == "dense_angle":
                        gates.append({"gate": "ry", "wires": [q], "source": "input", "index": 2 * q, "scale": s})
                        gates.append({"gate": "rz", "wires": [q], "source": "input", "index": 2 * q + 1, "scale": s})
                    else:
                        gates.append({"gate": self.rotation, "wires": [q], "source": "input", "index": q, "scale": s})
            for q, name in enumerate(arch["gates"][layer]):
                if name != "identity":
                    gates.append({"gate": name, "wires": [q], "source": "weight", "index": len(angles)})
                    angles.append(float(self.theta.detach()[layer, q, SINGLE_OPS.index(name)]))
            if arch["entanglers"][layer] != "none":
                gates += [{"gate": arch["entanglers"][layer][:2], "wires": [a, b]} for a, b in ring(self.qubits)]
        return gates, angles


def discretised_block(block: S.Quantum, net: SuperCircuit) -> dict:
    """The quantum block with the supernet's strongest operations as its custom gate list."""
    gates, angles = net.discretise()
    if not angles:  # every position chose identity: keep one trainable angle so the block still learns
        gates.append({"gate": "ry", "wires": [0], "source": "weight", "index": 0})
    data = block.model_dump(mode="json")
    data.update(ansatz="custom", encoding="none", depth=1, gates=gates)
    return data


def build_supernet(spec: S.ArchitectureSpec, block_id: str, depth: int) -> tuple[nn.Module, SuperCircuit]:
    """The compiled spec with quantum block `block_id` replaced by a SuperCircuit of `depth` layers."""
    block = spec.block(block_id)
    if not isinstance(block, S.Quantum) or block.role == "parameter_input":
        raise StrategyError(f"block {block_id}: the supernet searches a quantum block with a data encoding")
    if block.readout.mode != "estimator" or block.readout.hamiltonian:
        raise StrategyError(f"block {block_id}: the supernet needs an estimator readout of observables")
    n_features = dict(zip((b.id for b in spec.blocks), spec.shapes()))[block_id][0][0]
    model = compiler.compile(spec)
    net = SuperCircuit(qubits=block.qubits, depth=depth, n_features=n_features, encoding=block.encoding,
                       rotation=block.rotation, input_scaling=block.input_scaling,
                       observables=block.readout.observables)
    model.blocks[block_id] = net
    return model, net


class SupernetStrategy(Strategy):
    """Train one supernet on the space's quantum block, discretise it, and train the result as a candidate.

    The supernet is built on the space's first valid candidate whose quantum block uses the most layers the
    space offers (its depth bounds the supernet's). Options: supernet_epochs (default: the search's epochs),
    seed.
    """

    name = "supernet"

    def run(self, context) -> dict[str, Any]:
        from ..data import load_dataset

        valid = [c for c in context.space.candidates() if c.valid]
        quantum = [(c, b) for c in valid for b in c.spec.quantum_blocks() if b.encoding in ENCODINGS
                   and b.role != "parameter_input" and b.readout.mode == "estimator"]
        if not quantum:
            raise StrategyError("the supernet needs a valid candidate with a quantum block using an angle, reupload "
                                "or dense_angle encoding and an estimator readout")
        base, block = max(quantum, key=lambda cb: cb[1].depth)
        options = context.options
        train = {**options["train"], **base.train}
        epochs = int(options.get("supernet_epochs", train["epochs"]))
        torch.manual_seed(int(options.get("seed", train.get("seed", 0))))
        model, net = build_supernet(base.spec, block.id, block.depth)
        data = load_dataset(options["dataset"], **options["dataset_options"])
        trainer = Trainer(base.spec, data, TrainConfig(**{**train, "epochs": epochs}), model=model)
        supernet_run = trainer.run()
        if supernet_run.status != "completed":
            raise StrategyError(f"the supernet did not train: {supernet_run.final.get('error')}")
        spec = copy.deepcopy(base.spec.to_dict())
        spec["blocks"] = [discretised_block(block, net) if b["id"] == block.id else b for b in spec["blocks"]]
        arch = net.architecture()
        label = "|".join(",".join(g) + "/" + e for g, e in zip(arch["gates"], arch["entanglers"]))
        key = "supernet-" + hashlib.sha1(label.encode()).hexdigest()[:8]
        spec["name"] = f"{context.space.name}-{key}"
        candidate = Candidate(key, {"supernet": label}, S.load_spec(spec), None, (), base.train)
        context.evaluate([candidate])
        last = [e for e in supernet_run.history if e["kind"] == "epoch"][-1]
        return {"key": key, "architecture": arch, "base_candidate": base.key,
                "supernet_measures": {k: v for k, v in last.items() if k.startswith("val_")}}
