"""One execution plan for every quantum layer.

`ExecutionConfig` is what a user chooses (target, gradient, device, precision, shots, noise, emulate,
target options); `resolve(config, block)` turns it, for one quantum block, into an `ExecutionPlan`:
which target really runs (the torch engine runs as torch-density under gate noise), the effective
shots (hardware measures 1000 when none are given), whether the state is a density matrix, the
gradient method with the reason it was chosen, the memory estimate, hints and the problems that stop
it. `compile`, `CircuitFunction`, `QuantumLayer`, training, the GUI and the bench suites all read the
plan instead of re-deriving these rules.

Example:
    >>> from workbench.engine.block import quantum_block
    >>> plan = resolve(ExecutionConfig(target="qpp-cpu", shots=100), quantum_block(qubits=4))
    >>> plan.gradient, plan.density, plan.problems
    ('parameter_shift', False, [])
"""

from __future__ import annotations

from .errors import WorkbenchError

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import psutil
import torch

from .block import Quantum, encoding_features
from .circuits import Circuit, build_circuit
from .gradients import GradientContext, GradientError, canonical_name, choose, method_class
from .noise import NoiseModel
from .targets import Target, TargetError, get_target

PRECISIONS = ("single", "double")
HARDWARE_DEFAULT_SHOTS = 1000
CUDAQ_AMPLITUDE_LIMIT = 10  # cudaq 0.16 initialises a state from a list up to this many qubits
# Measured on this project's 2-core CPU machine (adjoint training step, batch 32, CPU time; issue 9's notes):
# CUDA-Q's qpp-cpu took about 8x the torch engine's time at 4 qubits, 10x at 8 and 80x at 12.
CUDAQ_CPU_SLOW_FROM = 8


# Working sets below this skip the free-memory query in every forward.
SMALL_WORKING_SET = 64 * 2**20


class ResourceError(WorkbenchError, MemoryError):
    """A circuit or batch whose simulation would not fit in memory."""


@dataclass(frozen=True)
class ExecutionConfig:
    """How quantum layers run: the options of `compile`, `QuantumLayer`, `CircuitFunction` and training.

    Args:
        target: 'torch', 'torch-density' or a CUDA-Q target from `workbench.engine.targets.TARGETS`.
        gradient: 'auto' or a registered method (aliases such as 'parameter-shift' are accepted).
        device: torch device of the torch engines and of the layer's tensors.
        precision: 'single' (complex64) or 'double' (complex128) for the torch statevector engine.
        shots: finite shots per circuit, None for exact values.
        noise: a NoiseModel or its dict form ({'depolarizing': 0.01, ...}); None for none.
        emulate: hardware targets run in CUDA-Q's local emulation (never contacts a QPU when True).
        target_options: extra options of the CUDA-Q target, e.g. {'mapping_file': 'iqm.txt'} for iqm.
        gradient_options: settings of the gradient method, e.g. {'refit_steps': 30} for 'surrogate'.
    """

    target: str = "torch"
    gradient: str = "auto"
    device: str = "cpu"
    precision: str = "single"
    shots: int | None = None
    noise: NoiseModel | None = None
    emulate: bool = True
    target_options: dict[str, str] = field(default_factory=dict)
    gradient_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: use 'single' (complex64) or 'double' (complex128)")
        if self.shots is not None:
            if isinstance(self.shots, bool) or int(self.shots) != self.shots or self.shots < 1:
                raise ValueError(f"shots={self.shots!r}: use a positive whole number, or None for exact values")
            set_("shots", int(self.shots))
        set_("noise", NoiseModel.from_any(self.noise))
        set_("gradient", canonical_name(self.gradient))
        set_("device", str(torch.device(self.device)))
        set_("target_options", {str(k): str(v) for k, v in dict(self.target_options or {}).items()})
        set_("emulate", bool(self.emulate))
        set_("gradient_options", dict(self.gradient_options or {}))

    @classmethod
    def from_any(cls, value: "ExecutionConfig | dict | None" = None, **overrides: Any) -> "ExecutionConfig":
        """A config from a config, a dict (e.g. a saved model's settings) or keyword arguments."""
        base = dataclasses.asdict(value) if isinstance(value, ExecutionConfig) else dict(value or {})
        if isinstance(value, ExecutionConfig):
            base["noise"] = value.noise
        base.update(overrides)
        unknown = set(base) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown execution option(s) {sorted(unknown)}: use "
                             f"{', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls(**base)

    def replace(self, **changes: Any) -> "ExecutionConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (noise as its dict of non-zero channels)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["noise"] = self.noise.to_dict() if self.noise else None
        data["target_options"] = dict(self.target_options)
        data["gradient_options"] = dict(self.gradient_options)
        return data


