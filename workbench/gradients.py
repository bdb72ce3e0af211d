"""The Gradient Connector: what to differentiate is the circuit's readout as a function of its gate
angles (and of the amplitude-encoded initial state); how is one of these methods.

- backprop: torch autograd through the torch engines (statevector or density matrix).
- adjoint: final states from the executor (CUDA-Q or torch), reverse sweep over the IR in torch.
- parameter_shift: every shifted circuit of the batch in one batched call; works with shots and hardware.
- finite_diff: central differences, also in one batched call.
- density_matrix: noisy forward values from the executor, exact gradient of the noisy expectation from
  the torch density-matrix engine under the same noise model.
- surrogate: forward values from the executor, VJP from a locally fitted MLP (see surrogate.py).

Angles carry the chain rule to inputs and weights, so classical layers before a quantum layer train.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from .circuits import ReadoutPlan
from .densitymatrix import DensityMatrixProgram
from .statevector import StatevectorProgram

METHODS = ("auto", "adjoint", "parameter_shift", "finite_diff", "density_matrix", "backprop", "surrogate")
# surrogate (issue 14): auto mentions it on hardware from this many gate angles (2 circuits per angle per sample)
SURROGATE_HINT_ANGLES = 8
FINITE_DIFF_STEP = 1e-3


class GradientError(ValueError):
    pass


@dataclass(frozen=True)
class GradientChoice:
    method: str
    reason: str


def choose_gradient(requested: str, *, engine: str, shots: int | None, hardware: bool, noisy: bool,
                    n_angles: int | None = None) -> GradientChoice:
    """Resolve 'auto' from the context and check that an explicit choice fits it.

    auto never picks 'surrogate' (approximate); on hardware with many angles its reason points to it.
    """
    if requested not in METHODS:
        raise GradientError(f"unknown gradient method {requested!r}: use one of {', '.join(METHODS)}")
    if requested == "auto":
        if hardware:
            reason = "hardware target: parameter shift needs only measured expectations"
            if n_angles and n_angles >= SURROGATE_HINT_ANGLES:  # issue 14: point to the surrogate
                reason += (f"; with {n_angles} gate angles it runs {2 * n_angles} circuits per sample per step: "
                           "gradient='surrogate' measures 1 + perturbations instead (approximate gradient)")
            return GradientChoice("parameter_shift", reason)
        if shots:
            return GradientChoice("parameter_shift", f"{shots} shots: parameter shift is unbiased under shot noise, "
                                                     "adjoint needs exact states")
        if noisy:
            return GradientChoice("density_matrix", "noisy simulation: exact gradient of the noisy expectation "
                                                    "from the density matrix")
        return GradientChoice("adjoint", "exact simulator: adjoint costs a few state sweeps whatever the parameter "
                                         "count")
    exact_only = {"adjoint", "backprop"}
    if requested in exact_only and (shots or hardware):
        raise GradientError(f"gradient {requested!r} needs exact states, but this layer measures "
                            f"{'on hardware' if hardware else f'{shots} shots'}: use parameter_shift or finite_diff")
    # backprop on the torch density-matrix engine differentiates the noisy density matrix itself: exact.
    if requested in exact_only and noisy and not (requested == "backprop" and engine == "torch-density"):
        raise GradientError(f"gradient {requested!r} differentiates a noiseless statevector, but this layer has gate "
                            "noise: use density_matrix or parameter_shift")
    if requested == "backprop" and engine not in ("torch", "torch-density"):
        raise GradientError(f"backprop differentiates the torch engine, not CUDA-Q target {engine!r}: "
                            "use adjoint (same exact gradient) or target='torch'")
    if requested == "density_matrix" and not noisy:
        raise GradientError("density_matrix gradients are for noisy simulation: add a noise model "
                            "(e.g. noise={'depolarizing': 0.01}) or use adjoint")
    reasons = {
        "adjoint": "exact; cost of a few state sweeps, independent of the parameter count",
        "backprop": "exact; torch autograd through the native engine" + (" (noisy density matrix)" if noisy else ""),
        "parameter_shift": "hardware-compatible: two shifted circuits per gate angle",
        "finite_diff": f"central differences with step {FINITE_DIFF_STEP:g} (approximate)",
        "density_matrix": "exact gradient of the noisy expectation from the density matrix",
        "surrogate": "approximate: real-circuit forward values, gradient of a locally fitted MLP (qtDNN)",
    }
    return GradientChoice(requested, f"chosen by the user: {reasons[requested]}")


class Evaluator(Protocol):
    """Readout values for a batch of angles and optional initial states: (batch, width) float tensor."""

    def __call__(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor: ...


def _shifted_batch(angles: torch.Tensor, shift: float) -> torch.Tensor:
    """(batch * 2G, G): for each sample, every angle moved by +shift then by -shift."""
    batch, g = angles.shape
    eye = torch.eye(g, dtype=angles.dtype, device=angles.device) * shift
    moved = torch.cat([angles.unsqueeze(1) + eye, angles.unsqueeze(1) - eye], dim=1)
    return moved.reshape(batch * 2 * g, g)


def _differences(evaluate: Evaluator, angles: torch.Tensor, init: torch.Tensor | None, shift: float,
                 divisor: float, init_features: int, grad_out: torch.Tensor,
                 init_step: float = FINITE_DIFF_STEP) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Vector-Jacobian product from ±shift evaluations of every angle (and init component), one batched call."""
    batch, g = angles.shape
    rows = [_shifted_batch(angles, shift)] if g else []
    inits = [init.repeat_interleave(2 * g, dim=0)] if (g and init is not None) else []
    if init is not None and init_features:
        # Amplitude-encoded inputs. Every readout (expectation or probability, noisy or not) is a quadratic
        # form f(v) = v^T A v of the initial vector, so central differences of f are exact for any step:
        # evaluate at the normalised vector v/|v| and scale by |v|^2 (f(v) = |v|^2 f(v/|v|)). This gives
        # ∂f/∂v = 2Av, the same quantity as the adjoint sweep; the normalisation's own Jacobian upstream
        # removes the radial part.
        eye = torch.eye(init.shape[1], dtype=init.dtype, device=init.device)[:init_features] * init_step
        moved = torch.cat([init.unsqueeze(1) + eye, init.unsqueeze(1) - eye], dim=1)
        norms = moved.norm(dim=-1, keepdim=True)
        moved = moved / norms
        rows.append(angles.repeat_interleave(2 * init_features, dim=0))
        inits.append(moved.reshape(-1, init.shape[1]))
    values = evaluate(torch.cat(rows), torch.cat(inits) if inits else None).to(grad_out.dtype)
    width = values.shape[-1]
    grad_angles = grad_init = None
    if g:
        shifted = values[: batch * 2 * g].reshape(batch, 2, g, width)
        jac = (shifted[:, 0] - shifted[:, 1]) / divisor  # (batch, G, width)
        grad_angles = torch.einsum("bgk,bk->bg", jac, grad_out)
    if init is not None and init_features:
        scale = (norms.reshape(batch, 2, init_features, 1) ** 2).to(values.dtype)
        moved_values = values[batch * 2 * g:].reshape(batch, 2, init_features, width) * scale
        jac = (moved_values[:, 0] - moved_values[:, 1]) / (2 * init_step)
        grad_init = torch.zeros_like(init)
        grad_init[:, :init_features] = torch.einsum("bfk,bk->bf", jac, grad_out).to(init.dtype)
    return grad_angles, grad_init


