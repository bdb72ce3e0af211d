"""Hybrid Quantum Workbench: hybrid quantum-classical networks as specs, compiled to PyTorch over CUDA-Q."""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

# CUDA-Q's parallel regions run on torch's OpenMP runtime; spinning waiters made small CUDA-Q calls
# 10-100x slower on a busy machine. This must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import templates  # noqa: E402
from .compiler import HybridModel, compile, load_model  # noqa: E402
from .engine import ExecutionConfig, QuantumLayer, resolve  # noqa: E402
from .engine.function import CircuitFunction, circuit_function, expectation  # noqa: E402
from .spec import ArchitectureSpec, SpecError, load_spec  # noqa: E402

__version__ = "0.1.0"

# Heavier parts load on first use, so `import workbench` stays quick for the engine alone.
_LAZY = {
    "train": "workbench.training", "Trainer": "workbench.training", "TrainConfig": "workbench.training",
    "MetricStream": "workbench.training", "resume": "workbench.training",
    "load_dataset": "workbench.data", "RunStore": "workbench.store",
    "Workbench": "workbench.gui.jupyter", "live": "workbench.gui.jupyter",
    "search": "workbench.search",
}

__all__ = ["ArchitectureSpec", "CircuitFunction", "ExecutionConfig", "HybridModel", "QuantumLayer", "SpecError",
           "circuit_function", "compile", "expectation", "load_model", "load_spec", "resolve", "templates",
           *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
