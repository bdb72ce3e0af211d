"""QuantumLayer: a torch module over one quantum block's circuit, on any executor, with any gradient method."""

from __future__ import annotations

import math
import psutil
import torch
from torch import nn

from .circuits import Circuit, ReadoutPlan, build_circuit, readout_plan
from .densitymatrix import DensityMatrixProgram
from .gradients import GradientChoice, Runner, choose_gradient
from .noise import NoiseModel, apply_readout_error
from .spec import Quantum
from .statevector import StatevectorProgram

TORCH_ENGINES = ("torch", "torch-density")


class ResourceError(MemoryError):
    """A circuit or batch whose simulation would not fit in memory."""


def state_bytes(n_qubits: int, *, density: bool, precision: str) -> int:
    itemsize = 16 if precision == "double" else 8
    return (4**n_qubits if density else 2**n_qubits) * itemsize


# Working sets below this skip the free-memory query in every forward.
SMALL_WORKING_SET = 64 * 2**20


def available_memory(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


class QuantumLayer(nn.Module):
    def __init__(self, block: Quantum, n_features: int, *, target: str = "torch", gradient: str = "auto",
                 device: str | torch.device = "cpu", noise: NoiseModel | None = None, shots: int | None = None,
                 precision: str = "single", target_options: dict | None = None, emulate: bool = True,
                 gradient_options: dict | None = None):
        super().__init__()
        self.block = block
        self.target = target
        self.device_ = torch.device(device)
        if self.device_.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"block {block.id}: device 'cuda' was requested but torch sees no GPU: use device='cpu'")
        self.precision = precision
        self.noise = noise
        self.circuit: Circuit = build_circuit(block, n_features)
        plan = readout_plan(block)
        self.shots = shots if shots is not None else plan.shots
        self.plan: ReadoutPlan = ReadoutPlan(plan.mode, plan.paulis, plan.coefficients, plan.marginal, self.shots)
        self.density = bool(noise and noise.gate_noise())
        self.torch_executions = 0
        self.program: StatevectorProgram | None = None
        self._simulated_density = self.density  # the executor's state is a density matrix (memory estimate)
        self._simulated_precision = precision

        hardware = False
        config = None
        if target in TORCH_ENGINES:
            if self.density and target == "torch":
                raise ValueError("gate noise needs a density-matrix engine: use target='torch-density' "
                                 "(or CUDA-Q's 'density-matrix-cpu')")
        else:
            from ._cudaq import TargetConfig, check_target

            options = tuple(sorted((target_options or {}).items()))
            config = TargetConfig(target, emulate=emulate, options=options)
            check_target(config)  # before anything selects it: tensornet without a GPU aborts the process
            hardware = config.is_hardware
            self._simulated_density = self.density or config.is_density_matrix
            self._simulated_precision = "double"  # CUDA-Q's CPU simulators are complex128
            if hardware and not self.shots:
                self.shots = 1000
                self.plan = ReadoutPlan(plan.mode, plan.paulis, plan.coefficients, plan.marginal, self.shots)
        self.choice: GradientChoice = choose_gradient(gradient, engine=target, shots=self.shots, hardware=hardware,
                                                      noisy=self.density,
                                                      n_angles=len(self.circuit.rotation_gates))
        # Refuse a circuit that cannot fit before building anything of its size.
        self._check_memory(batch=1)
        self.executor = None
        if config is not None:
            from .cudaq_backend import CudaqExecutor

            self.executor = CudaqExecutor(self.circuit, config, noise)
        complex_dtype = torch.complex128 if precision == "double" else torch.complex64
        self.program = StatevectorProgram(self.circuit, complex_dtype, self.device_)
        self.dm_program = DensityMatrixProgram(self.circuit, noise, torch.complex128, self.device_) \
            if self.density else None
        self.runner = Runner(self._evaluate, self.choice.method, plan=self.plan,
                             init_features=self.circuit.amplitude_inputs, states=self._states,
                             program=self.program, dm_program=self.dm_program,
                             surrogate=self._surrogate(gradient_options))
        if self.circuit.n_weights:
            # Small angles start near the identity, away from the flat regions of random circuits.
            # Double precision keeps its weights in float64 too, so gradients are not rounded to float32.
            weight_dtype = torch.float64 if precision == "double" else torch.float32
            self.weight = nn.Parameter(torch.empty(self.circuit.n_weights, device=self.device_, dtype=weight_dtype)
                                       .uniform_(-math.pi / 4, math.pi / 4))
        else:
            self.register_parameter("weight", None)
        if plan.coefficients is not None:
            # float64: the coefficients must not round the energy of a double-precision layer. They come
            # from the spec, so they stay out of the state dict (weights load across readouts).
            self.register_buffer("coefficients", torch.tensor(plan.coefficients, dtype=torch.float64,
                                                              device=self.device_), persistent=False)
        else:
            self.coefficients = None
        if self.executor is not None:
            self._warm()

    def _surrogate(self, options: dict | None):
        """Issue 14: the surrogate gradient (with an exact reference for its cosine metric when affordable)."""
        if self.choice.method != "surrogate":
            if options:
                raise ValueError(f"gradient_options {sorted(options)} are for gradient='surrogate', "
                                 f"not {self.choice.method!r}")
            return None
        from .surrogate import SurrogateGradient, SurrogateOptions, exact_vjp

        settings = SurrogateOptions.from_dict(options)
        affordable = not self.density and self.block.qubits <= settings.reference_max_qubits
        return SurrogateGradient(self._evaluate, self.plan, n_angles=len(self.circuit.rotation_gates),
                                 init_features=self.circuit.amplitude_inputs, options=settings,
                                 reference=exact_vjp(self.program, self.plan) if affordable else None)

    def gradient_report(self) -> dict:
        """Per-step accounting of the gradient method since the last call (surrogate only; else empty)."""
        return self.runner.surrogate.report() if self.runner.surrogate is not None else {}

    # -- execution ------------------------------------------------------------------------------
    def _warm(self) -> None:
        """Compile the CUDA-Q kernel variants used in training now, not in the first step."""
        features = self.circuit.n_inputs if not self.circuit.amplitude_inputs else self.circuit.amplitude_inputs
        x = torch.full((1, max(features, 1)), 0.1, device=self.device_)
        with torch.no_grad():
            angles = self.circuit.angles(x, self._weights())
            init = self.circuit.initial_state(x, torch.float64)
            if self.choice.method == "adjoint":
                self.executor.statevectors(angles, init)
            else:
                self.executor.readout(angles, init, self.plan, self.shots)
        self.executor.executions = 0

    def _weights(self) -> torch.Tensor:
        return self.weight if self.weight is not None else torch.zeros(0, device=self.device_)

    def _states(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        if self.executor is not None:
            return self.executor.statevectors(angles, init)
        self.torch_executions += angles.shape[0]
        with torch.no_grad():
            return self.program.run(angles, init)

    def _evaluate(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        self._check_memory(batch=angles.shape[0])
        if self.executor is not None:
            return self.executor.readout(angles, init, self.plan, self.shots).to(self.device_)
        self.torch_executions += angles.shape[0]
        if self.density:
            values = self.dm_program.readout(self.dm_program.run(angles, init), self.plan)
        else:
            values = self.program.readout(self.program.run(angles, init), self.plan)
        if self.shots:
            values = _sample_shots(values.detach() if self.choice.method != "backprop" else values, self.plan,
                                   self.shots)
        return values

    def _check_memory(self, batch: int) -> None:
        need = self.memory_estimate(batch)
        if need < SMALL_WORKING_SET:  # asking the OS costs ~0.3 ms per step; no machine lacks this much
            return
        have = available_memory(self.device_)
        if need > 0.8 * have:
            raise ResourceError(
                f"block {self.block.id}: simulating {self.block.qubits} qubits for a batch of {batch} needs about "
                f"{need / 2**30:.2f} GiB but only {have / 2**30:.2f} GiB is free on {self.device_}: use fewer qubits, "
                "a smaller batch, single precision, or a GPU target")

    def memory_estimate(self, batch: int) -> int:
        """Bytes of simulation working set: a few states (adjoint keeps 2 and temporaries), more for backprop."""
        per_state = state_bytes(self.block.qubits, density=self._simulated_density,
                                precision=self._simulated_precision)
        # Backprop keeps one state per op for autograd; before lowering, the gate count bounds the op count.
        ops = len(self.program.ops) if self.program is not None else len(self.circuit.gates)
        copies = 2 + ops if self.choice.method == "backprop" else 4
        return per_state * batch * copies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"block {self.block.id}: expects (batch, features) input, got shape {tuple(x.shape)}")
        self._check_memory(batch=x.shape[0])  # every method, before the executor allocates the batch's states
        real = torch.float64 if self.precision == "double" else torch.float32
        x = x.to(self.device_)
        angles = self.circuit.angles(x.to(real), self._weights().to(real))
        init = self.circuit.initial_state(x.to(real), real)
        values = self.runner(angles, init)
        values = apply_readout_error(values, self.plan, self.noise)
        if self.coefficients is not None:
            values = values @ self.coefficients.to(values.dtype).unsqueeze(1)
        return values.to(x.dtype)

    @property
    def gradient_method(self) -> str:
        return self.choice.method

    @property
    def circuit_executions(self) -> int:
        """Circuits run so far (forward and gradient evaluations), for the metric stream."""
        return self.executor.executions if self.executor is not None else self.torch_executions

    def extra_repr(self) -> str:
        return (f"qubits={self.block.qubits}, target={self.target}, gradient={self.choice.method}, "
                f"readout={self.plan.mode}, outputs={self.plan.width}")


def _sample_shots(values: torch.Tensor, plan: ReadoutPlan, shots: int) -> torch.Tensor:
    """Finite-shot estimates from exact values: ±1 outcomes per Pauli term, multinomial counts per bitstring."""
    if plan.mode == "estimator":
        p_plus = ((1 + values) / 2).clamp(0, 1)
        return 2 * torch.binomial(torch.full_like(p_plus, float(shots)), p_plus) / shots - 1
    counts = torch.stack([torch.bincount(torch.multinomial(row.clamp_min(0), shots, replacement=True),
                                         minlength=values.shape[1]) for row in values])
    return counts.to(values.dtype) / shots
