"""Search-space templates: the common questions about a hybrid network, each as a small space."""

from __future__ import annotations

import math
from typing import Callable

from .space import SearchSpace


def _circles_vqc() -> dict:
    return {
        "name": "circles-vqc",
        "description": "The QuILT circles classifier's quantum block: encoding, depth and entanglement (12 candidates).",
        "base": {
            "task": "classification", "input_shape": [2],
            "blocks": [
                {"type": "linear", "id": "fc_in", "out_features": {"fit": "vqc"}},
                {"type": "activation", "id": "to_angles", "fn": "scaled_tanh", "scale": math.pi},
                {"type": "quantum", "id": "vqc", "role": "output", "qubits": 2, "encoding": ["angle", "reupload"],
                 "rotation": "ry", "ansatz": "hardware_efficient", "depth": {"range": [1, 3]},
                 "entanglement": ["ring", "none"], "readout": {"mode": "estimator", "observables": ["ZI"]}},
            ]},
    }


def _digits_quantum_block() -> dict:
    return {
        "name": "digits-quantum-block",
        "description": "Hybrid digits classifier (flatten -> linear -> quantum -> head): which encoding, depth, "
                       "entanglement and qubit count should the quantum block have? (54 candidates)",
        "base": {
            "task": "classification", "input_shape": [1, 8, 8],
            "blocks": [
                {"type": "flatten", "id": "flat"},
                {"type": "linear", "id": "fc_in", "out_features": {"fit": "qlayer"}},
                {"type": "activation", "id": "to_angles", "fn": "scaled_tanh", "scale": math.pi / 2},
                {"type": "quantum", "id": "qlayer", "role": "intermediate", "qubits": [4, 6],
                 "encoding": ["angle", "dense_angle", "reupload"], "rotation": "ry", "ansatz": "hardware_efficient",
                 "depth": {"range": [1, 3]}, "entanglement": ["ring", "linear", "none"]},
                {"type": "linear", "id": "head", "out_features": 10},
            ]},
    }


def _quantum_placement() -> dict:
    return {
        "name": "quantum-placement",
        "description": "Where does the quantum block go (paradigm)? Intermediate layer with a classical head, or the "
                       "output layer itself; with or without a classical head. Shows invalid combinations.",
        "base": {
            "task": "classification", "input_shape": [4],
            "blocks": [
                {"type": "linear", "id": "fc_in", "out_features": {"fit": "q"}},
                {"type": "activation", "id": "to_angles", "fn": "scaled_tanh", "scale": math.pi},
                {"type": "quantum", "id": "q", "role": ["intermediate", "output"], "qubits": 4,
                 "encoding": ["angle", "dense_angle"], "ansatz": ["hardware_efficient", "strongly_entangling"],
                 "depth": 2, "readout": {"mode": "estimator", "observables": ["ZIII", "IZII", "IIZI"]}},
                {"type": "linear", "id": "head", "out_features": 3, "optional": True},
            ]},
    }


def _digits_mlp_16() -> dict:
    return {
        "name": "digits-mlp-16",
        "description": "Seed 001's 16-architecture search on digits MLPs (notebook 02): hidden width, one or two "
                       "hidden layers, activation and learning rate; 4 bits.",
        "base": {
            "task": "classification", "input_shape": [64],
            "blocks": [
                {"type": "linear", "id": "hidden0", "out_features": [8, 32]},
                {"type": "activation", "id": "act0", "fn": ["tanh", "relu"]},
                {"type": "linear", "id": "hidden1", "out_features": {"same": "blocks.hidden0.out_features"},
                 "optional": True},
                {"type": "activation", "id": "act1", "fn": {"same": "blocks.act0.fn"},
                 "optional": {"same": "blocks.hidden1.present"}},
                {"type": "linear", "id": "head", "out_features": 10},
            ]},
        "train": {"lr": [0.003, 0.03]},
    }


SPACE_TEMPLATES: dict[str, Callable[[], dict]] = {
    "circles-vqc": _circles_vqc,
    "digits-quantum-block": _digits_quantum_block,
    "quantum-placement": _quantum_placement,
    "digits-mlp-16": _digits_mlp_16,
}

# The dataset (and options) each space template was written for.
SPACE_DATASETS: dict[str, tuple[str, dict]] = {
    "circles-vqc": ("circles", {"n_samples": 200, "noise": 0.05, "standardize": True}),
    "digits-quantum-block": ("digits", {}),
    "quantum-placement": ("iris", {"standardize": True}),
    "digits-mlp-16": ("digits", {"flatten": True, "standardize": True}),
}


def space_names() -> list[str]:
    return list(SPACE_TEMPLATES)


def get_space(name: str) -> SearchSpace:
    if name not in SPACE_TEMPLATES:
        raise KeyError(f"unknown search space template {name!r}: choose one of {', '.join(SPACE_TEMPLATES)}")
    return SearchSpace.model_validate(SPACE_TEMPLATES[name]())
