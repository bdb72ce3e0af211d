"""The torch statevector engine as an executor: exact values, autograd, shots drawn from exact values."""

from __future__ import annotations

import torch

from ...circuits import Circuit, ReadoutPlan
from ...noise import sample_shots
from ...plan import ExecutionPlan
from ..base import Executor
from .program import StatevectorProgram


class TorchStatevectorExecutor(Executor):
    """Runs a circuit on `StatevectorProgram` in the plan's precision and on its device."""

    def __init__(self, circuit: Circuit, readout_plan: ReadoutPlan, plan: ExecutionPlan):
        super().__init__(circuit, readout_plan, plan)
        self.program = StatevectorProgram(circuit, plan.complex_dtype, self.device)

    @property
    def op_count(self) -> int:
        return len(self.program.ops)

    def set_precision(self, precision: str) -> None:
        dtype = torch.complex128 if precision == "double" else torch.complex64
        if dtype != self.program.dtype:
            self.program = StatevectorProgram(self.circuit, dtype, self.device)

    def sweep_program(self) -> StatevectorProgram:
        return self.program  # its forward cache serves the sweep

    def states(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        self.executions += angles.shape[0]
        with torch.no_grad():
            return self.program.run(angles, init)

    def readout(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        self.plan.check_memory(angles.shape[0], self.op_count)
        self.executions += angles.shape[0]
        values = self.program.readout(self.program.run(angles, init), self.readout_plan)
        if self.plan.shots:
            values = sample_shots(values.detach(), self.readout_plan, self.plan.shots)
        return values
