"""Parameter shift: every shifted circuit of the batch in one batched call; works with shots and hardware."""

from __future__ import annotations

import math

from .base import GradientContext, GradientMethod, differences, register

SURROGATE_HINT_ANGLES = 8  # from this many angles, auto's reason on hardware points to the surrogate


@register
class ParameterShift(GradientMethod):
    name = "parameter_shift"
    aliases = ("parameter-shift", "param_shift", "ps")
    summary = "hardware-compatible: two shifted circuits per gate angle"
    auto_rank = 3

    @classmethod
    def auto_reason(cls, context: GradientContext) -> str | None:
        if context.hardware:
            reason = "hardware target: parameter shift needs only measured expectations"
            if context.n_angles and context.n_angles >= SURROGATE_HINT_ANGLES:
                reason += (f"; with {context.n_angles} gate angles it runs {2 * context.n_angles} circuits per sample "
                           "per step: gradient='surrogate' measures 1 + perturbations instead (approximate gradient)")
            return reason
        if context.shots:
            return f"{context.shots} shots: parameter shift is unbiased under shot noise, adjoint needs exact states"
        return "parameter shift: two shifted circuits per gate angle"

    def vjp(self, angles, init, saved, grad_out, need_init):
        # Shot-robust: a large exact step for the amplitude-encoded initial vector too (|v ± e/2| >= 1/2).
        features = self.executor.circuit.amplitude_inputs if need_init else 0
        return differences(self.executor.readout, angles, init, math.pi / 2, 2.0, features, grad_out, init_step=0.5)
