"""Backpropagation: torch autograd through a torch engine's simulation (statevector or density matrix)."""

from __future__ import annotations

import torch

from .base import GradientContext, GradientMethod, register


@register
class Backprop(GradientMethod):
    name = "backprop"
    summary = "exact; torch autograd through the native engine"

    @classmethod
    def unsupported(cls, context: GradientContext) -> str | None:
        if context.shots or context.hardware:
            where = "on hardware" if context.hardware else f"{context.shots} shots"
            return (f"gradient 'backprop' needs exact states, but this layer measures {where}: "
                    "use parameter_shift or finite_diff")
        if context.noisy and not (context.target.autograd and context.target.density_matrix):
            return ("gradient 'backprop' differentiates a noiseless statevector, but this layer has gate noise: "
                    "use density_matrix or parameter_shift")
        if not context.target.autograd:
            return (f"backprop differentiates the torch engine, not CUDA-Q target {context.target.name!r}: "
                    "use adjoint (same exact gradient) or target='torch'")
        return None

    def __call__(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        return self.executor.readout(angles, init)
