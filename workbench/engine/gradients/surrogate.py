"""Surrogate gradients (qtDNN, seed 002: Luo et al., arXiv 2503.09119): the forward value is the real circuit's,
the vector-Jacobian product comes from a small torch MLP that locally approximates the circuit.

Parameter shift runs 2 circuits per gate angle per sample per step; on hardware that makes batched training
of hybrid networks impractical. The surrogate instead measures the circuit once at each minibatch point plus
`perturbations` cheap copies with angles jittered by `perturbation_scale` (one batched executor call), keeps
the last `buffer_size` (angles, measured readout) rows, refits the MLP for `refit_steps` Adam steps, and
backpropagates through it. Inference (no gradient wanted) runs the real circuit only.

The surrogate sees gate angles (and amplitude-encoded initial-state components), not raw inputs and
weights: angles are what the circuit depends on, and the chain rule carries the VJP to inputs and weights.
Angles enter as (sin θ, cos θ), the periodic features a circuit's readout is a polynomial of.

Interface (a gradient method is the pair forward values + VJP, with its accounting):

    surrogate = SurrogateGradient(evaluate, plan, n_angles=G, init_features=F, options={...},
                                  reference=exact_vjp(program, plan))
    values = surrogate.measure_and_fit(angles, init)   # (batch, width): measure, buffer, refit
    grads = surrogate.vjp(angles, init, grad_out)        # (grad angles, grad init) through the fitted MLP
    values = surrogate.infer(angles, init)               # inference: the real circuit only
    report = surrogate.report()                          # accounting since the last report (then reset)

Options (`ExecutionConfig.gradient_options`: `compile(gradient_options=...)`, `QuantumLayer`, `TrainConfig`,
CLI `--gradient-option k=v`): buffer_size, refit_steps, perturbations, perturbation_scale, hidden, lr,
reference_max_qubits. `Surrogate` (below) is the registered gradient method that wires this to a layer.

Example:
    >>> model = compile(spec, target="quantinuum", gradient="surrogate",
    ...                 gradient_options={"buffer_size": 256, "refit_steps": 30})
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable

import torch
from torch import nn

from ..circuits import ReadoutPlan
from .base import GradientError, GradientMethod, register

Evaluate = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
Reference = Callable[[torch.Tensor, "torch.Tensor | None", torch.Tensor], torch.Tensor]


class SurrogateError(GradientError):
    """A surrogate option out of range or of the wrong kind."""


# Upper bounds: options may come from a model file or a share link, so none may ask for unbounded memory.
OPTION_LIMITS = {"buffer_size": 1_000_000, "refit_steps": 10_000, "perturbations": 64, "hidden": 4096,
                 "reference_max_qubits": 20}


@dataclass(frozen=True)
class SurrogateOptions:
    """How the surrogate collects data and fits.

    Args:
        buffer_size: rows (measured circuits) kept; the oldest are dropped first.
        refit_steps: Adam steps on the buffer after each minibatch's measurements.
        perturbations: jittered copies measured per minibatch point (0: only the minibatch itself).
        perturbation_scale: standard deviation of the angle jitter in radians (init components: relative).
        hidden: width of the MLP's two hidden layers.
        lr: Adam learning rate of the fit.
        reference_max_qubits: largest circuit whose exact gradient is computed for the cosine metric.
    """

    buffer_size: int = 512
    refit_steps: int = 20
    perturbations: int = 1
    perturbation_scale: float = 0.3
    hidden: int = 64
    lr: float = 0.01
    reference_max_qubits: int = 10

    def __post_init__(self) -> None:
        for name in ("buffer_size", "refit_steps", "hidden"):
            if int(getattr(self, name)) < 1:
                raise SurrogateError(f"surrogate option {name}={getattr(self, name)} must be at least 1")
        for name, limit in OPTION_LIMITS.items():
            if getattr(self, name) > limit:
                raise SurrogateError(f"surrogate option {name}={getattr(self, name)} is over its limit {limit}")
        if self.perturbations < 0:
            raise SurrogateError(f"surrogate option perturbations={self.perturbations} must be 0 or more")
        if not (self.perturbation_scale > 0 and math.isfinite(self.perturbation_scale)):
            raise SurrogateError(f"surrogate option perturbation_scale={self.perturbation_scale} must be positive")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SurrogateError(f"surrogate option lr={self.lr} must be positive")

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> "SurrogateOptions":
        options = dict(options or {})
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise SurrogateError(f"unknown surrogate option(s) {', '.join(unknown)}: use {', '.join(known)}")
        converted = {}
        for key, value in options.items():
            kind = float if key in ("perturbation_scale", "lr") else int
            try:
                converted[key] = kind(value)
            except (TypeError, ValueError) as err:
                raise SurrogateError(f"surrogate option {key}={value!r} must be a number") from err
        return cls(**converted)


def exact_vjp(program, plan: ReadoutPlan) -> Reference:
    """The exact angle VJP of the noiseless circuit from a torch statevector program (adjoint sweep).

    A simulation reference for the cosine metric only: it runs no executor circuit and spends no shots.
    """
    def reference(angles: torch.Tensor, init: torch.Tensor | None, grad_out: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            initial = None if init is None else init.to(program.device)
            psi = program.run(angles.to(program.real_dtype).to(program.device), initial)
            lam = program.observable_action(psi, plan, grad_out.to(program.device))
            return program.adjoint_vjp(psi, lam, angles, need_initial=False, initial=initial)[0]
    return reference


class _Mlp(nn.Module):
    def __init__(self, n_angles: int, n_init: int, width: int, hidden: int):
        super().__init__()
        self.n_angles = n_angles
        self.net = nn.Sequential(nn.Linear(2 * n_angles + n_init, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                                 nn.Tanh(), nn.Linear(hidden, width))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        angles, rest = rows[:, : self.n_angles], rows[:, self.n_angles:]
        return self.net(torch.cat([torch.sin(angles), torch.cos(angles), rest], dim=1))


class SurrogateGradient:
    """Real-circuit forward values with the VJP of a locally fitted MLP, and honest accounting.

    Args:
        evaluate: (angles (B, G), init (B, 2**n) or None) -> measured readout (B, width); every row it is
            given is one circuit run with `plan.shots` shots.
        plan: the readout plan (width, shots).
        n_angles: G, gate angles per circuit.
        init_features: amplitude-encoded input components (0 when the circuit starts in |0...0>).
        options: a SurrogateOptions or its dict.
        reference: exact angle VJP (see `exact_vjp`) for the cosine metric, or None when unaffordable.
    Shape:
        angles (B, G), init (B, 2**n) or None -> values (B, width).
    """

    def __init__(self, evaluate: Evaluate, plan: ReadoutPlan, *, n_angles: int, init_features: int = 0,
                 options: SurrogateOptions | dict | None = None, reference: Reference | None = None):
        self.evaluate = evaluate
        self.plan = plan
        self.n_angles = n_angles
        self.init_features = init_features
        self.options = options if isinstance(options, SurrogateOptions) else SurrogateOptions.from_dict(options)
        self.reference = reference
        self.model = _Mlp(n_angles, init_features, plan.width, self.options.hidden).double()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.options.lr)
        self.buffer_x = torch.zeros(0, n_angles + init_features, dtype=torch.float64)
        self.buffer_y = torch.zeros(0, plan.width, dtype=torch.float64)
        self._report = self._empty_report()

    # -- accounting ---------------------------------------------------------------------------
    @staticmethod
    def _empty_report() -> dict[str, Any]:
        return {"forward_circuits": 0, "forward_shots": 0, "surrogate_circuits": 0, "surrogate_shots": 0,
                "parameter_shift_circuits": 0, "parameter_shift_shots": 0}

    def report(self) -> dict[str, Any]:
        """Accounting since the last report, then reset. Shots are 0 on exact (shot-free) simulators.

        forward_*: the minibatch (and inference) circuits; surrogate_*: the perturbed copies measured for
        the fit; parameter_shift_*: what parameter shift would have run for the same gradients;
        fit_error / prediction_error: RMS error of the refitted surrogate on its buffer / of the previous
        surrogate on this step's fresh measurements; gradient_cosine: cosine between the surrogate's and
        the exact angle VJP (absent when no exact reference is affordable).
        """
        out, self._report = self._report, self._empty_report()
        return out

    def _count(self, prefix: str, circuits: int) -> None:
        self._report[f"{prefix}_circuits"] += circuits
        self._report[f"{prefix}_shots"] += circuits * (self.plan.shots or 0)

    # -- forward ------------------------------------------------------------------------------
    def infer(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        """The real circuit's values when no gradient is wanted: nothing is measured for the fit."""
        self._count("forward", angles.shape[0])
        return self.evaluate(angles, init)

    def _rows(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        parts = [angles.detach().cpu().to(torch.float64)]
        if self.init_features:
            parts.append(init[:, : self.init_features].real.detach().cpu().to(torch.float64))
        return torch.cat(parts, dim=1)

    def measure_and_fit(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        """Measure the minibatch and its jittered copies in one call, buffer them, refit; the minibatch's values."""
        batch, copies = angles.shape[0], self.options.perturbations
        all_angles, all_init = angles, init
        if copies:
            scale = self.options.perturbation_scale
            jitter = angles.repeat(copies, 1)
            all_angles = torch.cat([angles, jitter + scale * torch.randn_like(jitter)])
            if init is not None:
                moved = init.repeat(copies, 1)
                if self.init_features:
                    noise = torch.zeros_like(moved)
                    noise[:, : self.init_features] = torch.randn_like(moved[:, : self.init_features])
                    moved = moved + scale * noise * moved.norm(dim=1, keepdim=True) / math.sqrt(self.init_features)
                    moved = moved / moved.norm(dim=1, keepdim=True).clamp_min(1e-12)
                all_init = torch.cat([init, moved])
        measured = self.evaluate(all_angles, all_init)
        self._count("forward", batch)
        self._count("surrogate", batch * copies)
        shifted = self.n_angles + self.init_features * int(init is not None and self.init_features > 0)
        self._count("parameter_shift", batch * 2 * shifted)
        rows, targets = self._rows(all_angles, all_init), measured.detach().cpu().to(torch.float64)
        with torch.no_grad():
            if len(self.buffer_x):
                self._report["prediction_error"] = float((self.model(rows) - targets).pow(2).mean().sqrt())
        self.buffer_x = torch.cat([self.buffer_x, rows])[-self.options.buffer_size:]
        self.buffer_y = torch.cat([self.buffer_y, targets])[-self.options.buffer_size:]
        self._report["fit_error"] = self._fit()
        self._report["buffer_rows"] = len(self.buffer_x)
        return measured[:batch]

    def _fit(self) -> float:
        with torch.enable_grad():
            for _ in range(self.options.refit_steps):
                self.optimizer.zero_grad()
                loss = (self.model(self.buffer_x) - self.buffer_y).pow(2).mean()
                loss.backward()
                self.optimizer.step()
        with torch.no_grad():
            return float((self.model(self.buffer_x) - self.buffer_y).pow(2).mean().sqrt())

    # -- backward -----------------------------------------------------------------------------
    def vjp(self, angles: torch.Tensor, init: torch.Tensor | None,
            grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(grad of angles (B, G), grad of init (B, 2**n) or None) through the surrogate."""
        with torch.enable_grad():
            rows = self._rows(angles, init).requires_grad_(True)
            predicted = self.model(rows)
            (grad_rows,) = torch.autograd.grad(predicted, rows, grad_out.detach().cpu().to(torch.float64))
        grad_angles = grad_rows[:, : self.n_angles]
        grad_init = None
        if init is not None:
            grad_init = torch.zeros(init.shape, dtype=torch.float64)
            grad_init[:, : self.init_features] = grad_rows[:, self.n_angles:]
        if self.reference is not None and self.n_angles:
            exact = self.reference(angles.detach(), None if init is None else init.detach(), grad_out.detach())
            self._report["gradient_cosine"] = cosine(grad_angles, exact)
        return grad_angles.to(angles.device), None if grad_init is None else grad_init.to(init.device)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two tensors as flat vectors (0 when either is zero)."""
    a, b = a.detach().flatten().to(torch.float64), b.detach().flatten().to(torch.float64).to(a.device)
    denominator = float(a.norm() * b.norm())
    return float(a @ b) / denominator if denominator > 0 else 0.0


def describe_accounting(quantum: dict[str, dict[str, Any]]) -> str:
    """One line for a progress bar from a step event's per-layer fields ('' when no layer uses the surrogate).

    Example: ' | vqc: 3200+3200 shots (shift 40000), fit 0.041, cos 0.91'
    """
    parts = []
    for name, fields_ in quantum.items():
        if "surrogate_circuits" not in fields_:
            continue
        unit = "shots" if fields_.get("forward_shots") else "circuits"
        text = (f"{name}: {fields_[f'forward_{unit}']}+{fields_[f'surrogate_{unit}']} {unit} "
                f"(shift {fields_[f'parameter_shift_{unit}']})")
        if fields_.get("fit_error") is not None:
            text += f", fit {fields_['fit_error']:.3f}"
        if fields_.get("gradient_cosine") is not None:
            text += f", cos {fields_['gradient_cosine']:.2f}"
        parts.append(text)
    return " | " + "; ".join(parts) if parts else ""


@register
class Surrogate(GradientMethod):
    """The registered gradient method: real-circuit forward values, VJP of the fitted surrogate."""

    name = "surrogate"
    summary = "approximate: real-circuit forward values, gradient of a locally fitted MLP (qtDNN)"
    auto_rank = None  # approximate: only when asked for

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        SurrogateOptions.from_dict(options)

    def __init__(self, executor):
        super().__init__(executor)
        plan = executor.plan
        settings = SurrogateOptions.from_dict(plan.config.gradient_options)
        affordable = not plan.noisy and plan.block.qubits <= settings.reference_max_qubits
        circuit = executor.circuit
        self.surrogate = SurrogateGradient(
            lambda angles, init: self.executor.readout(angles, init), executor.readout_plan, n_angles=len(circuit.rotation_gates),
            init_features=circuit.amplitude_inputs, options=settings,
            reference=exact_vjp(executor.sweep_program(), executor.readout_plan) if affordable else None)

    def __call__(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        wants_grad = torch.is_grad_enabled() and (angles.requires_grad or (init is not None and init.requires_grad))
        # Inference must not spend circuits on perturbed copies nor refit the surrogate.
        return super().__call__(angles, init) if wants_grad else self.surrogate.infer(angles, init)

    def forward(self, angles: torch.Tensor, init: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        return self.surrogate.measure_and_fit(angles, init), None

    def vjp(self, angles, init, saved, grad_out, need_init):
        return self.surrogate.vjp(angles, init, grad_out)

    def report(self) -> dict[str, Any]:
        return self.surrogate.report()
