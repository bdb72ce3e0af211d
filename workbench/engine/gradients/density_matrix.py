"""Density-matrix gradients: noisy forward values from the executor, the exact gradient of the noisy
expectation from the torch density-matrix engine under the same noise model."""

from __future__ import annotations

import torch

from ..executors.densitymatrix import DensityMatrixProgram
from .base import GradientContext, GradientMethod, register


@register
class DensityMatrixGradient(GradientMethod):
    name = "density_matrix"
    aliases = ("density-matrix",)
    summary = "exact gradient of the noisy expectation from the density matrix"
    auto_rank = 1

    @classmethod
    def unsupported(cls, context: GradientContext) -> str | None:
        if not context.noisy:
            return ("density_matrix gradients are for noisy simulation: add a noise model "
                    "(e.g. noise={'depolarizing': 0.01}) or use adjoint")
        return None

    @classmethod
    def auto_reason(cls, context: GradientContext) -> str | None:
        if context.shots or context.hardware:
            return None  # measured values: parameter shift is the unbiased estimate
        return "noisy simulation: exact gradient of the noisy expectation from the density matrix"

    def __init__(self, executor):
        super().__init__(executor)
        self.program = DensityMatrixProgram(executor.circuit, executor.noise, torch.complex128, executor.device)

    def vjp(self, angles, init, saved, grad_out, need_init):
        with torch.enable_grad():
            a = angles.detach().to(torch.float64).requires_grad_(True)
            i = init.detach().to(torch.float64).requires_grad_(True) if init is not None else None
            values = self.program.readout(self.program.run(a, i), self.executor.readout_plan)
            inputs = [a] + ([i] if i is not None and need_init else [])
            grads = torch.autograd.grad(values, inputs, grad_out.to(values.dtype), allow_unused=True)
        return grads[0], grads[1] if len(grads) > 1 else None
