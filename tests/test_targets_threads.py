"""Guard rails (GPU targets without a GPU, memory estimates, device checks) and thread safety of
CUDA-Q's process-global target and noise model."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import workbench as wb
from conftest import layer_for, make_block
from workbench.engine import plan as layers_module
from workbench.engine.executors.cudaq_runtime import TargetError, gpu_count
from workbench.engine.layer import ResourceError

ROOT = Path(__file__).resolve().parents[1]
GiB = 2**30


def _small(qubits: int = 2, **quantum) -> dict:
    return {"input_shape": [qubits], "blocks": [{"type": "quantum", "id": "q", "qubits": qubits, "depth": 1,
                                                 **quantum}]}


# ------------------------------------------------------------------------------------------------
# GPU targets without a GPU

GPU_TARGETS = ["nvidia", "nvidia-fp64", "nvidia-mqpu", "nvidia-mgpu", "tensornet", "tensornet-mps"]


@pytest.mark.skipif(gpu_count() > 0, reason="this machine has a GPU")
def test_gpu_targets_without_gpu_raise_and_never_abort_the_process():
    # In a subprocess: selecting tensornet without a GPU aborts the whole interpreter, so a regression here
    # must not take the test session down with it.
    script = textwrap.dedent(f"""
        import torch, workbench as wb
        from workbench.engine.targets import TargetError
        from workbench.engine.function import CircuitFunction
        spec = {_small()!r}
        for target in {GPU_TARGETS!r}:
            try:
                wb.compile(spec, target=target)
            except TargetError as err:
                text = str(err)
                assert target in text and "qpp-cpu" in text and "'torch'" in text and "GPU" in text, text
                print("refused", target)
            else:
                raise SystemExit("no error for " + target)
        try:
            CircuitFunction({{"qubits": 2, "encoding": "angle", "depth": 1}}, target="tensornet")
        except TargetError:
            print("refused function tensornet")
        # The process is alive and CUDA-Q still works on the CPU.
        model = wb.compile(spec, target="qpp-cpu")
        print("value", float(model(torch.zeros(1, 2))[0, 0]))
        print("ALIVE")
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for target in GPU_TARGETS:
        assert f"refused {target}" in proc.stdout
    assert "refused function tensornet" in proc.stdout
    assert "ALIVE" in proc.stdout
    # Every CNOT-free single-layer circuit at zero input starts at |0>: <Z0> of RY(w0) RZ(w1) is cos(w0).
    assert "value" in proc.stdout


def test_unknown_and_misconfigured_targets_are_named():
    with pytest.raises(TargetError, match=r"unknown CUDA-Q target 'warp-drive'.*qpp-cpu.*'torch'"):
        wb.compile(_small(), target="warp-drive")
    with pytest.raises(TargetError, match="mapping_file"):
        wb.compile(_small(), target="iqm")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_device_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="device 'cuda'.*no GPU.*device='cpu'"):
        wb.compile(_small(), device="cuda")
    with pytest.raises(ValueError, match="no GPU"):
        layer_for(make_block("angle", "he-linear", "z"), 3, device="cuda")


# ------------------------------------------------------------------------------------------------
# Memory guard rails


def test_thirty_qubits_on_torch_is_refused_with_the_estimate(monkeypatch):
    monkeypatch.setattr(layers_module, "available_memory", lambda device: 16 * GiB)
    start = time.perf_counter()
    with pytest.raises(ResourceError) as info:
        wb.compile(_small(30))
    # Refused before anything of that size was built (a 2**30 state alone is 8 GiB).
    assert time.perf_counter() - start < 10
    text = str(info.value)
    assert "block q" in text and "30 qubits" in text and "32.00 GiB" in text and "16.00 GiB" in text
    assert "fewer qubits" in text


@pytest.mark.parametrize("options", [
    {"precision": "double", "gradient": "backprop"},
    {"noise": {"depolarizing": 0.01}},  # a 30-qubit density matrix
    {"target": "qpp-cpu"},
    {"target": "density-matrix-cpu"},
])
def test_thirty_qubits_is_refused_whatever_the_machine(options):
    with pytest.raises(ResourceError, match="GiB"):
        wb.compile(_small(30), **options)


def test_batch_too_large_is_refused_at_run_time(monkeypatch):
    model = wb.compile(_small(16))
    monkeypatch.setattr(layers_module, "available_memory", lambda device: 64 * 2**20)
    assert model(torch.zeros(2, 16)).shape == (2, 16)
    with pytest.raises(ResourceError, match="batch of 64"):
        model(torch.zeros(64, 16))


def test_amplitude_encoding_beyond_cudaq_limit_is_refused():
    with pytest.raises(ValueError, match="10 qubits"):
        wb.compile(_small(11, encoding="amplitude"), target="qpp-cpu")


def test_memory_estimate_grows_as_documented():
    small = layer_for(make_block("angle", "he-linear", "z"), 3, target="torch", precision="single")
    assert small.memory_estimate(batch=10) == 10 * 4 * 2**3 * 8
    dm = layer_for(make_block("angle", "he-linear", "z"), 3, target="torch-density", noise={"depolarizing": 0.1})
    assert dm.memory_estimate(batch=1) == 4 * 4**3 * 16


