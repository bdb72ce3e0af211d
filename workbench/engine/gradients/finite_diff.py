"""Central finite differences of the readout, every displaced circuit in one batched call (approximate)."""

from __future__ import annotations

from .base import FINITE_DIFF_STEP, GradientMethod, differences, register


@register
class FiniteDiff(GradientMethod):
    name = "finite_diff"
    aliases = ("finite-diff", "finite_difference", "fd")
    summary = f"central differences with step {FINITE_DIFF_STEP:g} (approximate)"

    def vjp(self, angles, init, saved, grad_out, need_init):
        features = self.executor.circuit.amplitude_inputs if need_init else 0
        return differences(self.executor.readout, angles, init, FINITE_DIFF_STEP, 2 * FINITE_DIFF_STEP, features,
                           grad_out)
