"""The benchmark workload written in each peer framework, parameter for parameter the same network.

Every model here is `PeerNet`: fc_in = Linear(n, n) → π·tanh → a quantum layer → head = Linear(n, 2). The
quantum layer is, in every framework, RY(x_q) on qubit q, then two layers of [RY(w), RZ(w) on every qubit,
CNOT(q → q+1 mod n) for q = 0..n-1], and ⟨Z_q⟩ on every qubit, output column q. Weight k of the layer is,
as in the workbench, layer l, qubit q, rotation r at k = 2·n·l + 2·q + r. Qubits are addressed by wire
index everywhere, so no framework's bit order enters the outputs.

State dicts use the workbench names with the `blocks.` prefix dropped: fc_in.weight, fc_in.bias, q.weight,
head.weight, head.bias.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

SHIFT = math.pi / 2


def ring(n: int) -> list[tuple[int, int]]:
    return [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(0, 1)]


def weight_index(n: int, layer: int, qubit: int, rotation: int) -> int:
    return 2 * n * layer + 2 * qubit + rotation


class PeerNet(nn.Module):
    def __init__(self, n: int, quantum: nn.Module, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.dtype = dtype  # frameworks with a global precision switch read it when they build
        self.fc_in = nn.Linear(n, n)
        self.q = quantum
        self.head = nn.Linear(n, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = math.pi * torch.tanh(self.fc_in(x))
        return self.head(self.q(angles).to(angles.dtype))  # TorchConnector answers in float32

    def load_common(self, state: dict[str, torch.Tensor]) -> None:
        """Load workbench-named weights; the quantum weight goes to whatever the layer calls it."""
        own = self.state_dict()
        mapped = {}
        for key, value in own.items():
            source = state["q.weight"] if key.startswith("q.") else state[key]
            mapped[key] = source.to(value.dtype).reshape(value.shape)
        self.load_state_dict(mapped)

    def common_grads(self) -> dict[str, list]:
        out = {}
        for name, p in self.named_parameters():
            key = "q.weight" if name.startswith("q.") else name
            out[key] = p.grad.detach().double().reshape(-1).tolist() if p.grad is not None else None
        return out


# ---------------------------------------------------------------------------------------------
# PennyLane: qml.qnn.TorchLayer over default.qubit (backprop) or lightning.qubit (adjoint)


def pennylane_layer(n: int, device_name: str, diff_method: str) -> nn.Module:
    import pennylane as qml

    dev = qml.device(device_name, wires=n)
    pairs = ring(n)

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
    def circuit(inputs, weights):
        for q in range(n):
            qml.RY(inputs[..., q], wires=q)
        for layer in range(2):
            for q in range(n):
                qml.RY(weights[weight_index(n, layer, q, 0)], wires=q)
                qml.RZ(weights[weight_index(n, layer, q, 1)], wires=q)
            for a, b in pairs:
                qml.CNOT(wires=[a, b])
        return [qml.expval(qml.PauliZ(q)) for q in range(n)]

    return qml.qnn.TorchLayer(circuit, {"weights": (4 * n,)})


# ---------------------------------------------------------------------------------------------
# Qiskit Machine Learning: EstimatorQNN on the exact StatevectorEstimator, wrapped by TorchConnector


def qiskit_layer(n: int) -> nn.Module:
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit.primitives import StatevectorEstimator
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_machine_learning.connectors import TorchConnector
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    x = ParameterVector("x", n)
    w = ParameterVector("w", 4 * n)
    qc = QuantumCircuit(n)
    for q in range(n):
        qc.ry(x[q], q)
    for layer in range(2):
        for q in range(n):
            qc.ry(w[weight_index(n, layer, q, 0)], q)
            qc.rz(w[weight_index(n, layer, q, 1)], q)
        for a, b in ring(n):
            qc.cx(a, b)
    observables = [SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], num_qubits=n) for q in range(n)]
    estimator = StatevectorEstimator()
    try:
        from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient

        gradient = ParamShiftEstimatorGradient(estimator)
    except Exception:  # older releases build their own
        gradient = None
    kwargs = {"gradient": gradient} if gradient is not None else {}
    import inspect

    if "default_precision" in inspect.signature(EstimatorQNN.__init__).parameters:
        # Exact expectations: the default (1/64) makes StatevectorEstimator add shot-like noise.
        kwargs["default_precision"] = 0.0
    qnn = EstimatorQNN(circuit=qc, observables=observables, input_params=list(x), weight_params=list(w),
                       input_gradients=True, estimator=estimator, **kwargs)
    return TorchConnector(qnn, initial_weights=np.zeros(4 * n))


# ---------------------------------------------------------------------------------------------
# TorchQuantum: the functional gate API on a batched QuantumDevice


def torchquantum_layer(n: int) -> nn.Module:
    import torchquantum as tq
    import torchquantum.functional as tqf

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4 * n))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            batch = x.shape[0]
            qdev = tq.QuantumDevice(n_wires=n, bsz=batch, device=x.device)
            for q in range(n):
                tqf.ry(qdev, wires=q, params=x[:, q:q + 1])
            for layer in range(2):
                for q in range(n):
                    tqf.ry(qdev, wires=q, params=self.weight[weight_index(n, layer, q, 0)].expand(batch, 1))
                    tqf.rz(qdev, wires=q, params=self.weight[weight_index(n, layer, q, 1)].expand(batch, 1))
                for a, b in ring(n):
                    tqf.cnot(qdev, wires=[a, b])
            return torch.stack([tq.measurement.expval(qdev, q, tq.PauliZ()) for q in range(n)], dim=-1) \
                .reshape(batch, n)

    return Layer()


# ---------------------------------------------------------------------------------------------
# TyxonQ: its statevector kernels on the PyTorch numerics backend (complex128 throughout, as TyxonQ builds
# its gates), one sample per call, either looped over the batch or vectorised by torch.func.vmap as in
# TyxonQ's own parallel examples.


def tyxonq_layer(n: int, vmap: bool) -> nn.Module:
    import tyxonq as tq
    from tyxonq.libs.quantum_library.kernels.gates import gate_cx_4x4, gate_ry, gate_rz
    from tyxonq.libs.quantum_library.kernels.statevector import (apply_1q_statevector, apply_2q_statevector,
                                                                 expect_z_statevector, init_statevector)

    tq.set_backend("pytorch")
    K = tq.get_backend("pytorch")
    cx = gate_cx_4x4()
    pairs = ring(n)

    def circuit(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        psi = init_statevector(n, backend=K)
        for q in range(n):
            psi = apply_1q_statevector(K, psi, gate_ry(x[q], backend=K), q, n)
        for layer in range(2):
            for q in range(n):
                psi = apply_1q_statevector(K, psi, gate_ry(w[weight_index(n, layer, q, 0)], backend=K), q, n)
                psi = apply_1q_statevector(K, psi, gate_rz(w[weight_index(n, layer, q, 1)], backend=K), q, n)
            for a, b in pairs:
                psi = apply_2q_statevector(K, psi, cx, a, b, n)
        return torch.stack([expect_z_statevector(psi, q, n, backend=K) for q in range(n)])

    batched = torch.func.vmap(circuit, in_dims=(0, None))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4 * n))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if vmap:
                return batched(x, self.weight)
            return torch.stack([circuit(row, self.weight) for row in x])

    return Layer()


# ---------------------------------------------------------------------------------------------
# pyqtorch: a batched QuantumCircuit; autograd through one run (⟨Z_q⟩ read from the state), or pyqtorch's
# adjoint differentiation (`expectation(..., diff_mode=DiffMode.ADJOINT)`, one call per observable).


def _z_expectations(state: torch.Tensor, n: int) -> torch.Tensor:
    """⟨Z_q⟩ from a state shaped [2] * n + [batch] (qubit q on axis q). Shape: (batch, n)."""
    probabilities = (state.abs() ** 2).reshape(2**n, -1)
    columns = []
    for q in range(n):
        split = probabilities.reshape(2**q, 2, 2 ** (n - q - 1), -1).sum((0, 2))
        columns.append(split[0] - split[1])
    return torch.stack(columns, 1)


def pyqtorch_layer(n: int, dtype: torch.dtype, adjoint: bool) -> nn.Module:
    import pyqtorch as pyq
    from pyqtorch.utils import DiffMode

    ops = [pyq.RY(q, f"x{q}") for q in range(n)]
    for layer in range(2):
        for q in range(n):
            ops.append(pyq.RY(q, f"w{weight_index(n, layer, q, 0)}"))
            ops.append(pyq.RZ(q, f"w{weight_index(n, layer, q, 1)}"))
        ops.extend(pyq.CNOT(a, b) for a, b in ring(n))
    circuit = pyq.QuantumCircuit(n, ops)
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    circuit = circuit.to(complex_dtype)
    observables = [pyq.Observable(pyq.Z(q)).to(complex_dtype) for q in range(n)]

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4 * n))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            values = {f"x{q}": x[:, q] for q in range(n)}
            # Weights are given per sample: pyqtorch's adjoint returns per-sample gradients (shape (batch,)),
            # which autograd then sums into the shared weight.
            values.update({f"w{k}": self.weight[k].expand(x.shape[0]) for k in range(4 * n)})
            state = pyq.zero_state(n, batch_size=x.shape[0], dtype=complex_dtype)
            if not adjoint:
                return _z_expectations(circuit.run(state, values), n)
            return torch.stack([pyq.expectation(circuit, state, values, observable, diff_mode=DiffMode.ADJOINT)
                                .reshape(-1) for observable in observables], 1)

    return Layer()


# ---------------------------------------------------------------------------------------------
# tensorcircuit-ng on its PyTorch backend: one sample's circuit, vectorised over the batch by K.vmap.


def tensorcircuit_layer(n: int, dtype: torch.dtype) -> nn.Module:
    import tensorcircuit as tc

    K = tc.set_backend("pytorch")
    tc.set_dtype("complex128" if dtype == torch.float64 else "complex64")
    pairs = ring(n)

    def circuit(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        c = tc.Circuit(n)
        for q in range(n):
            c.ry(q, theta=x[q])
        for layer in range(2):
            for q in range(n):
                c.ry(q, theta=w[weight_index(n, layer, q, 0)])
                c.rz(q, theta=w[weight_index(n, layer, q, 1)])
            for a, b in pairs:
                c.cnot(a, b)
        return K.stack([K.real(c.expectation_ps(z=[q])) for q in range(n)])

    batched = K.vmap(circuit, vectorized_argnums=0)

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4 * n))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return batched(x, self.weight)

    return Layer()


# ---------------------------------------------------------------------------------------------
# Hand-written CUDA-Q: a torch.autograd.Function calling cudaq.observe, with the parameter-shift rule in its
# backward, as in CUDA-Q's hybrid quantum neural network tutorial,
# but with all shifted circuits of the batch in one broadcast `observe` call.


def cudaq_layer(n: int) -> nn.Module:
    import cudaq

    from workbench.bench.peer_cudaq_kernel import workload

    observables = [cudaq.spin.z(q) for q in range(n)]

    def observe(thetas: np.ndarray) -> np.ndarray:
        batch = thetas.shape[0]
        results = cudaq.observe(workload, observables, np.full(batch, n, dtype=np.int64), thetas)
        if batch == 1 and not isinstance(results[0], (list, tuple)):
            results = [results]
        return np.array([[r.expectation() for r in row] for row in results])

    class QuantumFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
            thetas = torch.cat([angles.detach(), weights.detach().expand(angles.shape[0], -1)], 1).double().numpy()
            ctx.thetas = thetas
            return torch.from_numpy(observe(thetas)).to(angles.dtype)

        @staticmethod
        def backward(ctx, grad_out: torch.Tensor):
            thetas = ctx.thetas  # (batch, P): P = n inputs + 4n weights
            batch, count = thetas.shape
            # Every shifted circuit of every sample in ONE broadcast call: rows (sample, angle, ±).
            shifts = np.zeros((count, 2, count))
            shifts[np.arange(count), 0, np.arange(count)] = SHIFT
            shifts[np.arange(count), 1, np.arange(count)] = -SHIFT
            rows = (thetas[:, None, None, :] + shifts[None]).reshape(-1, count)
            values = observe(rows).reshape(batch, count, 2, n)
            derivative = (values[:, :, 0] - values[:, :, 1]) / 2  # (batch, P, n)
            g = grad_out.detach().double().numpy()  # (batch, n)
            grad = torch.from_numpy(np.einsum("bpq,bq->bp", derivative, g)).to(grad_out.dtype)
            return grad[:, :n], grad[:, n:].sum(0)

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4 * n))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return QuantumFunction.apply(x, self.weight)

    return Layer()


# ---------------------------------------------------------------------------------------------
# The workbench itself, through the same harness (a HybridModel behind the PeerNet names)


class WorkbenchNet(nn.Module):
    def __init__(self, n: int, target: str, gradient: str, precision: str = "single"):
        super().__init__()
        from workbench import compile as wb_compile
        from workbench.bench.common import standard_spec

        self.model = wb_compile(standard_spec(n), target=target, gradient=gradient, precision=precision, seed=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def load_common(self, state: dict[str, torch.Tensor]) -> None:
        own = self.model.state_dict()
        mapped = {f"blocks.{k}": v.to(own[f'blocks.{k}'].dtype) for k, v in state.items()}
        self.model.load_state_dict(mapped)

    def common_grads(self) -> dict[str, list]:
        return {name.removeprefix("blocks."): p.grad.detach().double().reshape(-1).tolist()
                for name, p in self.model.named_parameters()}


# variant: (framework, description). The framework names the worker (and its environment, see peer_env).
_VARIANTS = {
    "workbench-torch-adjoint": ("workbench", "workbench torch engine, adjoint"),
    "workbench-torch-backprop": ("workbench", "workbench torch engine, backprop"),
    "workbench-qpp-adjoint": ("workbench", "workbench on CUDA-Q qpp-cpu, adjoint"),
    "pennylane-default-backprop": ("pennylane", "PennyLane default.qubit, backprop, TorchLayer"),
    "pennylane-lightning-adjoint": ("pennylane", "PennyLane lightning.qubit, adjoint, TorchLayer"),
    "torchquantum": ("torchquantum", "TorchQuantum, batched QuantumDevice, autograd"),
    "tyxonq-pytorch": ("tyxonq", "TyxonQ, PyTorch backend, statevector kernels looped over the batch, autograd"),
    "tyxonq-vmap": ("tyxonq", "TyxonQ, PyTorch backend, statevector kernels under torch.func.vmap, autograd"),
    "pyqtorch-autograd": ("pyqtorch", "pyqtorch, batched run, autograd"),
    # pyqtorch 1.7.8's adjoint disagrees with its own autograd once a CNOT's control is above its target (the
    # ring's closing CNOT): the reference check reports it; measured in /tmp with a 3-qubit circuit.
    "pyqtorch-adjoint": ("pyqtorch", "pyqtorch, expectation with DiffMode.ADJOINT"),
    "tensorcircuit-torch": ("tensorcircuit", "tensorcircuit-ng, PyTorch backend, vmap over the batch, autograd"),
    "qiskit-ml": ("qiskit", "Qiskit ML EstimatorQNN + TorchConnector, parameter shift"),
    "cudaq-parameter-shift": ("cudaq", "hand-written CUDA-Q autograd Function, parameter shift in one broadcast"),
}
VARIANTS = {variant: description for variant, (_, description) in _VARIANTS.items()}
FRAMEWORK_OF = {variant: framework for variant, (framework, _) in _VARIANTS.items()}
OURS = ("workbench-torch-adjoint", "workbench-torch-backprop")
# Distributions whose versions a worker reports (besides torch).
VERSION_PACKAGES = {"workbench": ["cudaq"], "cudaq": ["cudaq"], "pennylane": ["pennylane", "pennylane_lightning"],
                    "torchquantum": ["torchquantum", "qiskit"], "tyxonq": ["tyxonq"], "pyqtorch": ["pyqtorch"],
                    "tensorcircuit": ["tensorcircuit-ng"], "qiskit": ["qiskit", "qiskit-machine-learning"]}


def _stub_torchvision() -> None:
    """TorchQuantum imports torchvision for its datasets only; PyPI's torchvision does not load next to the CPU
    torch, so inert modules stand in for `torchvision` and every submodule (the simulator never touches them)."""
    import importlib.abc
    import importlib.machinery
    import sys
    import types

    class Anything(type):  # a class whose attributes are classes again: subclassed, called, looked into
        def __getattr__(cls, name: str):
            if name.startswith("__"):
                raise AttributeError(name)
            return Anything(name, (), {})

    class Inert(types.ModuleType):
        def __getattr__(self, name: str):
            if name.startswith("__"):
                raise AttributeError(name)
            return Anything(name, (), {})

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name == "torchvision" or name.startswith("torchvision."):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            module = Inert(spec.name)
            module.__path__ = []
            return module

        def exec_module(self, module) -> None:
            pass

    if not any(type(f).__name__ == "Finder" and hasattr(f, "create_module") for f in sys.meta_path):
        sys.meta_path.insert(0, Finder())


def import_framework(framework: str) -> None:
    """Import a worker's framework once, up front (so import time stays out of the first step)."""
    if framework == "workbench":
        import workbench  # noqa: F401
    elif framework == "cudaq":
        import workbench.bench.peer_cudaq_kernel  # noqa: F401
    elif framework == "pennylane":
        import pennylane  # noqa: F401
    elif framework == "torchquantum":
        _stub_torchvision()
        import torchquantum  # noqa: F401
    elif framework == "tyxonq":
        import tyxonq  # noqa: F401
    elif framework == "pyqtorch":
        import pyqtorch  # noqa: F401
    elif framework == "tensorcircuit":
        import tensorcircuit  # noqa: F401
    elif framework == "qiskit":
        import qiskit_machine_learning  # noqa: F401
    else:
        raise ValueError(f"unknown framework {framework!r}")