# ------------------------------------------------------------------------------------------------
# Threads: CUDA-Q's target and noise model are process-global


def _workloads():
    """name -> (zero-argument function returning numpy results). Built once, run alone and concurrently."""
    torch.manual_seed(0)
    block = make_block("angle", "he-ring", "paulis", depth=1)
    x = torch.tensor([[0.3, -0.4, 0.8], [1.1, 0.2, -0.6]], dtype=torch.float64)

    def grads(layer):
        def run():
            xx = x.clone().requires_grad_(True)
            out = layer(xx)
            (out * torch.arange(1, out.shape[1] + 1, dtype=out.dtype)).sum().backward()
            result = np.concatenate([out.detach().numpy().ravel(), layer.weight.grad.numpy(), xx.grad.numpy().ravel()])
            layer.weight.grad = None
            return result
        return run

    exact_adjoint = layer_for(block, 3, target="qpp-cpu", gradient="adjoint")  # get_state
    exact_shift = layer_for(block, 3, target="qpp-cpu", gradient="parameter_shift")  # broadcast observe
    noisy = layer_for(block, 3, target="density-matrix-cpu", noise={"depolarizing": 0.2, "depolarizing2": 0.2})
    for layer in (exact_shift, noisy):
        layer.load_state_dict(exact_adjoint.state_dict())
    # A basis state: every shot must read 101 (qubit 0 and 2 set). Leaked noise would show other outcomes.
    basis = {"type": "quantum", "id": "basis", "qubits": 3, "encoding": "none", "ansatz": "custom",
             "gates": [{"gate": "x", "wires": [0]}, {"gate": "x", "wires": [2]}], "readout": {"mode": "sampler"}}
    sampler = layer_for(basis, 0, target="qpp-cpu", shots=500)
    noisy_sampler = layer_for(basis, 0, target="density-matrix-cpu", shots=500, noise={"bit_flip": 0.3})

    def sample_clean():
        with torch.no_grad():
            return sampler(torch.zeros(3, 0, dtype=torch.float64)).numpy()

    def sample_noisy():
        with torch.no_grad():
            return noisy_sampler(torch.zeros(3, 0, dtype=torch.float64)).numpy()

    torch_layer = layer_for(block, 3, target="torch")
    torch_layer.load_state_dict(exact_adjoint.state_dict())
    return {"qpp-adjoint": grads(exact_adjoint), "qpp-shift": grads(exact_shift), "dm-noisy": grads(noisy),
            "torch": grads(torch_layer), "sample-clean": sample_clean, "sample-noisy": sample_noisy}


def test_models_with_different_targets_and_noise_agree_across_threads():
    work = _workloads()
    alone = {name: fn() for name, fn in work.items()}
    # Sanity: noise changes the values (so a leak would be visible), exact engines agree with each other.
    np.testing.assert_allclose(alone["qpp-adjoint"], alone["torch"], atol=1e-12)
    np.testing.assert_allclose(alone["qpp-shift"], alone["torch"], atol=1e-12)
    assert np.abs(alone["dm-noisy"] - alone["torch"]).max() > 0.05
    expected_bits = np.zeros(8)
    expected_bits[0b101] = 1
    np.testing.assert_array_equal(alone["sample-clean"], np.tile(expected_bits, (3, 1)))

    results: dict[str, list] = {name: [] for name in work}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(work))

    def worker(name):
        try:
            barrier.wait()
            for _ in range(6):
                results[name].append(work[name]())
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(name,)) for name in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    for name in ("qpp-adjoint", "qpp-shift", "dm-noisy", "torch"):
        assert len(results[name]) == 6
        for got in results[name]:
            np.testing.assert_allclose(got, alone[name], atol=1e-12, err_msg=name)
    for got in results["sample-clean"]:
        np.testing.assert_array_equal(got, np.tile(expected_bits, (3, 1)))
    # The noisy sampler kept its noise: with p = 0.3 per bit flip (applied after each X gate) the chance of
    # reading 101 is 0.49, so with 500 shots it is far below 1.
    for got in results["sample-noisy"]:
        assert 0.35 < got[:, 0b101].mean() < 0.65


def test_every_cudaq_call_runs_on_the_cudaq_thread_under_the_lock(monkeypatch):
    """observe, sample, get_state, set_target and the noise setters run only on the one CUDA-Q thread, holding
    the session lock, whichever thread the model is used from."""
    from workbench.engine.executors import cudaq_runtime as _cudaq

    cudaq = _cudaq.cudaq
    calls: list[str] = []

    def guarded(name):
        original = getattr(cudaq, name)

        def wrapper(*args, **kwargs):
            assert _cudaq._LOCK._is_owned(), f"cudaq.{name} called without the session lock"
            assert threading.current_thread().name == "workbench-cudaq", f"cudaq.{name} on another thread"
            calls.append(name)
            return original(*args, **kwargs)
        return wrapper

    for name in ("observe", "sample", "get_state_async", "set_target", "set_noise", "unset_noise"):
        monkeypatch.setattr(cudaq, name, guarded(name))
    work = _workloads()
    for fn in work.values():
        fn()
    errors: list[BaseException] = []

    def run(fn):
        try:
            fn()
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in work.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    assert {"observe", "sample", "get_state_async", "set_target", "set_noise", "unset_noise"} <= set(calls)
