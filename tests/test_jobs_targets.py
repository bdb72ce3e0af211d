"""CUDA-Q's multi-GPU targets through the execution plan: nvidia-mqpu's per-QPU asynchronous path computes
the same values as the batched one (checked on qpp-cpu's one QPU), and without GPUs both targets are
refused with what to do instead (this machine has no GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.engine.circuits import build_circuit, readout_plan
from workbench.engine.executors.cudaq import CudaqExecutor, pauli_operator
from workbench.engine.executors.cudaq_runtime import call, gpu_count
from workbench.engine.plan import ExecutionConfig, resolve
from workbench.spec import load_spec

SPEC = {"name": "mq", "task": "regression", "input_shape": [3], "blocks": [
    {"id": "q", "type": "quantum", "role": "output", "qubits": 3, "encoding": "angle", "ansatz": "hardware_efficient",
     "depth": 2, "entanglement": "ring", "rotations": ["ry", "rz"],
     "readout": {"mode": "estimator", "observables": ["ZII", "IZI", "XXI", "ZII"]}}]}


def test_the_per_qpu_async_path_matches_the_batched_observe():
    block = load_spec(SPEC).blocks[0]
    circuit = build_circuit(block, 3)
    plan = readout_plan(block)
    executor = CudaqExecutor(circuit, plan, resolve(ExecutionConfig(target="qpp-cpu"), block, circuit))
    angles = torch.rand(5, len(executor.circuit.rotation_gates), dtype=torch.float64) * 3
    batched = executor.readout(angles, None).numpy()
    paulis = tuple(plan.paulis)

    def spread(cudaq):
        operators = [pauli_operator(cudaq, p) for p in paulis]
        return executor._spread_over_qpus(cudaq, paulis, operators, executor._args(angles, None), {}, None)

    spread_values = call(executor.target, spread)
    assert np.allclose(spread_values, batched, atol=1e-12)
    assert np.allclose(spread_values[:, 0], spread_values[:, 3])  # a repeated term is read twice, not doubled


@pytest.mark.skipif(gpu_count() > 0, reason="checks the messages of a machine without GPUs")
@pytest.mark.parametrize("target, needs", [("nvidia-mqpu", "needs an NVIDIA GPU"), ("nvidia-mgpu", "mpirun -np 2")])
def test_multi_gpu_targets_without_gpus_say_what_to_do(target, needs):
    with pytest.raises(Exception, match="qpp-cpu") as caught:
        wb.compile(load_spec(SPEC), target=target)
    assert needs in str(caught.value)
