"""Circuits outside torch layers: a quantum block as a plain numerical function of its weights.

    f = CircuitFunction({"qubits": 2, "encoding": "none", "ansatz": "hardware_efficient", "depth": 2,
                         "readout": {"hamiltonian": [{"coeff": 1.0, "pauli": "ZZ"}, {"coeff": 0.5, "pauli": "XI"}]}},
                        target="qpp-cpu")
    result = scipy.optimize.minimize(f.value_and_grad, f.initial_weights(seed=0), jac=True, method="BFGS")

`f(weights, x=None)` returns the block's readout as numpy; `f.value_and_grad(weights, x=None)` returns the
value and its gradient with respect to the weights (the Jacobian when the readout has several values).
Everything runs through `QuantumLayer`, so targets, noise, shots and gradient methods behave exactly as
in a compiled model.

A block without a data input (encoding 'none' and no input-sourced gates, e.g. a VQE ansatz) takes only
weights: they feed the circuit's parameters directly (the block is run with role 'parameter_input').
A block with a data encoding takes fixed inputs `x` (one sample, shape (features,), or a batch
(batch, features)) next to its trainable weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .block import Quantum, SpecError, ansatz_weight_count, check_quantum, encoding_features, quantum_block
from .layer import QuantumLayer
from .noise import NoiseModel
from .plan import ExecutionConfig, with_noise_engine

__all__ = ["CircuitFunction", "circuit_function", "expectation"]


def _as_block(block: Quantum | dict) -> dict:
    if isinstance(block, Quantum):
        data = block.model_dump(mode="json")
    elif isinstance(block, dict):
        data = dict(block)
    else:
        raise TypeError(f"a circuit function needs a quantum block (spec.Quantum or dict), not {type(block).__name__}")
    data.setdefault("type", "quantum")
    data.setdefault("id", "circuit")
    if data["type"] != "quantum":
        raise SpecError(f"block {data['id']}: a circuit function needs a block of type 'quantum', not "
                          f"{data['type']!r}", data["id"], "type")
    return data


def _validated_block(data: dict) -> Quantum:
    """Field validation with the spec's messages (SpecError naming block and field)."""
    return quantum_block(**data)


