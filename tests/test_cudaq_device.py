"""CUDA-Q states reach torch without a host copy on GPU targets: which path each target takes, the CUDA array
interface offered for a GPU-resident state, and the executor's wiring (checked on qpp-cpu, this machine has no
GPU; `python -m workbench.bench.gpu_check` verifies the GPU path itself on a GPU machine)."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch

from workbench.engine.circuits import build_circuit, readout_plan
from workbench.engine.executors import cudaq as cudaq_executor
from workbench.engine.executors.cudaq import CudaqExecutor
from workbench.engine.executors.cudaq_device import _StateView, hands_off_on_device
from workbench.engine.executors.cudaq_runtime import call
from workbench.engine.plan import ExecutionConfig, resolve
from workbench.engine.targets import TARGETS
from workbench.spec import load_spec

SPEC = {"name": "dev", "task": "regression", "input_shape": [3], "blocks": [
    {"id": "q", "type": "quantum", "role": "output", "qubits": 3, "depth": 2, "readout": {"mode": "estimator"}}]}


def qpp_executor() -> CudaqExecutor:
    block = load_spec(SPEC).blocks[0]
    circuit = build_circuit(block, 3)
    return CudaqExecutor(circuit, readout_plan(block), resolve(ExecutionConfig(target="qpp-cpu"), block, circuit))


@pytest.mark.parametrize("name", [t for t in TARGETS if TARGETS[t].is_cudaq])
def test_gpu_targets_hand_states_over_on_the_device_and_cpu_targets_through_the_host(name):
    target = TARGETS[name]
    assert hands_off_on_device(target.needs_gpu, "cuda:0") is target.needs_gpu
    assert hands_off_on_device(target.needs_gpu, "cpu") is False  # a layer on the CPU needs host memory anyway


class _FakeTensor:
    def __init__(self, itemsize: int, extents: list[int]):
        self.extents, self._itemsize = extents, itemsize

    def data(self) -> int:
        return 0x7F00_0000_1000

    def get_element_size(self) -> int:
        return self._itemsize


class _FakeGpuState:
    """What cudaq 0.16 shows of a state on the nvidia targets: is_on_gpu() and one rank-1 device tensor."""

    def __init__(self, itemsize: int = 16, extents: list[int] | None = None):
        self.tensors = [_FakeTensor(itemsize, extents or [8])]

    def is_on_gpu(self) -> bool:
        return True

    def getTensors(self):
        return self.tensors


def test_a_gpu_state_is_offered_by_its_device_pointer_and_kept_alive_by_the_view():
    state = _FakeGpuState(itemsize=8)
    view = _StateView(state, 3)
    assert view.__cuda_array_interface__ == {"shape": (8,), "typestr": "<c8", "data": (0x7F00_0000_1000, False),
                                             "strides": None, "version": 2}
    assert _StateView(_FakeGpuState(itemsize=16), 3).__cuda_array_interface__["typestr"] == "<c16"
    alive = weakref.ref(state)
    del state
    gc.collect()
    assert alive() is view.state  # the memory's owner lives as long as the view torch holds
    del view
    gc.collect()
    assert alive() is None


def test_states_that_are_not_one_vector_in_gpu_memory_are_refused():
    with pytest.raises(ValueError, match="not one state vector in GPU memory"):
        _StateView(_FakeGpuState(extents=[2, 2, 2]), 3)  # a tensor-network state
    executor = qpp_executor()

    angles = torch.zeros(1, len(executor.circuit.rotation_gates), dtype=torch.float64)

    def host_state(cudaq):
        state = cudaq.get_state(executor.kernel, *executor._args(angles, None)[0])
        try:
            _StateView(state, 3)
        except ValueError as err:
            return str(err)
        return "accepted"

    assert "not one state vector in GPU memory" in call(executor.target, host_state)


def test_the_device_path_receives_cudaq_states_and_the_host_path_is_unchanged(monkeypatch):
    executor = qpp_executor()
    assert executor.states_on_device is False
    angles = torch.rand(4, len(executor.circuit.rotation_gates), dtype=torch.float64) * 3
    host = executor.states(angles, None)
    assert host.dtype == torch.complex128 and host.shape == (4, 8)
    seen = []

    def fake_stack(states, n, device):  # stands in for the GPU copy: records what the executor hands over
        seen.extend((type(state).__name__, n, str(device)) for state in states)
        return torch.from_numpy(np.stack([np.array(state, dtype=np.complex128) for state in states]))

    monkeypatch.setattr(cudaq_executor, "stack_states", fake_stack)
    monkeypatch.setattr(CudaqExecutor, "states_on_device", property(lambda self: True))
    device_path = executor.states(angles, None)
    assert seen == [("State", 3, "cpu")] * 4
    torch.testing.assert_close(device_path, host, rtol=0, atol=1e-15)
