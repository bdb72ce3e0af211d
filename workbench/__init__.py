"""Hybrid Quantum Workbench: hybrid quantum-classical networks as specs, compiled to PyTorch over CUDA-Q."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from . import templates
from .compiler import HybridModel, compile, load_model
from .spec import ArchitectureSpec, SpecError, load_spec

__version__ = "0.1.0"

# Heavier parts load on first use, so `import workbench` stays quick for the engine alone.
_LAZY = {
    "train": "workbench.training", "Trainer": "workbench.training", "TrainConfig": "workbench.training",
    "MetricStream": "workbench.training", "resume": "workbench.training",
    "load_dataset": "workbench.data", "RunStore": "workbench.store",
    "Workbench": "workbench.gui.jupyter", "live": "workbench.gui.jupyter",
}

__all__ = ["ArchitectureSpec", "HybridModel", "SpecError", "compile", "load_model", "load_spec", "templates",
           *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
