"""The Gradient Connector: what to differentiate is the circuit's readout as a function of its gate
angles (and of the amplitude-encoded initial state); how is a `GradientMethod`.

Every method is one class in its own module of this package, registered with `@register`; the
registry finds the modules by itself, so adding a method is one new file. A method

- says which executions it supports (`unsupported(context)` returns the reason it cannot run, or None),
- says whether `auto` should pick it (`auto_reason(context)`; `auto_rank` orders the candidates),
- computes forward values and their vector-Jacobian product through the executor interface
  (`workbench.engine.executors.base.Executor`: `readout`, `states`, `sweep_program`) that the torch
  engines and CUDA-Q share.

Angles carry the chain rule to inputs and weights, so classical layers before a quantum layer train.
"""

from __future__ import annotations

from ..errors import WorkbenchError

import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch

from ..targets import Target

if TYPE_CHECKING:
    from ..executors.base import Executor

FINITE_DIFF_STEP = 1e-3


class GradientError(WorkbenchError, ValueError):
    """A gradient method that is unknown or cannot run with this target, shot count or noise."""


@dataclass(frozen=True)
class GradientContext:
    """What a method needs to know to say whether it applies: the target, the shots, the gate noise."""

    target: Target
    shots: int | None
    noisy: bool
    n_angles: int | None = None  # gate angles of the circuit (what parameter shift pays per sample)

    @property
    def hardware(self) -> bool:
        return self.target.hardware


@dataclass(frozen=True)
class GradientChoice:
    method: str
    reason: str


class GradientMethod:
    """Base class of a gradient method: forward values plus their vector-Jacobian product.

    Subclasses set `name` (and optionally `aliases`, `auto_rank`), write `summary`, and implement
    `vjp` (and `forward` when the backward needs something saved from the forward pass).
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    auto_rank: ClassVar[int | None] = None  # lower is tried first by 'auto'; None: only when asked for

    def __init__(self, executor: "Executor"):
        self.executor = executor

    @classmethod
    def unsupported(cls, context: GradientContext) -> str | None:
        """Why this method cannot run in `context` (with a fix), or None when it can."""
        return None

    @classmethod
    def auto_reason(cls, context: GradientContext) -> str | None:
        """Why 'auto' picks this method in `context`, or None when auto should pass it by."""
        return None

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """GradientError unless `options` (ExecutionConfig.gradient_options) suit this method; most take none."""
        if options:
            raise GradientError(f"gradient {cls.name!r} takes no gradient_options (got {sorted(options)}): remove "
                                "them, or use the method they are for (e.g. gradient='surrogate')")

    def report(self) -> dict[str, Any]:
        """Per-step accounting since the last call (circuits, shots, fit quality); empty for most methods."""
        return {}

    def forward(self, angles: torch.Tensor, init: torch.Tensor | None) -> tuple[torch.Tensor, Any]:
        """(values (batch, width), what vjp needs) without autograd."""
        return self.executor.readout(angles, init), None

    def vjp(self, angles: torch.Tensor, init: torch.Tensor | None, saved: Any, grad_out: torch.Tensor,
            need_init: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(grad of the angles (batch, n_rot), grad of the initial state or None) for upstream grad_out."""
        raise NotImplementedError

    def __call__(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        """Differentiable readout values (batch, width)."""
        return _CircuitFunction.apply(self, angles, init)


_REGISTRY: dict[str, type[GradientMethod]] = {}
_ALIASES: dict[str, str] = {}
_loaded = False


def register(cls: type[GradientMethod]) -> type[GradientMethod]:
    """Class decorator: make a method available by its name and aliases."""
    _REGISTRY[cls.name] = cls
    for alias in cls.aliases:
        _ALIASES[alias] = cls.name
    return cls


def _load() -> None:
    """Import every module of this package once, so each registers its methods."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = __package__
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{info.name}")


def method_names() -> tuple[str, ...]:
    """Every registered method, 'auto' first, then those auto may pick (in its order), then the rest."""
    _load()
    ranked = sorted(_REGISTRY.values(), key=lambda c: (c.auto_rank is None, c.auto_rank or 0, c.name))
    return ("auto", *(c.name for c in ranked))


def canonical_name(name: str) -> str:
    """The registered name for a name or alias (e.g. 'parameter-shift' → 'parameter_shift')."""
    _load()
    if name == "auto" or name in _REGISTRY:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    raise GradientError(f"unknown gradient method {name!r}: use one of {', '.join(method_names())}")


def method_class(name: str) -> type[GradientMethod]:
    return _REGISTRY[canonical_name(name)]


def method_summaries() -> dict[str, str]:
    """name → one-line description, for method lists in the GUI and the CLI."""
    _load()
    return {"auto": "picks the best method for the target, shots and noise, and says why",
            **{name: _REGISTRY[name].summary for name in method_names()[1:]}}


def choose(requested: str, context: GradientContext) -> GradientChoice:
    """Resolve 'auto' from the context, or check that an explicit choice fits it (GradientError if not)."""
    name = canonical_name(requested)
    if name == "auto":
        for candidate in method_names()[1:]:
            cls = _REGISTRY[candidate]
            if cls.auto_rank is None or cls.unsupported(context) is not None:
                continue
            reason = cls.auto_reason(context)
            if reason is not None:
                return GradientChoice(candidate, reason)
        raise GradientError(f"no gradient method applies to target {context.target.name!r} here")
    problem = _REGISTRY[name].unsupported(context)
    if problem is not None:
        raise GradientError(problem)
    return GradientChoice(name, f"chosen by the user: {_REGISTRY[name].summary}")


def _shifted_batch(angles: torch.Tensor, shift: float) -> torch.Tensor:
    """(batch * 2G, G): for each sample, every angle moved by +shift then by -shift."""
    batch, g = angles.shape
    eye = torch.eye(g, dtype=angles.dtype, device=angles.device) * shift
    moved = torch.cat([angles.unsqueeze(1) + eye, angles.unsqueeze(1) - eye], dim=1)
    return moved.reshape(batch * 2 * g, g)


def differences(evaluate: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], angles: torch.Tensor, init: torch.Tensor | None, shift: float,
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
    def forward(ctx, method: "GradientMethod", angles: torch.Tensor, init: torch.Tensor | None):
        values, saved = method.forward(angles.detach(), None if init is None else init.detach())
        ctx.method, ctx.saved, ctx.has_init = method, saved, init is not None
        ctx.save_for_backward(angles, init if init is not None else angles.new_zeros(0))
        return values

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        angles, init = ctx.saved_tensors
        init = init if ctx.has_init else None
        grad_angles, grad_init = ctx.method.vjp(angles, init, ctx.saved, grad_out,
                                                need_init=ctx.has_init and ctx.needs_input_grad[2])
        if grad_angles is not None:
            grad_angles = grad_angles.to(angles.dtype).to(angles.device)
        if grad_init is not None:
            grad_init = grad_init.to(init.dtype).to(init.device)
        return None, grad_angles, grad_init