_BUILDERS = {
    "pennylane-default-backprop": lambda n, dtype: pennylane_layer(n, "default.qubit", "backprop"),
    "pennylane-lightning-adjoint": lambda n, dtype: pennylane_layer(n, "lightning.qubit", "adjoint"),
    "torchquantum": lambda n, dtype: torchquantum_layer(n),
    "tyxonq-pytorch": lambda n, dtype: tyxonq_layer(n, vmap=False),
    "tyxonq-vmap": lambda n, dtype: tyxonq_layer(n, vmap=True),
    "pyqtorch-autograd": lambda n, dtype: pyqtorch_layer(n, dtype, adjoint=False),
    "pyqtorch-adjoint": lambda n, dtype: pyqtorch_layer(n, dtype, adjoint=True),
    "tensorcircuit-torch": lambda n, dtype: tensorcircuit_layer(n, dtype),
    "qiskit-ml": lambda n, dtype: qiskit_layer(n),
    "cudaq-parameter-shift": lambda n, dtype: cudaq_layer(n),
}


def build(variant: str, n: int, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The workload network of one variant, with its parameters in `dtype`."""
    if variant.startswith("workbench-"):
        target = "qpp-cpu" if "qpp" in variant else "torch"
        gradient = "adjoint" if variant.endswith("adjoint") else "backprop"
        net = WorkbenchNet(n, target, gradient, precision="double" if dtype == torch.float64 else "single")
        return net.to(dtype)
    if variant not in _BUILDERS:
        raise KeyError(f"unknown peer variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    return PeerNet(n, _BUILDERS[variant](n, dtype), dtype).to(dtype)
