"""Adjoint differentiation: final states from the executor, one reverse sweep over the circuit in torch."""

from __future__ import annotations

from typing import Any

import torch

from .base import GradientContext, GradientMethod, register


@register
class Adjoint(GradientMethod):
    name = "adjoint"
    summary = "exact; cost of a few state sweeps, independent of the parameter count"
    auto_rank = 2

    @classmethod
    def unsupported(cls, context: GradientContext) -> str | None:
        if context.shots or context.hardware or not context.target.exact_states:
            where = "on hardware" if context.hardware else f"{context.shots} shots"
            return (f"gradient 'adjoint' needs exact states, but this layer measures {where}: "
                    "use parameter_shift or finite_diff")
        if context.noisy:
            return ("gradient 'adjoint' differentiates a noiseless statevector, but this layer has gate noise: "
                    "use density_matrix or parameter_shift")
        return None

    @classmethod
    def auto_reason(cls, context: GradientContext) -> str | None:
        return "exact simulator: adjoint costs a few state sweeps whatever the parameter count"

    def forward(self, angles: torch.Tensor, init: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        program = self.executor.sweep_program()
        psi = self.executor.states(angles, init).to(program.dtype).to(program.device)
        return program.readout(psi, self.executor.readout_plan), psi

    def vjp(self, angles, init, saved, grad_out, need_init):
        program = self.executor.sweep_program()
        lam = program.observable_action(saved, self.executor.readout_plan, grad_out)
        return program.adjoint_vjp(saved, lam, angles, need_initial=need_init, initial=init,
                                   phase_known=self.executor.phase_known)