@dataclass(frozen=True)
class Problem:
    """Something that stops a plan from running: the error it raises and its message (with a fix)."""

    error: type[Exception]
    message: str


@dataclass
class ExecutionPlan:
    """How one quantum block runs. Built by `resolve`; read by the layer, the GUI and the bench suites."""

    config: ExecutionConfig
    block: Quantum
    target: Target
    shots: int | None
    noise: NoiseModel | None
    noisy: bool  # gate noise (a density matrix is needed)
    gradient: str
    gradient_reason: str
    gate_count: int
    problems: list[Problem] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    @property
    def density(self) -> bool:
        """The simulated state is a density matrix (4**n entries)."""
        return self.target.density_matrix

    @property
    def precision(self) -> str:
        """The precision the simulator really computes in."""
        if self.target.dtype == "precision":
            return self.config.precision
        return "double" if self.target.dtype == "complex128" else "single"

    @property
    def complex_dtype(self) -> torch.dtype:
        return torch.complex128 if self.precision == "double" else torch.complex64

    @property
    def state_bytes(self) -> int:
        return state_bytes(self.block.qubits, density=self.density, precision=self.precision)

    def memory_estimate(self, batch: int, ops: int | None = None) -> int:
        """Bytes of simulation working set: a few states (adjoint keeps 2 and temporaries), more for backprop.

        Backprop keeps one state per op for autograd; `ops` is the lowered op count when known, else the
        gate count bounds it.
        """
        copies = 2 + (self.gate_count if ops is None else ops) if self.gradient == "backprop" else 4
        return self.state_bytes * batch * copies

    def check_memory(self, batch: int, ops: int | None = None) -> None:
        """ResourceError when the batch's simulation would not fit in the free memory of the device."""
        need = self.memory_estimate(batch, ops)
        if need < SMALL_WORKING_SET:  # asking the OS costs ~0.3 ms per step; no machine lacks this much
            return
        device = torch.device(self.config.device)
        have = available_memory(device)
        if need > 0.8 * have:
            raise ResourceError(
                f"block {self.block.id}: simulating {self.block.qubits} qubits for a batch of {batch} needs about "
                f"{need / 2**30:.2f} GiB but only {have / 2**30:.2f} GiB is free on {device}: use fewer qubits, "
                "a smaller batch, single precision, or a GPU target")

    def check(self) -> None:
        """Raise the first problem (each names what is wrong and how to fix it)."""
        if self.problems:
            problem = self.problems[0]
            raise problem.error(problem.message)

    def check_runs_here(self) -> None:
        """`check()`, then whether this machine can run the target: a GPU target needs a GPU here. (A job sent to a
        cluster is checked where it runs, by its executor.)"""
        self.check()
        if self.target.needs_gpu:
            from .executors.cudaq_runtime import check_target, target_config

            check_target(target_config(self))

    def describe(self) -> str:
        """One paragraph: target, gradient and why, shots, memory per sample, hints and problems."""
        lines = [f"target {self.target.name} ({self.target.label}); gradient {self.gradient}: {self.gradient_reason}",
                 f"shots: {self.shots or 'exact'}; state: {'density matrix' if self.density else 'statevector'}, "
                 f"{human_bytes(self.state_bytes)} per sample ({self.precision} precision)"]
        lines += [f"hint: {hint}" for hint in self.hints]
        lines += [f"problem: {p.message}" for p in self.problems]
        return "\n".join(lines)


def with_noise_engine(config: ExecutionConfig) -> ExecutionConfig:
    """The torch statevector engine cannot apply gate noise; its density-matrix twin can (compile and
    CircuitFunction switch to it; a QuantumLayer built directly reports the mismatch instead)."""
    if config.target == "torch" and config.noise is not None and config.noise.gate_noise():
        return config.replace(target="torch-density")
    return config