class CircuitFunction:
    """A quantum block as a function of numpy (or torch) weights, with gradients for plain optimisers."""

    def __init__(self, block: Quantum | dict, *, n_features: int | None = None, target: str = "torch",
                 gradient: str = "auto", noise: NoiseModel | dict | None = None, shots: int | None = None,
                 precision: str = "double", target_options: dict | None = None, emulate: bool = True,
                 config: ExecutionConfig | dict | None = None):
        data = _as_block(block)
        quantum = _validated_block(data)
        custom_inputs = [g.index for g in quantum.gates or [] if g.source == "input"]
        # No data input at all: the weights are the circuit's parameters (role parameter_input).
        self.parameter_mode = quantum.role == "parameter_input" or (quantum.encoding == "none" and not custom_inputs)
        if self.parameter_mode:
            data = {**data, "role": "parameter_input", "encoding": "none"}
            quantum = _validated_block(data)
            n_features = ansatz_weight_count(quantum)
            if n_features == 0:
                raise SpecError(f"block {quantum.id}: the circuit has neither inputs nor trainable parameters: "
                                  "add a rotation with source 'weight'", quantum.id, "gates")
        elif n_features is None:
            n_features = encoding_features(quantum)
            if quantum.encoding == "amplitude":
                n_features = 2**quantum.qubits
            elif quantum.ansatz == "custom" and quantum.encoding == "none":
                n_features = max(custom_inputs) + 1
        if data.get("role") == "output":
            data = {**data, "role": "intermediate"}
        # The block check of the spec: feature counts, Pauli strings, gate wires, with the spec's messages.
        self.block: Quantum = _validated_block(data)
        check_quantum(self.block, (int(n_features),), None, is_last=True)
        self.n_features = int(n_features)
        options = {"target": target, "gradient": gradient, "noise": noise, "shots": shots, "precision": precision,
                   "target_options": target_options, "emulate": emulate}
        execution = with_noise_engine(ExecutionConfig.from_any(config) if config is not None
                                      else ExecutionConfig.from_any(None, **options))
        self.target = execution.target
        self.layer = QuantumLayer(self.block, self.n_features, config=execution)
        self._real = torch.float64 if execution.precision == "double" else torch.float32

    # -- description ----------------------------------------------------------------------------
    @property
    def n_weights(self) -> int:
        """Length of the weight vector this function takes."""
        return self.n_features if self.parameter_mode else self.layer.circuit.n_weights

    @property
    def output_width(self) -> int:
        return self.layer.plan.width

    @property
    def gradient_method(self) -> str:
        return self.layer.choice.method

    def gradient_info(self) -> dict[str, str]:
        return {"method": self.layer.choice.method, "reason": self.layer.choice.reason}

    def initial_weights(self, seed: int | None = None, scale: float = 0.1) -> np.ndarray:
        """Small random weights (uniform in [-scale*pi, scale*pi]), a good start away from flat regions."""
        rng = np.random.default_rng(seed)
        return rng.uniform(-scale * np.pi, scale * np.pi, self.n_weights)

    @property
    def circuit_executions(self) -> int:
        return self.layer.circuit_executions

    # -- evaluation -----------------------------------------------------------------------------
    def _weights(self, weights: Any) -> torch.Tensor:
        w = torch.as_tensor(np.asarray(weights.detach().cpu() if isinstance(weights, torch.Tensor) else weights,
                                       dtype=np.float64), dtype=self._real).reshape(-1)
        if w.numel() != self.n_weights:
            raise ValueError(f"block {self.block.id}: expected {self.n_weights} weights, got {w.numel()}")
        return w.to(self.layer.device_)

    def _inputs(self, x: Any) -> tuple[torch.Tensor | None, bool]:
        """(x as (batch, features) or None, whether x was a batch)."""
        if self.parameter_mode:
            if x is not None:
                raise ValueError(f"block {self.block.id} has no data input (encoding 'none'): call f(weights) "
                                 "without x")
            return None, False
        if x is None:
            raise ValueError(f"block {self.block.id} encodes input features with {self.block.encoding!r}: pass x "
                             f"with {self.n_features} features")
        xt = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64),
                             dtype=self._real)
        batched = xt.dim() == 2
        xt = xt.reshape(1, -1) if xt.dim() == 1 else xt
        if xt.dim() != 2 or xt.shape[1] != self.n_features:
            raise ValueError(f"block {self.block.id}: x must have {self.n_features} features per sample "
                             f"(shape ({self.n_features},) or (batch, {self.n_features})), got {tuple(xt.shape)}")
        return xt.to(self.layer.device_), batched

    def _forward(self, w: torch.Tensor, xt: torch.Tensor | None) -> torch.Tensor:
        if self.parameter_mode:
            return self.layer(w.reshape(1, -1))
        params = {"weight": w} if self.layer.weight is not None else {}
        return torch.func.functional_call(self.layer, params, (xt,))

    @staticmethod
    def _shape(values: torch.Tensor, batched: bool) -> torch.Tensor:
        return values if batched else values[0]

    def __call__(self, weights: Any, x: Any = None) -> np.ndarray:
        """The readout: shape (width,) for one sample (or no input), (batch, width) for a batch of x."""
        w = self._weights(weights)
        xt, batched = self._inputs(x)
        with torch.no_grad():
            values = self._forward(w, xt)
        return self._shape(values, batched).detach().double().cpu().numpy()

    def value_and_grad(self, weights: Any, x: Any = None) -> tuple[float | np.ndarray, np.ndarray]:
        """(value, d value / d weights) as numpy, for scipy.optimize.minimize(..., jac=True).

        A single value (an energy, one observable, one sample) gives (float, gradient of shape (n_weights,)).
        Several values give (values, Jacobian of shape values.shape + (n_weights,)).
        """
        w = self._weights(weights).requires_grad_(True)
        xt, batched = self._inputs(x)
        with torch.enable_grad():
            values = self._shape(self._forward(w, xt), batched)
            flat = values.reshape(-1)
            if flat.numel() == 1:
                (grad,) = torch.autograd.grad(flat[0], w, allow_unused=True)
                grad = torch.zeros_like(w) if grad is None else grad
                return float(flat[0].detach()), grad.detach().double().cpu().numpy()
            rows = []
            for k in range(flat.numel()):
                (grad,) = torch.autograd.grad(flat[k], w, retain_graph=k + 1 < flat.numel(), allow_unused=True)
                rows.append(torch.zeros_like(w) if grad is None else grad)
        jac = torch.stack(rows).reshape(*values.shape, w.numel())
        return values.detach().double().cpu().numpy(), jac.detach().double().cpu().numpy()

    def grad(self, weights: Any, x: Any = None) -> np.ndarray:
        """The gradient (or Jacobian) alone."""
        return self.value_and_grad(weights, x)[1]

    def __repr__(self) -> str:
        return (f"CircuitFunction({self.block.id}: {self.block.qubits} qubits, {self.n_weights} weights, "
                f"target={self.target}, gradient={self.gradient_method}, outputs={self.output_width})")


def circuit_function(block: Quantum | dict, **options: Any) -> CircuitFunction:
    """`CircuitFunction(block, **options)`: target, gradient, noise, shots, precision, n_features, ..."""
    return CircuitFunction(block, **options)


def expectation(block: Quantum | dict, weights: Any, x: Any = None, **options: Any) -> np.ndarray:
    """One evaluation of a block's readout (expectations, energy or probabilities) as numpy."""
    return CircuitFunction(block, **options)(weights, x)
