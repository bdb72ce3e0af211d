"""The executor interface every target implements, shared by the torch engines and CUDA-Q.

An executor runs one circuit's readout on one target. Gradient methods only use this interface:

- `readout(angles, init)`: readout values (batch, width) on the executor's device (the layer's); finite-shot
  estimates when the plan has shots; differentiable by torch autograd when the target declares `autograd` and
  there are no shots.
- `states(angles, init)`: exact final state vectors (batch, 2**n), for targets with `exact_states`
  (`phase_known` says whether they carry the true global phase).
- `sweep_program()`: the torch statevector program the adjoint reverse sweep runs on.
- `executions`: circuits run so far (forward and gradient evaluations).

Adding an executor is one module here with a subclass of `Executor`, plus one entry in
`workbench.engine.targets`.
"""

from __future__ import annotations

import torch

from ..circuits import Circuit, ReadoutPlan
from ..noise import NoiseModel
from ..plan import ExecutionPlan


class Executor:
    """Base class: holds the circuit, its readout plan and the execution plan.

    Args:
        circuit: the circuit IR to run.
        readout_plan: what a run returns (estimator terms or sampler probabilities, shots).
        plan: the resolved execution plan (target, precision, noise, shots, gradient).

    Shape: angles (batch, n_rotations) real; init (batch, 2**n) real or None; readout (batch, width).
    """

    #: CUDA-Q compiles kernels on first use; the layer runs one small batch at build time when True.
    warm_up: bool = False
    #: `states()` carry the circuit's true global phase (a state read back from a density matrix does not).
    phase_known: bool = True

    def __init__(self, circuit: Circuit, readout_plan: ReadoutPlan, plan: ExecutionPlan):
        self.circuit = circuit
        self.readout_plan = readout_plan
        self.plan = plan
        self.device = torch.device(plan.config.device)
        self.executions = 0
        self._sweep = None

    @property
    def noise(self) -> NoiseModel | None:
        return self.plan.noise

    @property
    def op_count(self) -> int | None:
        """Lowered ops of a torch program (sizes the backprop memory estimate); None: the gate count."""
        return None

    def readout(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def states(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError(f"target {self.plan.target.name!r} does not give exact states")

    def sweep_program(self):
        """A torch statevector program of the circuit in complex128, built on first use."""
        if self._sweep is None:
            from .statevector.program import StatevectorProgram

            self._sweep = StatevectorProgram(self.circuit, torch.complex128, self.device)
        return self._sweep

    def set_precision(self, precision: str) -> None:
        """Follow a layer's dtype change (model.double()); simulators with a fixed dtype ignore it."""

    def describe(self) -> str:
        return f"{type(self).__name__} on {self.plan.target.name}"
