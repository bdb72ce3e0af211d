"""A batched density-matrix simulator in native torch, with the noise of `noise.NoiseModel`.

ρ of a batch is stored as a (batch, 4**n) vector with index row + 2**n * col, so that ρ → U ρ U†
is U on "qubit" q and conj(U) on "qubit" n + q of that vector: the statevector kernels apply as they
are. It is differentiable by torch autograd, which makes it the exact density-matrix gradient of
noisy circuits, and the oracle for CUDA-Q's density-matrix target.
"""

from __future__ import annotations

import torch

from ..circuits import Circuit, ReadoutPlan
from ..noise import NoiseModel, sample_shots, single_qubit_kraus, two_qubit_depolarizing_kraus
from ..pauli import group_by_flip, marginal_index, term_phases
from ..plan import ExecutionPlan
from .base import Executor
from .statevector.kernels import apply_single, bit_permutation
from .statevector.program import StatevectorProgram


class DensityMatrixProgram:
    """A circuit with a noise model on the vectorised density matrix of a batch (differentiable)."""

    def __init__(self, circuit: Circuit, noise: NoiseModel | None, dtype: torch.dtype = torch.complex128,
                 device: torch.device | str = "cpu"):
        self.circuit = circuit
        self.n = circuit.n_qubits
        self.dim = 2**self.n
        self.noise = noise
        self.dtype = dtype
        self.device = torch.device(device)
        # Unfused: noise acts after every single gate, as it does on CUDA-Q's density-matrix target.
        self.sv = StatevectorProgram(circuit, dtype, device, fuse=False)
        self.single_channels = [[k.to(dtype).to(self.device) for k in ch] for ch in single_qubit_kraus(noise)] \
            if noise else []
        self.two_channel = [(a.to(dtype).to(self.device), b.to(dtype).to(self.device))
                            for a, b in two_qubit_depolarizing_kraus(noise.depolarizing2)] \
            if noise and noise.depolarizing2 else []
        idx = torch.arange(self.dim)
        self._perms = {}
        for gate in circuit.gates:
            if gate.name in ("cx", "swap"):
                p = bit_permutation(gate.name, gate.wires, self.dim)
                # On the vectorised ρ: the same permutation on rows and on columns.
                full = (p.view(1, -1) + self.dim * p.view(-1, 1)).reshape(-1)
                self._perms[(gate.name, gate.wires)] = full.to(self.device)
            elif gate.name == "cz":
                a, b = gate.wires
                sign = (1 - 2 * (((idx >> a) & 1) & ((idx >> b) & 1))).to(dtype)
                self._perms[(gate.name, gate.wires)] = (sign.view(1, -1) * sign.view(-1, 1)).reshape(-1).to(self.device)

    def _unitary(self, rho: torch.Tensor, matrix: torch.Tensor, q: int) -> torch.Tensor:
        return apply_single(apply_single(rho, matrix, q), matrix.conj(), self.n + q)

    def _channel(self, rho: torch.Tensor, kraus: list[torch.Tensor], q: int) -> torch.Tensor:
        return sum(self._unitary(rho, k, q) for k in kraus)

    def run(self, angles: torch.Tensor, init: torch.Tensor | None = None) -> torch.Tensor:
        batch = angles.shape[0]
        rot = self.sv.rotation_matrices(angles.to(self.device)) if angles.shape[1] else None
        if init is None:
            rho = torch.zeros(batch, self.dim * self.dim, dtype=self.dtype, device=self.device)
            rho[:, 0] = 1
        else:
            psi = init.to(self.dtype).to(self.device)
            rho = (psi.unsqueeze(1).conj() * psi.unsqueeze(2)).transpose(1, 2).reshape(batch, -1)
        for index, gate in enumerate(self.circuit.gates):
            if len(gate.wires) == 1:
                q = gate.wires[0]
                rho = self._unitary(rho, self.sv.gate_matrix(index, rot), q)
                for channel in self.single_channels:
                    rho = self._channel(rho, channel, q)
                continue
            op = self._perms[(gate.name, gate.wires)]
            rho = rho * op if gate.name == "cz" else rho[:, op]
            if self.two_channel:
                a, b = gate.wires
                rho = sum(apply_single(apply_single(self._unitary(rho, ka, a), kb, b), kb.conj(), self.n + b)
                          for ka, kb in self.two_channel)
        return rho

    def readout(self, rho: torch.Tensor, plan: ReadoutPlan) -> torch.Tensor:
        """Per-term expectations tr(P ρ) (batch, n_terms) or outcome probabilities (batch, 2**k)."""
        batch = rho.shape[0]
        matrix = rho.reshape(batch, self.dim, self.dim)  # [b, col, row]
        idx = torch.arange(self.dim, device=self.device)
        if plan.mode == "sampler":
            diagonal = matrix[:, idx, idx].real
            out = diagonal.new_zeros(batch, plan.width)
            return out.index_add(1, marginal_index(self.n, plan.marginal, self.device), diagonal)
        out = matrix.new_zeros(batch, len(plan.paulis)).real
        for xmask, terms in group_by_flip(plan.paulis).items():
            # tr(P ρ) = Σ_r phase(r) ρ[r ^ x, r]
            phases = torch.stack([term_phases(plan.paulis[k], self.n) for k in terms], 1).to(self.dtype)
            selected = matrix[:, idx, idx ^ xmask]
            out = out.index_copy(1, torch.tensor(terms, device=self.device), (selected @ phases.to(self.device)).real)
        return out


class TorchDensityExecutor(Executor):
    """The torch density-matrix engine (complex128) as an executor; its noiseless statevector twin gives
    exact states for the adjoint method."""

    def __init__(self, circuit: Circuit, readout_plan: ReadoutPlan, plan: ExecutionPlan):
        super().__init__(circuit, readout_plan, plan)
        self.program = DensityMatrixProgram(circuit, plan.noise, torch.complex128, self.device)

    def states(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        self.executions += angles.shape[0]
        program = self.sweep_program()
        with torch.no_grad():
            return program.run(angles, init)

    def readout(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        self.plan.check_memory(angles.shape[0])
        self.executions += angles.shape[0]
        values = self.program.readout(self.program.run(angles, init), self.readout_plan)
        if self.plan.shots:
            values = sample_shots(values.detach(), self.readout_plan, self.plan.shots)
        return values
