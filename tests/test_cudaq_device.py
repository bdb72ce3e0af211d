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
from workbench.engine.executors import cudaq_device
from workbench.engine.executors.cudaq_device import _StateView, hands_off_on_device, stack_states
from workbench.engine.executors.cudaq_runtime import call
from workbench.engine.plan import ExecutionConfig, resolve
from workbench.engine.targets import TARGETS
from workbench.spec import load_spec

SPEC = {"name": "dev", "task": "regression", "input_shape": [3], "blocks": [
    {"id": "q", "type": "quantum", "role": "output", "qubits": 3, "depth": 2, "readout": {"mode": "estimator"}}]}


def qpp_executor(readout: dict | None = None) -> CudaqExecutor:
    spec = {**SPEC, "blocks": [{**SPEC["blocks"][0], "readout": readout or {"mode": "estimator"}}]}
    block = load_spec(spec).blocks[0]
    circuit = build_circuit(block, 3)
    return CudaqExecutor(circuit, readout_plan(block), resolve(ExecutionConfig(target="qpp-cpu"), block, circuit))


# The targets whose final state is one state vector in one GPU's memory; tensornet, tensornet-mps and nvidia-mgpu
# states are not (a tensor network, or a vector split over GPUs) and must take the host copy.
STATEVECTOR_GPU_TARGETS = {"nvidia", "nvidia-fp64", "nvidia-mqpu", "nvidia-mqpu-fp64"}


def test_exactly_the_statevector_gpu_targets_hand_states_over_on_the_device():
    assert {name for name, target in TARGETS.items() if hands_off_on_device(target.state_on_gpu, "cuda:0")} \
        == STATEVECTOR_GPU_TARGETS
    assert {"tensornet", "tensornet-mps", "nvidia-mgpu"} <= {name for name, t in TARGETS.items() if t.needs_gpu}
    # A layer on the CPU needs host memory anyway, on every target.
    assert not any(hands_off_on_device(target.state_on_gpu, "cpu") for target in TARGETS.values())


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


def test_the_copy_synchronises_the_gpus_that_hold_the_states_and_the_destination(monkeypatch):
    # No GPU here: the views stand on the CPU and the destination is the meta device, so the two devices differ
    # as a state on cuda:0 and a layer on cuda:1 do; every synchronize call is recorded.
    synchronised = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synchronised.append(torch.device(device)))
    monkeypatch.setattr(cudaq_device, "device_view", lambda state, n: torch.zeros(2**n, dtype=torch.complex64))
    out = stack_states([object(), object()], 3, "meta")
    assert (out.shape, out.dtype, out.device.type) == ((2, 8), torch.complex128, "meta")
    both = {torch.device("cpu"), torch.device("meta")}
    assert len(synchronised) == 4 and set(synchronised[:2]) == both and set(synchronised[2:]) == both


def _fake_stack(seen: list):
    """Stands in for the GPU copy: records what the executor hands over and puts the states on `device`."""

    def stack(states, n, device):
        seen.extend((type(state).__name__, n, str(device)) for state in states)
        return torch.from_numpy(np.stack([np.array(state, dtype=np.complex128) for state in states])).to(device)

    return stack


def test_the_device_path_receives_cudaq_states_and_the_host_path_is_unchanged(monkeypatch):
    executor = qpp_executor()
    assert executor.states_on_device is False
    angles = torch.rand(4, len(executor.circuit.rotation_gates), dtype=torch.float64) * 3
    host = executor.states(angles, None)
    assert host.dtype == torch.complex128 and host.shape == (4, 8)
    seen = []
    monkeypatch.setattr(cudaq_executor, "stack_states", _fake_stack(seen))
    monkeypatch.setattr(CudaqExecutor, "states_on_device", property(lambda self: True))
    device_path = executor.states(angles, None)
    assert seen == [("State", 3, "cpu")] * 4
    torch.testing.assert_close(device_path, host, rtol=0, atol=1e-15)


def test_a_sampler_readout_without_shots_stays_on_the_device_the_states_were_handed_to(monkeypatch):
    executor = qpp_executor({"mode": "sampler", "marginal": [0, 2]})
    angles = torch.rand(4, len(executor.circuit.rotation_gates), dtype=torch.float64) * 3
    # The host path against the torch engine's probabilities (an independent simulator).
    oracle = executor.sweep_program()
    expected = oracle.readout(oracle.run(angles), executor.readout_plan)
    torch.testing.assert_close(executor.readout(angles, None), expected, rtol=0, atol=1e-12)
    # The device path, with the meta device standing in for the GPU: states arrive there, and any tensor the
    # readout builds on the CPU instead (the marginal's index) fails the same way a CPU tensor meets a CUDA one.
    seen = []
    monkeypatch.setattr(cudaq_executor, "stack_states", _fake_stack(seen))
    monkeypatch.setattr(CudaqExecutor, "states_on_device", property(lambda self: True))
    monkeypatch.setattr(executor, "device", torch.device("meta"))
    values = executor.readout(angles, None)
    assert seen == [("State", 3, "meta")] * 4
    assert (values.shape, values.dtype, values.device.type) == ((4, 4), torch.float64, "meta")


def test_host_results_come_back_on_the_layers_device_as_the_torch_engines_do(monkeypatch):
    executor = qpp_executor()
    angles = torch.rand(2, len(executor.circuit.rotation_gates), dtype=torch.float64)
    executor.sweep_program()  # built on the CPU (it fuses the angles) before the stand-in device is set
    monkeypatch.setattr(executor, "device", torch.device("meta"))  # stands in for a layer on a GPU
    values = executor.readout(angles, None)  # observe's results: host memory
    assert (values.shape, values.device.type) == ((2, 3), "meta")
