"""Looking inside a quantum block: the state of each qubit for one input sample, and the block's circuit
descriptors. Pure functions over the torch statevector engine (no GUI, no training): the GUI, notebooks
and tests call the same code.

Per sample (`inspect_sample`): the Bloch vector, purity and entanglement entropy of every qubit after the
encoding and after each ansatz layer, and the output probabilities of the measured bitstrings.
Per circuit (`circuit_descriptors`): depth, two-qubit gate count, trainable parameter count,
expressibility and entangling capability (Sim, Johnson & Aspuru-Guzik, Adv. Quantum Technol. 2019,
estimated by sampling random weights), and the variance of the cost gradient over random weights, the
barren-plateau indicator (McClean et al. 2018).

Qubit convention (the engine's): qubit q is bit q of the basis-state index.

Example:
    >>> model = workbench.compile(workbench.templates.get("vqc-circles"))
    >>> view = inspect_sample(model, torch.tensor([0.3, -0.5]))
    >>> view["stages"][-1]["bloch"][0]      # [x, y, z] of qubit 0 after the last layer
"""

from __future__ import annotations

import math
from typing import Any

import torch

# The engine entry points this module uses, in one place.
from .engine.circuits import Circuit, build_circuit, readout_plan
from .engine.executors.statevector import StatevectorProgram

__all__ = ["bloch_vectors", "block_input", "circuit_descriptors", "inspect_sample", "qubit_density_matrices",
           "stage_boundaries", "von_neumann_entropy"]


# ---------------------------------------------------------------------------------------------
# States