def state_bytes(n_qubits: int, *, density: bool, precision: str) -> int:
    itemsize = 16 if precision == "double" else 8
    return (4**n_qubits if density else 2**n_qubits) * itemsize


def available_memory(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def human_bytes(n: float | None) -> str:
    """512 → '512 B', 1536 → '1.5 KiB'; None → '-'."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def default_features(block: Quantum) -> int:
    """The feature count a block takes when nothing feeds it a different one (amplitude: 2**qubits)."""
    features = encoding_features(block)
    if block.encoding == "amplitude":
        return 2**block.qubits
    if block.ansatz == "custom" and block.encoding == "none" and block.role != "parameter_input":
        inputs = [g.index for g in block.gates or [] if g.source == "input" and g.index is not None]
        return max(inputs) + 1 if inputs else 0
    return int(features or 0)


def resolve(config: ExecutionConfig | dict | None, block: Quantum, circuit: Circuit | None = None) -> ExecutionPlan:
    """The execution plan of `block` under `config`; problems are collected, not raised (see `plan.check()`).

    Args:
        config: the user's choices (an ExecutionConfig, its dict form, or None for the defaults).
        block: a validated quantum block.
        circuit: the block's circuit when already built (its gate count sizes the backprop estimate).
    """
    config = ExecutionConfig.from_any(config)
    problems: list[Problem] = []
    hints: list[str] = []
    noisy = bool(config.noise and config.noise.gate_noise())
    try:
        target = get_target(config.target)
    except TargetError as err:
        target = get_target("torch")
        problems.append(Problem(TargetError, str(err)))
    shots = config.shots if config.shots is not None else block.readout.shots
    if target.hardware and not shots:
        shots = HARDWARE_DEFAULT_SHOTS
    for option in target.needs:
        if not config.target_options.get(option):
            problems.append(Problem(TargetError, f"target {target.name!r} needs a qubit mapping: pass "
                                                 f"target_options={{'{option}': PATH}} (a text file naming the device's "
                                                 "couplings, one 'i --> {j, k}' line per qubit)"))
    if noisy and not target.density_matrix:
        problems.append(Problem(ValueError, f"gate noise needs a density-matrix target, but target is {target.name!r}:"
                                            " use target='torch-density' (torch engine) or 'density-matrix-cpu' "
                                            "(CUDA-Q)"))
    if torch.device(config.device).type == "cuda" and not torch.cuda.is_available():
        problems.append(Problem(ValueError, f"block {block.id}: device 'cuda' was requested but torch sees no GPU: "
                                            "use device='cpu'"))
    if target.is_cudaq and block.encoding == "amplitude" and block.qubits > CUDAQ_AMPLITUDE_LIMIT:
        problems.append(Problem(ValueError, f"amplitude encoding on CUDA-Q initialises the state from a list, which "
                                            f"cudaq 0.16 allows up to {CUDAQ_AMPLITUDE_LIMIT} qubits, not "
                                            f"{block.qubits}: use target='torch', fewer qubits or another encoding"))
    if circuit is None:
        circuit = build_circuit(block, default_features(block))
    context = GradientContext(target=target, shots=shots, noisy=noisy, n_angles=len(circuit.rotation_gates))
    method = None
    try:
        choice = choose(config.gradient, context)
        method, reason = choice.method, choice.reason
        method_class(method).check_options(config.gradient_options)
    except GradientError as err:
        method, reason = (config.gradient if method is None else method), str(err)
        problems.append(Problem(type(err), str(err)))
    if target.family == "cpu" and target.exact_states and block.qubits >= CUDAQ_CPU_SLOW_FROM and not noisy:
        hint = (f"the torch engine (target='torch') computes the same values for this {block.qubits}-qubit circuit "
                "10-100x faster than CUDA-Q's CPU simulator (measured 10x at 8 qubits, 80x at 12: "
                "`workbench bench engine`)")
        hints.append(hint)
        if config.gradient == "auto":
            reason = f"{reason}; {hint}"
    return ExecutionPlan(config=config, block=block, target=target, shots=shots, noise=config.noise, noisy=noisy,
                         gradient=method, gradient_reason=reason, gate_count=len(circuit.gates), problems=problems,
                         hints=hints)
