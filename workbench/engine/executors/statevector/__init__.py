"""The torch statevector engine: kernels, the lowered program (forward and readout), the adjoint sweep,
and the executor that runs layers on it."""

from .program import StatevectorProgram

__all__ = ["StatevectorProgram"]
