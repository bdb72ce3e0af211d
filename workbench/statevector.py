"""A batched statevector simulator in native torch: the exact oracle, the backprop engine and the
reverse sweep of the adjoint method.

The state of a batch is a (batch, 2**n) complex tensor. Gates are applied as strided tensor
operations, never as dense 2**n matrices: consecutive single-qubit gates on one qubit are fused into
one 2x2 matrix per sample, and runs of CNOT/SWAP gates are fused into one index permutation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .circuits import Circuit, ReadoutPlan

_SQRT_HALF = 0.7071067811865476
_FIXED = {
    "h": [[_SQRT_HALF, _SQRT_HALF], [_SQRT_HALF, -_SQRT_HALF]],
    "x": [[0, 1], [1, 0]],
    "y": [[0, -1j], [1j, 0]],
    "z": [[1, 0], [0, -1]],
    "s": [[1, 0], [0, 1j]],
    "t": [[1, 0], [0, 0.7071067811865476 + 0.7071067811865476j]],
}
_GENERATOR = {"rx": "x", "ry": "y", "rz": "z"}


@dataclass
class SingleOp:
    """Consecutive single-qubit gates on one qubit, applied as one fused 2x2 matrix per sample."""

    qubit: int
    gates: list[int]  # indices into the circuit's gate list, in order


@dataclass
class PermOp:
    """Consecutive CNOT/SWAP gates as one basis permutation: new[:, i] = old[:, perm[i]]."""

    perm: torch.Tensor
    inverse: torch.Tensor


@dataclass
class DiagOp:
    diag: torch.Tensor


def apply_single(psi: torch.Tensor, matrix: torch.Tensor, qubit: int) -> torch.Tensor:
    """Apply a (2, 2) or per-sample (batch, 2, 2) matrix to one qubit of a (batch, 2**n) state."""
    batch = psi.shape[0]
    view = psi.reshape(batch, -1, 2, 2**qubit)
    a, b = view[:, :, 0, :], view[:, :, 1, :]
    if matrix.dim() == 2:
        m = [[matrix[i, j] for j in range(2)] for i in range(2)]
    else:
        m = [[matrix[:, i, j].view(batch, 1, 1) for j in range(2)] for i in range(2)]
    out = torch.stack([m[0][0] * a + m[0][1] * b, m[1][0] * a + m[1][1] * b], dim=2)
    return out.reshape(batch, -1)


def bit_permutation(name: str, wires: tuple[int, ...], dim: int) -> torch.Tensor:
    idx = torch.arange(dim)
    a, b = wires
    if name == "cx":
        return idx ^ (((idx >> a) & 1) << b)
    bit_a, bit_b = (idx >> a) & 1, (idx >> b) & 1
    return idx ^ ((bit_a ^ bit_b) << a) ^ ((bit_a ^ bit_b) << b)


class StatevectorProgram:
    """A circuit lowered to fused ops for one dtype and device."""

    def __init__(self, circuit: Circuit, dtype: torch.dtype = torch.complex64, device: torch.device | str = "cpu",
                 fuse: bool = True):
        self.circuit = circuit
        self.n = circuit.n_qubits
        self.dim = 2**self.n
        self.dtype = dtype
        self.device = torch.device(device)
        self.real_dtype = torch.float64 if dtype == torch.complex128 else torch.float32
        self.rotation_column = {g: col for col, g in enumerate(circuit.rotation_gates)}
        self.ops = self._lower(fuse)
        self._fixed = {k: torch.tensor(v, dtype=dtype, device=self.device) for k, v in _FIXED.items()}
        self._readout_cache: dict[ReadoutPlan, list] = {}

    # -- lowering -------------------------------------------------------------------------------
    def _lower(self, fuse: bool) -> list:
        ops: list = []
        pending: dict[int, list[int]] = {}

        def flush(q: int) -> None:
            if pending.get(q):
                ops.append(SingleOp(q, pending.pop(q)))

        for index, gate in enumerate(self.circuit.gates):
            if len(gate.wires) == 1:
                q = gate.wires[0]
                if not fuse:
                    ops.append(SingleOp(q, [index]))
                else:
                    pending.setdefault(q, []).append(index)
                continue
            for q in gate.wires:
                flush(q)
            if gate.name == "cz":
                idx = torch.arange(self.dim)
                a, b = gate.wires
                sign = 1 - 2 * (((idx >> a) & 1) & ((idx >> b) & 1))
                ops.append(DiagOp(sign.to(self.dtype).to(self.device)))
                continue
            perm = bit_permutation(gate.name, gate.wires, self.dim)
            if fuse and ops and isinstance(ops[-1], PermOp):
                perm = ops[-1].perm.cpu()[perm]
                ops.pop()
            ops.append(PermOp(perm.to(self.device), torch.argsort(perm).to(self.device)))
        for q in list(pending):
            flush(q)
        return ops

    # -- gate matrices --------------------------------------------------------------------------
    def rotation_matrices(self, angles: torch.Tensor) -> torch.Tensor:
        """(batch, n_rotations, 2, 2) matrices of every rotation gate."""
        names = [self.circuit.gates[g].name for g in self.circuit.rotation_gates]
        half = angles.to(self.real_dtype) / 2
        c, s = torch.cos(half), torch.sin(half)
        zero = torch.zeros_like(c)
        kind = torch.tensor([["rx", "ry", "rz"].index(nm) for nm in names], device=angles.device)
        is_x, is_y, is_z = (kind == 0), (kind == 1), (kind == 2)
        # Entries for all three kinds at once, chosen per column: one vectorised build for the batch.
        m00 = torch.complex(c, torch.where(is_z, -s, zero))
        m11 = torch.complex(c, torch.where(is_z, s, zero))
        m01 = torch.complex(torch.where(is_y, -s, zero), torch.where(is_x, -s, zero))
        m10 = torch.complex(torch.where(is_y, s, zero), torch.where(is_x, -s, zero))
        return torch.stack([torch.stack([m00, m01], -1), torch.stack([m10, m11], -1)], -2).to(self.dtype)

    def _gate_matrix(self, gate_index: int, rot: torch.Tensor) -> torch.Tensor:
        gate = self.circuit.gates[gate_index]
        if gate.param is not None:
            return rot[:, self.rotation_column[gate_index]]
        return self._fixed[gate.name]

    def fused_matrix(self, op: SingleOp, rot: torch.Tensor) -> torch.Tensor:
        matrix = None
        for g in op.gates:
            m = self._gate_matrix(g, rot)
            matrix = m if matrix is None else m @ matrix
        return matrix

    # -- application ----------------------------------------------------------------------------
    def initial(self, batch: int, init: torch.Tensor | None) -> torch.Tensor:
        if init is not None:
            return init.to(self.dtype).to(self.device)
        psi = torch.zeros(batch, self.dim, dtype=self.dtype, device=self.device)
        psi[:, 0] = 1
        return psi

    def run(self, angles: torch.Tensor, init: torch.Tensor | None = None) -> torch.Tensor:
        """Final states (batch, 2**n); differentiable through torch autograd (the backprop method)."""
        angles = angles.to(self.device)
        rot = self.rotation_matrices(angles) if angles.shape[1] else None
        psi = self.initial(angles.shape[0], init)
        for op in self.ops:
            if isinstance(op, SingleOp):
                psi = apply_single(psi, self.fused_matrix(op, rot), op.qubit)
            elif isinstance(op, PermOp):
                psi = psi[:, op.perm]
            else:
                psi = psi * op.diag
        return psi

    # -- readout --------------------------------------------------------------------------------
    def _pauli_groups(self, plan: ReadoutPlan) -> list:
        """Observables grouped by their X/Y flip mask: (term indices, flip permutation or None, phases (dim, k))."""
        if plan in self._readout_cache:
            return self._readout_cache[plan]
        idx = torch.arange(self.dim)
        groups: dict[int, list[int]] = {}
        for k, pauli in enumerate(plan.paulis):
            xmask = sum(1 << q for q, ch in enumerate(pauli) if ch in "XY")
            groups.setdefault(xmask, []).append(k)
        result = []
        for xmask, terms in groups.items():
            phases = []
            for k in terms:
                pauli = plan.paulis[k]
                zmask = sum(1 << q for q, ch in enumerate(pauli) if ch in "YZ")
                n_y = pauli.count("Y")
                parity = torch.zeros(self.dim, dtype=torch.int64)
                for q in range(self.n):
                    if (zmask >> q) & 1:
                        parity ^= (idx >> q) & 1
                phases.append((1 - 2 * parity).to(torch.complex128) * (-1j) ** n_y)
            perm = (idx ^ xmask).to(self.device) if xmask else None
            result.append((terms, perm, torch.stack(phases, 1).to(self.dtype).to(self.device)))
        self._readout_cache[plan] = result
        return result

    def expectations(self, psi: torch.Tensor, plan: ReadoutPlan) -> torch.Tensor:
        """Per-term Pauli expectations (batch, n_terms), differentiable."""
        out = psi.new_zeros(psi.shape[0], len(plan.paulis), dtype=self.real_dtype)
        for terms, perm, phases in self._pauli_groups(plan):
            flipped = psi if perm is None else psi[:, perm]
            values = ((psi.conj() * flipped) @ phases).real
            out = out.index_copy(1, torch.tensor(terms, device=psi.device), values)
        return out

    def _marginal_index(self, plan: ReadoutPlan) -> torch.Tensor:
        idx = torch.arange(self.dim, device=self.device)
        out = torch.zeros_like(idx)
        for j, q in enumerate(plan.marginal):
            out |= ((idx >> q) & 1) << j
        return out

    def probabilities(self, psi: torch.Tensor, plan: ReadoutPlan) -> torch.Tensor:
        probs = (psi.conj() * psi).real
        out = probs.new_zeros(psi.shape[0], plan.width)
        return out.index_add(1, self._marginal_index(plan), probs)

    def readout(self, psi: torch.Tensor, plan: ReadoutPlan) -> torch.Tensor:
        return self.expectations(psi, plan) if plan.mode == "estimator" else self.probabilities(psi, plan)

    def observable_action(self, psi: torch.Tensor, plan: ReadoutPlan, upstream: torch.Tensor) -> torch.Tensor:
        """λ = Σ_k upstream_k O_k ψ: the adjoint state seeded by the upstream gradient of the readout."""
        upstream = upstream.to(self.real_dtype)
        if plan.mode == "sampler":
            weights = upstream[:, self._marginal_index(plan)]
            return psi * weights.to(self.dtype)
        lam = torch.zeros_like(psi)
        for terms, perm, phases in self._pauli_groups(plan):
            flipped = psi if perm is None else psi[:, perm]
            weight = upstream[:, terms].to(self.dtype) @ phases.transpose(0, 1)
            lam = lam + weight * flipped
        return lam

    # -- adjoint differentiation ----------------------------------------------------------------
    def adjoint_vjp(self, psi: torch.Tensor, lam: torch.Tensor, angles: torch.Tensor,
                    need_initial: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reverse sweep: ∂/∂θ_g of Re⟨λ_final|ψ⟩-weighted readouts for every rotation gate.

        psi is the final state, lam = Σ_k g_k O_k ψ. Walks the ops backwards, undoing each on both
        vectors; per fused group one reduction gives every rotation gradient in it from 2x2 algebra.
        Returns (grad of angles (batch, n_rot), grad of the real initial state or None).
        """
        with torch.no_grad():
            batch = psi.shape[0]
            rot = self.rotation_matrices(angles.to(self.device)) if angles.shape[1] else None
            grads = torch.zeros(batch, angles.shape[1], dtype=self.real_dtype, device=self.device)
            for op in reversed(self.ops):
                if isinstance(op, PermOp):
                    psi, lam = psi[:, op.inverse], lam[:, op.inverse]
                    continue
                if isinstance(op, DiagOp):
                    psi, lam = psi * op.diag.conj(), lam * op.diag.conj()
                    continue
                has_rotation = any(self.circuit.gates[g].param is not None for g in op.gates)
                if has_rotation:
                    # R[b, i, j] = Σ_rest ψ[i, rest] conj(λ[j, rest]), so that ⟨λ|A|ψ⟩ = tr(A R).
                    reduced = torch.einsum("blir,bljr->bij", psi.reshape(batch, -1, 2, 2**op.qubit),
                                           lam.reshape(batch, -1, 2, 2**op.qubit).conj())
                # undo = W_g maps the group's final vectors back to just after gate g: W_{g-1} = U_g† W_g.
                undo = torch.eye(2, dtype=self.dtype, device=self.device).expand(batch, 2, 2)
                for g in reversed(op.gates):
                    gate = self.circuit.gates[g]
                    if gate.param is not None:
                        generator = self._fixed[_GENERATOR[gate.name]]
                        local = undo.conj().transpose(-1, -2) @ generator @ undo @ reduced
                        grads[:, self.rotation_column[g]] = torch.diagonal(local, dim1=-2, dim2=-1).sum(-1).imag
                    undo = self._gate_matrix(g, rot).conj().transpose(-1, -2) @ undo
                psi = apply_single(psi, undo, op.qubit)
                lam = apply_single(lam, undo, op.qubit)
            initial_grad = 2 * lam.real if need_initial else None
        return grads, initial_grad
