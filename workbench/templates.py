"""Starter architectures, each reproducing a network from the source documents."""

from __future__ import annotations

import math
from typing import Callable

from .engine.pauli import tfim_terms
from .spec import ArchitectureSpec, load_spec


def _vqc_circles() -> dict:
    return {
        "name": "vqc-circles",
        "description": "4-qubit variational classifier for 2-D data (QuILT §4.1): features mapped to angles, "
                       "re-uploaded before each of 3 RY/RZ + CNOT-ring layers, <Z0> is the logit (output layer).",
        "task": "classification", "input_shape": [2],
        "blocks": [
            {"type": "linear", "id": "fc_in", "out_features": 4},
            {"type": "activation", "id": "to_angles", "fn": "scaled_tanh", "scale": math.pi},
            {"type": "quantum", "id": "vqc", "role": "output", "qubits": 4, "encoding": "reupload",
             "rotation": "ry", "ansatz": "hardware_efficient", "depth": 3, "entanglement": "ring",
             "readout": {"mode": "estimator", "observables": ["ZIII"]}},
        ],
    }


def _hybrid_digits() -> dict:
    return {
        "name": "hybrid-digits",
        "description": "8x8 digits: classical compression -> 6-qubit quantum intermediate layer -> classical head "
                       "(the CUDA-Q ML poster's MNIST experiment, offline).",
        "task": "classification", "input_shape": [1, 8, 8],
        "blocks": [
            {"type": "flatten", "id": "flat"},
            {"type": "linear", "id": "fc_in", "out_features": 6},
            {"type": "activation", "id": "to_angles", "fn": "scaled_tanh", "scale": math.pi / 2},
            {"type": "quantum", "id": "qlayer", "role": "intermediate", "qubits": 6, "encoding": "angle",
             "rotation": "ry", "ansatz": "hardware_efficient", "depth": 2, "entanglement": "ring"},
            {"type": "linear", "id": "head", "out_features": 10},
        ],
    }


def _tyxonq_3x3() -> dict:
    return {
        "name": "tyxonq-3x3",
        "description": "MNIST 1 vs 5 at 3x3 binarised pixels (TyxonQ pipeline): 9 qubits, RX encoding of each pixel, "
                       "2 layers of trainable RX/RY with CNOTs, <Z> on every qubit, classical head.",
        "task": "classification", "input_shape": [1, 3, 3],
        "blocks": [
            {"type": "flatten", "id": "flat"},
            {"type": "quantum", "id": "pqc", "role": "intermediate", "qubits": 9, "encoding": "angle",
             "rotation": "rx", "input_scaling": math.pi, "ansatz": "hardware_efficient", "depth": 2,
             "rotations": ["rx", "ry"], "entanglement": "linear"},
            {"type": "linear", "id": "head", "out_features": 2},
        ],
    }


def _quantum_output() -> dict:
    return {
        "name": "quantum-output",
        "description": "Classical features -> quantum output layer: <Z0>, <Z1>, <Z2> are the three class scores "
                       "(iris, 4 features).",
        "task": "classification", "input_shape": [4],
        "blocks": [
            {"type": "linear", "id": "fc_in", "out_features": 4},
            {"type": "activation", "id": "to_angles", "fn": "scaled_tanh", "scale": math.pi},
            {"type": "quantum", "id": "qout", "role": "output", "qubits": 4, "encoding": "angle", "rotation": "ry",
             "ansatz": "strongly_entangling", "depth": 2,
             "readout": {"mode": "estimator", "observables": ["ZIII", "IZII", "IIZI"]}},
        ],
    }


def _vqe_parameter_input() -> dict:
    n, depth = 4, 2
    return {
        "name": "vqe-parameter-input",
        "description": "Quantum parameter input: a classical network maps the transverse field h to the 16 angles "
                       "of a 4-qubit VQE ansatz; the loss is the energy of the Ising chain H(h) whose per-sample "
                       "coefficients come from the dataset (use dataset 'tfim').",
        "task": "energy", "input_shape": [1],
        "blocks": [
            {"type": "linear", "id": "fc1", "out_features": 32},
            {"type": "activation", "id": "act1", "fn": "tanh"},
            {"type": "linear", "id": "to_params", "out_features": n * 2 * depth},
            {"type": "quantum", "id": "vqe", "role": "parameter_input", "qubits": n, "encoding": "none",
             "ansatz": "hardware_efficient", "depth": depth, "rotations": ["ry", "rz"], "entanglement": "linear",
             "readout": {"mode": "estimator", "observables": tfim_terms(n)}},
        ],
    }


_TEMPLATES: dict[str, Callable[[], dict]] = {
    "vqc-circles": _vqc_circles,
    "hybrid-digits": _hybrid_digits,
    "tyxonq-3x3": _tyxonq_3x3,
    "quantum-output": _quantum_output,
    "vqe-parameter-input": _vqe_parameter_input,
}

# The dataset (and its options) each template was designed for.
DEFAULT_DATASETS: dict[str, tuple[str, dict]] = {
    "vqc-circles": ("circles", {"n_samples": 300, "noise": 0.05, "standardize": True}),
    "hybrid-digits": ("digits", {}),
    "tyxonq-3x3": ("digits", {"classes": [1, 5], "downsample": [3, 3], "binarize": 0.5}),
    "quantum-output": ("iris", {"standardize": True}),
    "vqe-parameter-input": ("tfim", {"n_qubits": 4}),
}


def names() -> list[str]:
    return list(_TEMPLATES)


def get(name: str) -> ArchitectureSpec:
    if name not in _TEMPLATES:
        raise KeyError(f"unknown template {name!r}: choose one of {', '.join(_TEMPLATES)}")
    return load_spec(_TEMPLATES[name]())
