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
    def __init__(self, n: int, quantum: nn.Module):
        super().__init__()
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
# Hand-written CUDA-Q: a torch.autograd.Function calling cudaq.observe, with the parameter-shift rule in its
# backward, as in CUDA-Q's hybrid quantum neural network tutorial.


def cudaq_layer(n: int) -> nn.Module:
    import cudaq

    from .peer_cudaq_kernel import workload

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
            thetas = ctx.thetas
            g = grad_out.detach().double().numpy()
            grad = np.zeros_like(thetas)
            for i in range(thetas.shape[1]):
                plus, minus = thetas.copy(), thetas.copy()
                plus[:, i] += SHIFT
                minus[:, i] -= SHIFT
                derivative = (observe(plus) - observe(minus)) / 2  # (batch, n)
                grad[:, i] = (derivative * g).sum(1)
            grad = torch.from_numpy(grad).to(grad_out.dtype)
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
        from .. import compile as wb_compile
        from .common import standard_spec

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


VARIANTS = {
    # variant: (framework module to import, description)
    "workbench-torch-adjoint": ("workbench", "workbench torch engine, adjoint"),
    "workbench-torch-backprop": ("workbench", "workbench torch engine, backprop"),
    "workbench-qpp-adjoint": ("cudaq", "workbench on CUDA-Q qpp-cpu, adjoint"),
    "pennylane-default-backprop": ("pennylane", "PennyLane default.qubit, backprop, TorchLayer"),
    "pennylane-lightning-adjoint": ("pennylane_lightning", "PennyLane lightning.qubit, adjoint, TorchLayer"),
    "torchquantum": ("torchquantum", "TorchQuantum, autograd"),
    "qiskit-ml": ("qiskit_machine_learning", "Qiskit ML EstimatorQNN + TorchConnector, parameter shift"),
    "cudaq-parameter-shift": ("cudaq", "hand-written CUDA-Q autograd Function, parameter shift"),
}
FRAMEWORK_OF = {
    "workbench-torch-adjoint": "workbench", "workbench-torch-backprop": "workbench", "workbench-qpp-adjoint": "workbench",
    "pennylane-default-backprop": "pennylane", "pennylane-lightning-adjoint": "pennylane",
    "torchquantum": "torchquantum", "qiskit-ml": "qiskit", "cudaq-parameter-shift": "cudaq",
}
OURS = ("workbench-torch-adjoint", "workbench-torch-backprop")
# Cost of a step relative to one forward, for forecasting (shifted circuits per angle for parameter shift).
PARAMETER_SHIFT = ("qiskit-ml", "cudaq-parameter-shift")


def build(variant: str, n: int, dtype: torch.dtype = torch.float32) -> nn.Module:
    if variant.startswith("workbench-"):
        target = "qpp-cpu" if "qpp" in variant else "torch"
        gradient = "adjoint" if variant.endswith("adjoint") else "backprop"
        net = WorkbenchNet(n, target, gradient, precision="double" if dtype == torch.float64 else "single")
        return net.to(dtype)
    if variant == "pennylane-default-backprop":
        quantum = pennylane_layer(n, "default.qubit", "backprop")
    elif variant == "pennylane-lightning-adjoint":
        quantum = pennylane_layer(n, "lightning.qubit", "adjoint")
    elif variant == "torchquantum":
        quantum = torchquantum_layer(n)
    elif variant == "qiskit-ml":
        quantum = qiskit_layer(n)
    elif variant == "cudaq-parameter-shift":
        quantum = cudaq_layer(n)
    else:
        raise KeyError(f"unknown peer variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    net = PeerNet(n, quantum)
    return net.to(dtype)