def qubit_density_matrices(psi: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """Reduced 2×2 density matrix of every qubit of a pure state.

    Args:
        psi: state vector, shape (2**n,), qubit q = bit q of the index.
        n_qubits: n.
    Shape: returns (n, 2, 2), complex.
    """
    tensor = psi.reshape([2] * n_qubits)  # axis 0 is the most significant bit: qubit n-1
    out = []
    for q in range(n_qubits):
        m = tensor.movedim(n_qubits - 1 - q, 0).reshape(2, -1)
        out.append(m @ m.conj().T)
    return torch.stack(out)


def bloch_vectors(rho: torch.Tensor) -> torch.Tensor:
    """[⟨X⟩, ⟨Y⟩, ⟨Z⟩] of each 2×2 density matrix (ρ = (I + xX + yY + zZ)/2). Shape: (n, 2, 2) -> (n, 3)."""
    x = 2 * rho[:, 0, 1].real
    y = -2 * rho[:, 0, 1].imag
    z = (rho[:, 0, 0] - rho[:, 1, 1]).real
    return torch.stack([x, y, z], dim=1)


def von_neumann_entropy(rho: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of each reduced state: 0 for a product state, 1 for a maximally entangled qubit.
    Shape: (n, 2, 2) -> (n,)."""
    values = torch.linalg.eigvalsh(rho).clamp_min(0)
    logs = torch.where(values > 1e-12, torch.log2(values.clamp_min(1e-300)), torch.zeros_like(values))
    return -(values * logs).sum(dim=1)


def _circuit_prefix(circuit: Circuit, length: int) -> Circuit:
    return Circuit(circuit.n_qubits, list(circuit.gates[:length]), n_inputs=circuit.n_inputs,
                   n_weights=circuit.n_weights, amplitude_inputs=circuit.amplitude_inputs)


def stage_boundaries(block, circuit: Circuit) -> list[tuple[str, int]]:
    """(name, number of leading gates) after the encoding and after each ansatz layer.

    Layers are found by building the same block with depth 1, 2, …: each is a prefix of the full circuit.
    """
    n_features = circuit.n_inputs if not circuit.amplitude_inputs else circuit.amplitude_inputs
    stages: list[tuple[str, int]] = []
    weight_kind = "input" if block.role == "parameter_input" else "weight"
    first_weight = next((i for i, g in enumerate(circuit.gates) if g.param is not None and g.param.kind == weight_kind
                         and block.role != "parameter_input"), None)
    if block.encoding != "none" and first_weight is not None:
        stages.append(("encoding", first_weight))
    if block.ansatz == "custom":
        stages.append(("circuit", len(circuit.gates)))
        return stages
    for depth in range(1, block.depth + 1):
        partial = build_circuit(block.model_copy(update={"depth": depth}), n_features)
        stages.append((f"layer {depth}", len(partial.gates)))
    return stages


def block_input(model, x: torch.Tensor, block_id: str) -> torch.Tensor:
    """What block `block_id` of a compiled model receives for the samples `x` (the blocks before it applied).
    Shape: x (batch, *input_shape) -> (batch, features)."""
    with torch.no_grad():
        for name, module in model.blocks.items():
            if name == block_id:
                return x
            x = module(x)
    raise KeyError(f"the model has no block {block_id!r}")


def _final_states(circuit: Circuit, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    program = StatevectorProgram(circuit, torch.complex128)
    angles = circuit.angles(x.to(torch.float64), w.to(torch.float64))
    return program.run(angles, circuit.initial_state(x.to(torch.float64), torch.float64))


def inspect_sample(model, sample: torch.Tensor, block_id: str | None = None) -> dict[str, Any]:
    """The quantum state inside one quantum block of `model` for one input sample.

    Args:
        model: a compiled workbench model (HybridModel).
        sample: one input sample, shape input_shape (no batch axis).
        block_id: the quantum block (default: the first).
    Returns:
        {"block", "qubits", "stages": [{"name", "gates", "bloch": [[x, y, z]] * n, "purity": [...],
        "entropy": [...]}], "probabilities": [2**n floats] of the final state, "labels": bitstrings
        written q_{n-1}…q_0}.
    """
    layers = model.quantum_layers
    if not layers:
        raise ValueError("the network has no quantum block to look into")
    block_id = block_id or next(iter(layers))
    layer = layers[block_id]
    circuit = layer.circuit
    n = circuit.n_qubits
    features = block_input(model, sample.unsqueeze(0), block_id)
    weights = layer._weights().detach()
    stages = []
    with torch.no_grad():
        for name, length in stage_boundaries(layer.block, circuit):
            psi = _final_states(_circuit_prefix(circuit, length), features, weights)[0]
            rho = qubit_density_matrices(psi, n)
            purity = torch.einsum("qij,qji->q", rho, rho).real
            stages.append({"name": name, "gates": length, "bloch": bloch_vectors(rho).tolist(),
                           "purity": purity.tolist(), "entropy": von_neumann_entropy(rho).tolist()})
        final = _final_states(circuit, features, weights)[0]
    probabilities = (final.abs() ** 2).tolist()
    labels = [format(i, f"0{n}b") for i in range(2**n)]
    return {"block": block_id, "qubits": n, "stages": stages, "probabilities": probabilities, "labels": labels}


# ---------------------------------------------------------------------------------------------
# Circuit descriptors


def _depth(circuit: Circuit) -> int:
    level = [0] * circuit.n_qubits
    for gate in circuit.gates:
        top = max(level[q] for q in gate.wires) + 1
        for q in gate.wires:
            level[q] = top
    return max(level, default=0)


def _haar_fidelity_histogram(n_qubits: int, edges: torch.Tensor) -> torch.Tensor:
    """Probability of each fidelity bin for Haar-random state pairs: P(F) = (N-1)(1-F)^(N-2), N = 2**n."""
    dim = 2**n_qubits
    cdf = 1 - (1 - edges) ** (dim - 1)
    return cdf[1:] - cdf[:-1]


def circuit_descriptors(block, n_features: int, *, samples: int = 200, bins: int = 75, seed: int = 0,
                        sample_input: torch.Tensor | None = None) -> dict[str, Any]:
    """Descriptors of a quantum block's circuit, by sampling weights uniformly in [0, 2π).

    Args:
        block: the spec's quantum block.
        n_features: features the block receives.
        samples: random weight vectors (pairs for expressibility).
        bins: fidelity histogram bins (75 as in Sim et al.).
        seed: random seed (the estimate is reproducible).
        sample_input: the input features the circuit encodes (default: all 0.5).
    Returns:
        {"depth", "two_qubit_gates", "parameters", "expressibility" (KL divergence to Haar; lower is more
        expressive), "entangling_capability" (mean Meyer-Wallach Q in [0, 1]), "gradient_variance" (mean over
        parameters of Var[∂C/∂θ] with C the block's first output), "samples"}.
    """
    circuit = build_circuit(block, n_features)
    n = circuit.n_qubits
    generator = torch.Generator().manual_seed(seed)
    x = sample_input.reshape(1, -1).to(torch.float64) if sample_input is not None else \
        torch.full((1, max(n_features, 1)), 0.5, dtype=torch.float64)
    result: dict[str, Any] = {"depth": _depth(circuit),
                              "two_qubit_gates": sum(1 for g in circuit.gates if len(g.wires) == 2),
                              "parameters": circuit.n_weights, "samples": samples}
    if circuit.n_weights == 0:
        result.update(expressibility=None, entangling_capability=None, gradient_variance=None)
        return result
    program = StatevectorProgram(circuit, torch.complex128)
    weights = torch.rand(2 * samples, circuit.n_weights, generator=generator, dtype=torch.float64) * 2 * math.pi
    xs = x.expand(2 * samples, -1)
    angles = torch.stack([circuit.angles(x, w)[0] for w in weights])
    init = circuit.initial_state(xs, torch.float64)
    with torch.no_grad():
        states = program.run(angles, init)
    first, second = states[:samples], states[samples:]
    fidelities = ((first.conj() * second).sum(dim=1).abs() ** 2).clamp(0, 1)
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    counts = torch.histc(fidelities, bins=bins, min=0, max=1)
    p = counts / counts.sum()
    q = _haar_fidelity_histogram(n, edges)
    mask = p > 0
    result["expressibility"] = float((p[mask] * torch.log(p[mask] / q[mask].clamp_min(1e-300))).sum())
    purities = torch.stack([torch.einsum("qij,qji->q", r, r).real
                            for r in (qubit_density_matrices(s, n) for s in first)])
    result["entangling_capability"] = float((2 * (1 - purities.mean(dim=1))).mean()) if n > 1 else 0.0
    plan = readout_plan(block)
    w = weights[:samples].clone().requires_grad_(True)
    batch_angles = torch.stack([circuit.angles(x, w[i])[0] for i in range(samples)])
    cost = program.readout(program.run(batch_angles, circuit.initial_state(x.expand(samples, -1), torch.float64)),
                           plan)[:, 0]
    (grads,) = torch.autograd.grad(cost.sum(), w)
    result["gradient_variance"] = float(grads.var(dim=0).mean())
    return result
