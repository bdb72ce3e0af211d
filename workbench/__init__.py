"""Hybrid Quantum Workbench: hybrid quantum-classical networks as specs, compiled to PyTorch over CUDA-Q."""

from __future__ import annotations

from . import templates
from .compiler import HybridModel, compile, load_model
from .spec import ArchitectureSpec, SpecError, load_spec

__version__ = "0.1.0"
__all__ = ["ArchitectureSpec", "HybridModel", "SpecError", "compile", "load_model", "load_spec", "templates"]
