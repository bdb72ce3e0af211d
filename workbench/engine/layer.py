"""QuantumLayer: a torch module over one quantum block's circuit, on any target, with any gradient method.

Use it inside your own torch code, like PennyLane's TorchLayer:

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pre = nn.Linear(8, 4)
            self.quantum = workbench.QuantumLayer(qubits=4, encoding="angle", depth=2, target="torch")
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.quantum(torch.tanh(self.pre(x))))

The block fields (qubits, encoding, ansatz, depth, readout, ...) are those of the spec's quantum block
and are validated the same way; the execution options are those of `ExecutionConfig`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .block import Quantum, check_quantum, quantum_block
from .circuits import Circuit, ReadoutPlan, WeightSlot, build_circuit, readout_plan, weight_layout
from .executors.base import Executor
from .gradients import GradientChoice, GradientMethod, method_class
from .noise import NoiseModel, apply_readout_error
from .plan import ExecutionConfig, ExecutionPlan, ResourceError, default_features, resolve

__all__ = ["QuantumLayer", "ResourceError"]

_CONFIG_FIELDS = ("target", "gradient", "device", "precision", "shots", "noise", "emulate", "target_options")


class QuantumLayer(nn.Module):
    """A quantum block as a torch module: (batch, features) in, (batch, readout width) out.

    Args:
        block: a validated `Quantum` block; or leave it out and give the block's fields as keywords
            (qubits=4, encoding="angle", ansatz="hardware_efficient", depth=2, readout={...}, ...).
        n_features: input features per sample; by default what the encoding takes (amplitude: 2**qubits).
        config: an ExecutionConfig; or give its fields as keywords (target, gradient, device, precision,
            shots, noise, emulate, target_options).
        initial_weights: the starting weight vector (length `n_weights`); default uniform in [-π/4, π/4].
        generator: the torch.Generator that draws the starting weights (default: torch's global one).

    Shape: input (batch, n_features) → output (batch, width); float64 in double precision.

    Example:
        >>> layer = QuantumLayer(qubits=2, depth=1, target="torch")
        >>> layer(torch.zeros(3, 2)).shape
        torch.Size([3, 2])
    """

    def __init__(self, block: Quantum | None = None, n_features: int | None = None, *,
                 config: ExecutionConfig | dict | None = None, initial_weights: Any = None,
                 generator: torch.Generator | None = None, **options: Any):
        super().__init__()
        execution = {k: options.pop(k) for k in _CONFIG_FIELDS if k in options}
        if block is None:
            block = quantum_block(**options)
            options = {}
        if options:
            raise TypeError(f"QuantumLayer got block fields {sorted(options)} next to a block: give one or the other")
        if n_features is None:
            n_features = default_features(block)
            check_quantum(block, (n_features,), None, is_last=True)
        self.block = block
        self.config = ExecutionConfig.from_any(config, **execution)
        self.circuit: Circuit = build_circuit(block, n_features)
        self.n_features = n_features
        self.execution: ExecutionPlan = resolve(self.config, block, self.circuit)
        self.execution.check()
        self.execution.check_memory(batch=1)  # refuse a circuit that cannot fit before building anything of its size
        self.device_ = torch.device(self.config.device)
        self.precision = self.config.precision
        self.plan: ReadoutPlan = readout_plan(block, self.execution.shots)  # what a run returns
        self.executor: Executor = self.execution.target.executor_class()(self.circuit, self.plan, self.execution)
        self.method: GradientMethod = method_class(self.execution.gradient)(self.executor)
        real = torch.float64 if self.precision == "double" else torch.float32
        # Tracks the layer's floating dtype through model.double() / .float() / .to(dtype).
        self.register_buffer("_dtype_probe", torch.zeros(0, dtype=real), persistent=False)
        self._init_weights(initial_weights, generator, real)
        if self.plan.coefficients is not None:
            # float64: the coefficients must not round the energy of a double-precision layer. They come
            # from the spec, so they stay out of the state dict (weights load across readouts).
            self.register_buffer("coefficients", torch.tensor(self.plan.coefficients, dtype=torch.float64,
                                                              device=self.device_), persistent=False)
        else:
            self.coefficients = None
        if self.executor.warm_up:
            self._warm()

    def _init_weights(self, initial: Any, generator: torch.Generator | None, dtype: torch.dtype) -> None:
        count = self.circuit.n_weights
        if not count:
            if initial is not None and torch.as_tensor(initial).numel():
                raise ValueError(f"block {self.block.id} has no trainable weights, but initial_weights were given")
            self.register_parameter("weight", None)
            return
        if initial is not None:
            values = torch.as_tensor(initial, dtype=dtype).reshape(-1).clone()
            if values.numel() != count:
                raise ValueError(f"block {self.block.id}: initial_weights has {values.numel()} values but the circuit "
                                 f"has {count} weights (see layer.weight_table())")
        else:
            # Small angles start near the identity, away from the flat regions of random circuits.
            values = torch.empty(count, dtype=dtype).uniform_(-math.pi / 4, math.pi / 4, generator=generator)
        self.weight = nn.Parameter(values.to(self.device_))

    # -- torch conventions ----------------------------------------------------------------------
    def _apply(self, fn, recurse: bool = True):
        result = super()._apply(fn, recurse)
        precision = "double" if self._dtype_probe.dtype == torch.float64 else "single"
        if precision != self.precision:
            # model.double() / .to(torch.float64): the simulation follows to complex128 (and back).
            self.precision = precision
            self.config = self.config.replace(precision=precision)
            self.execution = resolve(self.config, self.block, self.circuit)
            self.executor.plan = self.execution
            self.executor.set_precision(precision)
        return result

    # -- execution ------------------------------------------------------------------------------
    def _warm(self) -> None:
        """Compile the kernel variants used in training now (CUDA-Q), not in the first step."""
        features = self.circuit.amplitude_inputs or self.circuit.n_inputs
        x = torch.full((1, max(features, 1)), 0.1, device=self.device_)
        with torch.no_grad():
            angles = self.circuit.angles(x, self._weights())
            init = self.circuit.initial_state(x, torch.float64)
            self.method.forward(angles, init)
        self.executor.executions = 0

    def _weights(self) -> torch.Tensor:
        return self.weight if self.weight is not None else torch.zeros(0, device=self.device_)

    def memory_estimate(self, batch: int) -> int:
        """Bytes of simulation working set for a batch (see ExecutionPlan.memory_estimate)."""
        return self.execution.memory_estimate(batch, self.executor.op_count)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"block {self.block.id}: expects (batch, features) input, got shape {tuple(x.shape)}")
        # Every method, before the executor allocates the batch's states.
        self.execution.check_memory(x.shape[0], self.executor.op_count)
        real = torch.float64 if self.precision == "double" else torch.float32
        x = x.to(self.device_)
        angles = self.circuit.angles(x.to(real), self._weights().to(real))
        init = self.circuit.initial_state(x.to(real), real)
        values = self.method(angles, init)
        values = apply_readout_error(values, self.plan, self.execution.noise)
        if self.coefficients is not None:
            values = values @ self.coefficients.to(values.dtype).unsqueeze(1)
        out_dtype = real if self.precision == "double" or not x.is_floating_point() else x.dtype
        return values.to(out_dtype)

    # -- description ----------------------------------------------------------------------------
    @property
    def target(self) -> str:
        return self.execution.target.name

    @property
    def noise(self) -> NoiseModel | None:
        return self.execution.noise

    @property
    def shots(self) -> int | None:
        return self.execution.shots

    @property
    def choice(self) -> GradientChoice:
        """The gradient method in use and why it was chosen."""
        return GradientChoice(self.execution.gradient, self.execution.gradient_reason)

    @property
    def gradient_method(self) -> str:
        return self.execution.gradient

    @property
    def gradient_reason(self) -> str:
        return self.execution.gradient_reason

    @property
    def n_weights(self) -> int:
        return self.circuit.n_weights

    def gradient_report(self) -> dict:
        """Per-step accounting of the gradient method since the last call (surrogate: circuits, shots, fit)."""
        return self.method.report()

    @property
    def circuit_executions(self) -> int:
        """Circuits run so far (forward and gradient evaluations), for the metric stream."""
        return self.executor.executions

    def weight_layout(self) -> list[WeightSlot]:
        """For every weight index: the rotation gate, qubit and ansatz layer it drives."""
        return weight_layout(self.circuit, self.block)

    def weight_table(self) -> str:
        """The weight layout as a text table (index, gate, qubit, layer)."""
        rows = [f"{'index':>5}  {'gate':<4}  {'qubit':>5}  {'layer':>5}"]
        rows += [f"{s.index:>5}  {s.gate:<4}  {s.qubit:>5}  {s.layer:>5}" for s in self.weight_layout()]
        return "\n".join(rows)

    def describe(self) -> str:
        """The execution plan of this layer (target, gradient and why, memory, hints)."""
        return self.execution.describe()

    def extra_repr(self) -> str:
        return (f"qubits={self.block.qubits}, target={self.target}, gradient={self.gradient_method}, "
                f"readout={self.plan.mode}, outputs={self.plan.width}")

