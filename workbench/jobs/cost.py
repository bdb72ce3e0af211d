"""Cost preview of a training run: circuits and shots per step, per epoch and in total, computed from
the spec and settings alone (nothing is compiled or run), so it can be shown before a hardware run starts.

Per quantum block and sample: one circuit for the forward value; parameter shift and finite differences
add two circuits per circuit angle (and per amplitude-encoded input when the input needs a gradient);
the surrogate adds its perturbed copies; adjoint, backprop and density-matrix gradients add none. Which
method and how many shots a block uses come from the engine's execution plan (`resolve`). Each epoch also evaluates the validation split,
the decision-boundary grid on the epochs that draw it, and the run ends with the test and train splits.

Example:
    cost = estimate(spec, TrainConfig(target="quantinuum", epochs=2), n_train=240, n_test=60)
    print(cost.summary())
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import spec as S
from ..engine.circuits import build_circuit
from ..engine.plan import ExecutionConfig, resolve
from ..engine.targets import get_target


@dataclass(frozen=True)
class CostEstimate:
    circuits_per_step: int  # a full batch
    circuits_per_epoch: int
    circuits_total: int
    shots_per_circuit: int  # 0: exact expectations
    steps_per_epoch: int
    epochs: int

    @property
    def shots_per_epoch(self) -> int:
        return self.circuits_per_epoch * self.shots_per_circuit

    @property
    def shots_total(self) -> int:
        return self.circuits_total * self.shots_per_circuit

    def summary(self) -> str:
        shots = (f", {self.shots_per_circuit} shots each: {self.shots_per_epoch:,} shots per epoch, "
                 f"{self.shots_total:,} in total") if self.shots_per_circuit else ""
        return (f"{self.circuits_per_step:,} circuits per step × {self.steps_per_epoch} steps = "
                f"{self.circuits_per_epoch:,} circuits per epoch, {self.circuits_total:,} for "
                f"{self.epochs} epochs{shots}")


def circuits_per_sample(spec: S.ArchitectureSpec, execution: ExecutionConfig | dict) -> tuple[int, int, int]:
    """(circuits for one training sample's forward+backward, circuits for one evaluation-only sample, shots
    per circuit) under the execution plan of each quantum block."""
    from ..engine.gradients.surrogate import SurrogateOptions

    execution = ExecutionConfig.from_any(execution)
    train = evaluate = shots = 0
    for block, (in_shape, _) in zip(spec.blocks, spec.shapes()):
        if not isinstance(block, S.Quantum):
            continue
        circuit = build_circuit(block, in_shape[0])
        plan = resolve(execution, block, circuit)
        extra = 0
        if plan.gradient in ("parameter_shift", "finite_diff"):
            extra = 2 * len(circuit.rotation_gates) + 2 * (circuit.amplitude_inputs or 0)
        elif plan.gradient == "surrogate":
            extra = SurrogateOptions.from_dict(execution.gradient_options).perturbations
        train += 1 + extra
        evaluate += 1
        shots = max(shots, plan.shots or 0)
    return train, evaluate, shots


def estimate(spec: S.ArchitectureSpec | dict, config, *, n_train: int, n_test: int) -> CostEstimate:
    """Circuits and shots of a run of `config` (a TrainConfig) on a dataset of n_train + n_test samples."""
    spec = S.load_spec(spec)
    train, evaluate, shots = circuits_per_sample(spec, config.execution)
    n_val = int(round(n_train * config.val_fraction)) if n_train > 4 else 0
    fit = n_train - n_val
    steps = max(1, math.ceil(fit / config.batch_size))
    per_epoch = fit * train + n_val * evaluate
    two_d = tuple(spec.input_shape) == (2,) and spec.task == "classification"
    boundaries = 0
    if two_d and config.boundary_every:
        # Every boundary_every-th epoch and the last one (counted, not enumerated: a playground run's epoch
        # count is "until paused", a huge number).
        boundaries = config.epochs // config.boundary_every + (config.epochs % config.boundary_every != 0)
    total = per_epoch * config.epochs + boundaries * config.boundary_resolution ** 2 * evaluate \
        + (n_test + fit) * evaluate
    return CostEstimate(circuits_per_step=min(fit, config.batch_size) * train, circuits_per_epoch=per_epoch,
                        circuits_total=total, shots_per_circuit=int(shots or 0), steps_per_epoch=steps,
                        epochs=config.epochs)


def needs_preview(config) -> bool:
    """Runs on emulated or real hardware cost shots (and, on real hardware, money): preview them first."""
    return is_hardware(config.target)


def is_hardware(target: str) -> bool:
    """An emulated or real QPU (the target table answers without importing CUDA-Q)."""
    return get_target(target).hardware