class _CircuitFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, runner: "Runner", angles: torch.Tensor, init: torch.Tensor | None):
        values, saved = runner.forward(angles.detach(), None if init is None else init.detach())
        ctx.runner, ctx.saved, ctx.has_init = runner, saved, init is not None
        ctx.save_for_backward(angles, init if init is not None else angles.new_zeros(0))
        return values

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        angles, init = ctx.saved_tensors
        init = init if ctx.has_init else None
        grad_angles, grad_init = ctx.runner.backward(angles, init, ctx.saved, grad_out,
                                                     need_init=ctx.has_init and ctx.needs_input_grad[2])
        if grad_angles is not None:
            grad_angles = grad_angles.to(angles.dtype).to(angles.device)
        if grad_init is not None:
            grad_init = grad_init.to(init.dtype).to(init.device)
        return None, grad_angles, grad_init


class Runner:
    """Forward values and their vector-Jacobian product for one gradient method."""

    def __init__(self, evaluate: Evaluator, method: str, *, plan: ReadoutPlan, init_features: int = 0,
                 states: Callable | None = None, program: StatevectorProgram | None = None,
                 dm_program: DensityMatrixProgram | None = None, surrogate=None):
        self.evaluate = evaluate
        self.method = method
        self.plan = plan
        self.init_features = init_features
        self.states = states
        self.program = program
        self.dm_program = dm_program
        self.surrogate = surrogate  # issue 14: a surrogate.SurrogateGradient when method == "surrogate"

    def __call__(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        if self.method == "surrogate":  # issue 14: the surrogate owns forward values and VJP
            return self.surrogate(angles, init)
        if self.method == "backprop":
            return self.evaluate(angles, init)
        return _CircuitFunction.apply(self, angles, init)

    def forward(self, angles, init):
        if self.method == "adjoint":
            psi = self.states(angles, init).to(self.program.dtype).to(self.program.device)
            return self.program.readout(psi, self.plan), psi
        return self.evaluate(angles, init), None

    def backward(self, angles, init, saved, grad_out, need_init: bool):
        if self.method == "adjoint":
            lam = self.program.observable_action(saved, self.plan, grad_out)
            return self.program.adjoint_vjp(saved, lam, angles, need_initial=need_init)
        if self.method == "parameter_shift":
            # Shot-robust: a large exact step for the amplitude-encoded initial vector too (|v ± e/2| >= 1/2).
            return _differences(self.evaluate, angles, init, math.pi / 2, 2.0,
                                self.init_features if need_init else 0, grad_out, init_step=0.5)
        if self.method == "finite_diff":
            return _differences(self.evaluate, angles, init, FINITE_DIFF_STEP, 2 * FINITE_DIFF_STEP,
                                self.init_features if need_init else 0, grad_out)
        if self.method == "density_matrix":
            with torch.enable_grad():
                a = angles.detach().to(torch.float64).requires_grad_(True)
                i = init.detach().to(torch.float64).requires_grad_(True) if init is not None else None
                values = self.dm_program.readout(self.dm_program.run(a, i), self.plan)
                inputs = [a] + ([i] if i is not None and need_init else [])
                grads = torch.autograd.grad(values, inputs, grad_out.to(values.dtype), allow_unused=True)
            return grads[0], grads[1] if len(grads) > 1 else None
        raise GradientError(f"no backward for method {self.method!r}")
