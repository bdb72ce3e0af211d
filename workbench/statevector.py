"""A batched statevector simulator in native torch: the exact oracle, the backprop engine and the
reverse sweep of the adjoint method.

The state of a batch is a (batch, 2**n) complex tensor (qubit q is bit q of the index). The circuit
is lowered once into *stages*, scheduled as soon as their qubits allow:

- a single-qubit stage holds, for every qubit it touches, the run of single-qubit gates on that
  qubit, fused into one 2x2 matrix per sample. A stage touching many qubits is applied as a few
  dense blocks of up to `MAX_CHUNK` qubits (the Kronecker product of their 2x2 matrices): each block
  is one batched matrix product whose output is written transposed, so the block's qubits move to
  the top of the index and the next block's qubits arrive at the bottom; after the last block the
  qubit order is back where it started. One pass over memory per block, no gather, no Python loop
  over qubits. A stage touching few qubits applies their 2x2 matrices one by one.
- a permutation stage holds a run of CNOT/SWAP/CZ gates as one signed permutation of the basis,
  applied with one gather.

When the circuit starts from |0...0⟩ the first single-qubit stage yields a product state, built by
Kronecker products instead of matrix products. The adjoint sweep walks the stages backwards on ψ and
λ: per block one reduction (a real Gram matrix) gives the block's 2^k x 2^k correlation ⟨λ|·|ψ⟩,
from which every rotation gradient in the stage follows by 2x2 algebra done for all stages at once
after the sweep; at the product state the sweep stops and contracts λ with the qubits' states
instead. Passes without autograd write into reused work buffers, so large states do not page-fault
fresh memory on every pass.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

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
_FIXED_NAMES = tuple(_FIXED)
_GENERATOR = {"rx": "x", "ry": "y", "rz": "z"}
_ROTATION_KINDS = ("rx", "ry", "rz")

MAX_CHUNK = 4  # qubits per dense block in a single-qubit stage (2^4 = 16 amplitudes: still memory-bound)
SMALL_STATE = 4  # circuits of up to this many qubits apply a whole stage as one dense block
DENSE_READOUT = 1 << 16  # up to this many (amplitude, term) pairs the readout signs are one dense matrix
ENV_MIN_QUBITS = 5  # from this size the adjoint sweep ends at the product state with two reads of λ
ENV_LEAF = 6  # qubits the product-state contraction handles at once at the bottom of its recursion
BUFFER_MIN = 1 << 15  # states of at least this many amplitudes reuse work buffers
PERSISTENT_BYTES = 1 << 28  # work buffers up to this total stay allocated between calls (no page faults)


@dataclass
class SingleOp:
    """Consecutive single-qubit gates on one qubit, applied as one fused 2x2 matrix per sample."""

    qubit: int
    gates: list[int]  # indices into the circuit's gate list, in order


@dataclass
class PermOp:
    """Consecutive CNOT/SWAP/CZ gates as one signed basis permutation: new[:, i] = phase[i] * old[:, perm[i]]."""

    perm: torch.Tensor
    inverse: torch.Tensor
    phase: torch.Tensor | None = None


@dataclass
class DiagOp:
    """Kept for compatibility; CZ phases now live in PermOp.phase."""

    diag: torch.Tensor


@dataclass
class SingleStage:
    """Single-qubit gate groups on distinct qubits (they commute), applied together."""

    groups: list[SingleOp]
    chunks: list[int] | None = None  # block sizes (low bits first) when applied as dense blocks; None: per qubit
    group_offset: int = 0  # index of this stage's first group in the program's group list
    chunk_offset: list[int] = field(default_factory=list)  # per block: its index among blocks of its size
    reduce: list[bool] = field(default_factory=list)  # per block (or per group): holds a rotation

    @property
    def qubit(self) -> int:  # a single-group stage reads like the old SingleOp
        return self.groups[0].qubit


def apply_single(psi: torch.Tensor, matrix: torch.Tensor, qubit: int) -> torch.Tensor:
    """Apply a (2, 2) or per-sample (batch, 2, 2) matrix to one qubit of a (batch, 2**n) state."""
    batch = psi.shape[0]
    lo = 1 << qubit
    hi = psi.shape[1] // (2 * lo)
    if matrix.dim() == 2:
        matrix = matrix.unsqueeze(0)
    matrix = matrix.to(psi.dtype)
    if hi == 1:  # top qubit: one batched product, layout kept
        return torch.matmul(matrix, psi.reshape(batch, 2, lo)).reshape(batch, -1)
    if lo == 1:  # bottom qubit
        return torch.matmul(psi.reshape(batch, hi, 2), matrix.transpose(-1, -2)).reshape(batch, -1)
    view = psi.reshape(batch, hi, 2, lo)
    if matrix.shape[0] == 1:
        return torch.matmul(matrix, view).reshape(batch, -1)
    return torch.einsum("bij,bhjl->bhil", matrix, view).reshape(batch, -1)


def apply_blocks(psi: torch.Tensor, blocks: list[torch.Tensor]) -> torch.Tensor:
    """Apply dense blocks (batch or 1, 2^k, 2^k), lowest qubits first; their sizes must add up to n.

    Each product reads the state with the block's qubits at the bottom and writes it with them at
    the top, so after the last block the qubit order is the original one.
    """
    lead = psi.shape[:-1]
    for block in blocks:
        size = block.shape[-1]
        psi = torch.matmul(block, psi.reshape(*lead, -1, size).transpose(-1, -2))
    return psi.reshape(*lead, -1)


def bit_permutation(name: str, wires: tuple[int, ...], dim: int) -> torch.Tensor:
    idx = torch.arange(dim)
    a, b = wires
    if name == "cx":
        return idx ^ (((idx >> a) & 1) << b)
    bit_a, bit_b = (idx >> a) & 1, (idx >> b) & 1
    return idx ^ ((bit_a ^ bit_b) << a) ^ ((bit_a ^ bit_b) << b)


class _SignedPermutation(torch.autograd.Function):
    """new = phase * old[:, perm] with its exact adjoint (the inverse permutation) as backward."""

    @staticmethod
    def forward(ctx, psi, perm, inverse, phase):
        ctx.save_for_backward(inverse, phase if phase is not None else perm.new_zeros(0))
        ctx.has_phase = phase is not None
        out = torch.gather(psi, 1, perm.expand(psi.shape[0], -1))
        return out * phase if phase is not None else out

    @staticmethod
    def backward(ctx, grad):
        inverse, phase = ctx.saved_tensors
        if ctx.has_phase:
            grad = grad * phase.conj()
        return torch.gather(grad, 1, inverse.expand(grad.shape[0], -1)), None, None, None


def permute(psi: torch.Tensor, op: PermOp) -> torch.Tensor:
    if psi.requires_grad:
        return _SignedPermutation.apply(psi, op.perm, op.inverse, op.phase)
    out = torch.gather(psi, 1, op.perm.expand(psi.shape[0], -1))
    return out * op.phase if op.phase is not None else out


def unpermute(psi: torch.Tensor, op: PermOp) -> torch.Tensor:
    if op.phase is not None:
        psi = psi * op.phase.conj()
    return torch.gather(psi, 1, op.inverse.expand(psi.shape[0], -1))


def _unpermute_into(psi: torch.Tensor, op: PermOp, out: torch.Tensor | None) -> torch.Tensor:
    """The inverse of a signed permutation (no autograd), written into `out` when given."""
    if op.phase is not None:
        psi = psi * op.phase.conj()
    index = op.inverse.expand(psi.shape[0], -1)
    return torch.gather(psi, 1, index) if out is None else torch.gather(psi, 1, index, out=out)


def _apply_block(psi: torch.Tensor, block: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
    """One dense-block pass (no autograd): the block's qubits are read at the bottom and written on top."""
    batch, width = psi.shape[0], block.shape[-1]
    source = psi.view(batch, -1, width).transpose(1, 2)
    if out is None:
        return torch.bmm(block, source).view(batch, -1)
    return torch.bmm(block, source, out=out.view(batch, width, -1)).view(batch, -1)


def _gram(psi: torch.Tensor, lam: torch.Tensor, width: int) -> torch.Tensor:
    """Real Gram matrix of the (re, im) parts of the block at the bottom of the index:
    G[(j, c), (i, d)] = Σ_rest λ[rest, j, c] ψ[rest, i, d], shape (batch, 2 * width, 2 * width).

    A long contraction is split into 16 shorter products summed afterwards: faster on CPU BLAS."""
    batch = psi.shape[0]
    rest = psi.shape[1] // width
    split = 16 if rest >= 4096 else 1
    real_psi = torch.view_as_real(psi).reshape(batch * split, -1, 2 * width)
    real_lam = torch.view_as_real(lam).reshape(batch * split, -1, 2 * width)
    gram = real_lam.transpose(1, 2) @ real_psi
    return gram if split == 1 else gram.view(batch, split, 2 * width, 2 * width).sum(1)


def _chunk_sizes(n: int) -> list[int]:
    if n <= SMALL_STATE:
        return [n]
    count = -(-n // MAX_CHUNK)
    base, extra = divmod(n, count)
    return [base + 1] * extra + [base] * (count - extra)


_BIT_INDEX: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}


def _bits(k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(arange(k)[:, None], bit q of i for q < k, i < 2**k), cached per size and device."""
    key = (k, str(device))
    if key not in _BIT_INDEX:
        i = torch.arange(1 << k)
        _BIT_INDEX[key] = (torch.arange(k, device=device)[:, None],
                           torch.stack([(i >> q) & 1 for q in range(k)]).to(device))
    return _BIT_INDEX[key]


def _kron_vectors(vectors: torch.Tensor) -> torch.Tensor:
    """(..., k, 2) -> (..., 2**k): the Kronecker product, the last vector the most significant.

    Entry i is the product over q of vectors[q][bit q of i]: one gather and one product, any k."""
    rows, bits = _bits(vectors.shape[-2], vectors.device)
    return vectors[..., rows, bits].prod(-2)


def _kron_others(vectors: torch.Tensor) -> torch.Tensor:
    """(..., k, 2) -> (..., k, 2**k): for each q, the Kronecker product of the vectors with vector q replaced
    by ones."""
    k = vectors.shape[-2]
    rows, bits = _bits(k, vectors.device)
    picked = vectors[..., rows, bits]  # (..., k, 2^k)
    eye = torch.eye(k, dtype=torch.bool, device=vectors.device)
    spread = torch.where(eye[:, :, None], torch.ones_like(picked).unsqueeze(-3), picked.unsqueeze(-3))
    return spread.prod(-2)


_SELECTIONS: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def _bit_selection(k: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(k, 2**k, 2): 1 where bit q of i equals c."""
    key = (k, str(device), dtype)
    if key not in _SELECTIONS:
        _, bits = _bits(k, torch.device("cpu"))
        _SELECTIONS[key] = torch.nn.functional.one_hot(bits, 2).to(dtype).to(device)
    return _SELECTIONS[key]


def _kron_matrices(mats: torch.Tensor) -> torch.Tensor:
    """(..., k, 2, 2) -> (..., 2**k, 2**k): the Kronecker product, the last matrix the most significant.

    Built up one factor at a time (k - 1 broadcast products): 3-20x faster than one gather of every
    factor's entry followed by a product over k, which costs k·4^k and dominated small circuits' steps."""
    out = mats[..., 0, :, :]
    for q in range(1, mats.shape[-3]):
        size = out.shape[-1]
        out = (mats[..., q, :, None, :, None] * out[..., None, :, None, :]).reshape(*out.shape[:-2], 2 * size, 2 * size)
    return out


class _Buffers:
    """Work buffers reused by the passes of a call (no autograd), so passes do not page-fault fresh memory."""

    def __init__(self, numel: int, dtype: torch.dtype, device: torch.device):
        self.numel, self.dtype, self.device = numel, dtype, device
        self.buffers: list[torch.Tensor] = []

    def fresh(self) -> torch.Tensor:
        return torch.empty(self.numel, dtype=self.dtype, device=self.device)

    def other(self, *live: torch.Tensor) -> torch.Tensor:
        """A buffer that none of the live tensors occupies."""
        taken = {t.data_ptr() for t in live}
        for buffer in self.buffers:
            if buffer.data_ptr() not in taken:
                return buffer
        buffer = torch.empty(self.numel, dtype=self.dtype, device=self.device)
        self.buffers.append(buffer)
        return buffer


def _selection(size: int, dtype: torch.dtype) -> torch.Tensor:
    """(4 * 4**size, 8 * size), real: G.flatten() @ S gives, per qubit of a block, the 2x2 partial trace
    (real and imaginary parts last) of T[j, i] = Σ conj(λ_j) ψ_i, where G[(j, c), (i, d)] is the real Gram
    matrix of λ and ψ's (re, im) parts: T = (G_00 + G_11) + i (G_01 - G_10)."""
    d = 1 << size
    sel = torch.zeros(d, 2, d, 2, size, 2, 2, 2, dtype=dtype)
    idx = torch.arange(d)
    for bit in range(size):
        a = ((idx >> bit) & 1).tolist()
        others = (idx & ~(1 << bit)).tolist()
        for j in range(d):
            for i in range(d):
                if others[j] != others[i]:
                    continue
                for c, dd, part, sign in ((0, 0, 0, 1), (1, 1, 0, 1), (0, 1, 1, 1), (1, 0, 1, -1)):
                    sel[j, c, i, dd, bit, a[j], a[i], part] = sign
    return sel.reshape(4 * d * d, 8 * size)


class StatevectorProgram:
    """A circuit lowered to fused stages for one dtype and device."""

    def __init__(self, circuit: Circuit, dtype: torch.dtype = torch.complex64, device: torch.device | str = "cpu",
                 fuse: bool = True):
        self.circuit = circuit
        self.n = circuit.n_qubits
        self.dim = 2**self.n
        self.dtype = dtype
        self.device = torch.device(device)
        self.real_dtype = torch.float64 if dtype == torch.complex128 else torch.float32
        self.rotation_column = {g: col for col, g in enumerate(circuit.rotation_gates)}
        self.n_rotations = len(self.rotation_column)
        self._fixed = {k: torch.tensor(v, dtype=dtype, device=self.device) for k, v in _FIXED.items()}
        self.ops = self._lower(fuse)
        self._prepare()
        self._readout_cache: dict[ReadoutPlan, list] = {}
        self._fast_readout: dict[ReadoutPlan, list] = {}
        self._forward_cache: tuple | None = None
        self._local = threading.local()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_local", None)
        state["_forward_cache"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _buffers(self, numel: int) -> _Buffers | None:
        """Work buffers for passes without autograd: kept per thread between calls while small enough."""
        if numel < BUFFER_MIN:
            return None
        itemsize = 16 if self.dtype == torch.complex128 else 8
        # A call holds at most three buffers (ψ, λ and the next output).
        if 3 * numel * itemsize > PERSISTENT_BYTES:
            return _Buffers(numel, self.dtype, self.device)
        store = getattr(self._local, "buffers", None)
        if store is None:
            store = self._local.buffers = {}
        if numel not in store:
            if 3 * itemsize * (sum(store) + numel) > PERSISTENT_BYTES:
                store.clear()
            store[numel] = _Buffers(numel, self.dtype, self.device)
        return store[numel]

    def release_buffers(self) -> None:
        """Drop this thread's work buffers (they are re-made on the next call)."""
        self._local = threading.local()

    @property
    def state_passes(self) -> int:
        """How many state-sized tensors one forward pass creates (for memory estimates of backprop)."""
        passes = 0
        for op in self.ops:
            if isinstance(op, PermOp):
                passes += 1
            elif op.chunks is not None:
                passes += len(op.chunks)
            else:
                passes += 2 * len(op.groups)
        return passes + 2

    # -- lowering -------------------------------------------------------------------------------
    def _lower(self, fuse: bool) -> list:
        """ASAP schedule into alternating single-qubit and permutation stages."""
        stages: list[list] = []  # [kind, payload]; single: {qubit: [gates]}, perm: [gates]
        last = [-1] * self.n
        for index, gate in enumerate(self.circuit.gates):
            kind = "single" if len(gate.wires) == 1 else "perm"
            target = None
            if fuse:
                start = max(0, max(last[w] for w in gate.wires))
                for s in range(start, len(stages)):
                    if stages[s][0] == kind:
                        target = s
                        break
            if target is None:
                stages.append([kind, {} if kind == "single" else []])
                target = len(stages) - 1
            if kind == "single":
                stages[target][1].setdefault(gate.wires[0], []).append(index)
            else:
                stages[target][1].append(index)
            for w in gate.wires:
                last[w] = target
        ops: list = []
        for kind, payload in stages:
            if kind == "single":
                ops.append(SingleStage([SingleOp(q, payload[q]) for q in sorted(payload)]))
            else:
                ops.append(self._perm_op(payload))
        return ops

    def _perm_op(self, gate_indices: list[int]) -> PermOp:
        idx = torch.arange(self.dim)
        perm = idx
        phase = None
        for g in gate_indices:
            gate = self.circuit.gates[g]
            if gate.name == "cz":
                a, b = gate.wires
                sign = (1 - 2 * (((idx >> a) & 1) & ((idx >> b) & 1))).to(self.real_dtype)
                phase = sign if phase is None else phase * sign
                continue
            step = bit_permutation(gate.name, gate.wires, self.dim)
            perm = perm[step]
            if phase is not None:
                phase = phase[step]
        if perm is idx:
            perm = idx.clone()
        inverse = torch.argsort(perm)
        if phase is not None:
            phase = phase.to(self.dtype).to(self.device)
        return PermOp(perm.to(self.device), inverse.to(self.device), phase)

    def _prepare(self) -> None:
        """Index tensors that let every stage's matrices be built with a handful of batched ops."""
        n, dev = self.n, self.device
        # Gate-matrix table: rotation columns first, then the fixed gates, then the identity.
        self._fixed_index = {name: self.n_rotations + i for i, name in enumerate(_FIXED_NAMES)}
        self._identity_index = self.n_rotations + len(_FIXED_NAMES)
        fixed = [self._fixed[name] for name in _FIXED_NAMES] + [torch.eye(2, dtype=self.dtype, device=dev)]
        self._fixed_table = torch.stack(fixed).unsqueeze(0)  # (1, F + 1, 2, 2)
        kinds = [_ROTATION_KINDS.index(self.circuit.gates[g].name) for g in self.circuit.rotation_gates]
        a_re = torch.zeros(len(kinds), 2, 2, dtype=self.real_dtype)
        a_im = torch.zeros(len(kinds), 2, 2, dtype=self.real_dtype)
        for col, kind in enumerate(kinds):
            if kind == 0:  # rx = c I - i s X
                a_im[col] = torch.tensor([[0.0, -1.0], [-1.0, 0.0]])
            elif kind == 1:  # ry = c I - i s Y
                a_re[col] = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
            else:  # rz = c I - i s Z
                a_im[col] = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
        self._rot_re, self._rot_im = a_re.to(dev), a_im.to(dev)
        self._eye_real = torch.eye(2, dtype=self.real_dtype, device=dev)

        groups: list[SingleOp] = []
        block_counts: dict[int, int] = {}
        qubit_groups: list[int] = []  # groups reduced one qubit at a time
        for op in self.ops:
            if not isinstance(op, SingleStage):
                continue
            op.group_offset = len(groups)
            groups.extend(op.groups)
            sizes = _chunk_sizes(n)
            cost_single = sum(1 if g.qubit in (0, n - 1) else 2 for g in op.groups)
            has_rot = {g.qubit: any(self.circuit.gates[i].param is not None for i in g.gates) for g in op.groups}
            if len(sizes) <= cost_single or n <= SMALL_STATE:
                op.chunks = sizes
                op.chunk_offset, op.reduce = [], []
                bit = 0
                for size in sizes:
                    op.chunk_offset.append(block_counts.get(size, 0))
                    block_counts[size] = block_counts.get(size, 0) + 1
                    op.reduce.append(any(has_rot.get(q, False) for q in range(bit, bit + size)))
                    bit += size
            else:
                op.chunks = None
                op.reduce = [has_rot[g.qubit] for g in op.groups]
                qubit_groups.extend(op.group_offset + j for j in range(len(op.groups)))
        self.groups = groups
        self.max_group = max((len(g.gates) for g in groups), default=1)
        self._block_counts = block_counts
        self._block_sizes = sorted(block_counts)
        self._qubit_groups = qubit_groups
        self._selections = {size: _selection(size, self.real_dtype).to(dev) for size in self._block_sizes}
        L = self.max_group
        slots = torch.full((len(groups), L), self._identity_index, dtype=torch.long)
        generators = torch.zeros(len(groups), L, 2, 2, dtype=self.dtype)
        column_slot = torch.zeros(self.n_rotations, dtype=torch.long)
        for gi, group in enumerate(groups):
            for l, g in enumerate(group.gates):
                gate = self.circuit.gates[g]
                if gate.param is not None:
                    col = self.rotation_column[g]
                    slots[gi, l] = col
                    generators[gi, l] = self._fixed[_GENERATOR[gate.name]].cpu()
                    column_slot[col] = gi * L + l
                else:
                    slots[gi, l] = self._fixed_index[gate.name]
        self._slots = slots.to(dev)
        self._generators = generators.to(dev)
        self._column_slot = column_slot.to(dev)
        # Per block-mode stage: for all n qubits, the group index (len(groups) stands for the identity).
        for op in self.ops:
            if isinstance(op, SingleStage) and op.chunks is not None:
                index = torch.full((n,), len(groups), dtype=torch.long)
                for j, group in enumerate(op.groups):
                    index[group.qubit] = op.group_offset + j
                op.qubit_group = index.to(dev)
        # After the sweep every group's reduced 2x2 matrix is one row of
        # [block partial traces by size | per-qubit reductions | product-state rows (n) | zero].
        base, position = 0, {}
        for size in self._block_sizes:
            position[size] = base
            base += block_counts[size] * size
        qubit_base = base
        env_base = qubit_base + len(qubit_groups)
        zero_row = env_base + n
        self._rows_total = zero_row + 1
        rows = [zero_row] * len(groups)
        for op in self.ops:
            if not isinstance(op, SingleStage):
                continue
            if op.chunks is None:
                continue
            starts = [sum(op.chunks[:c]) for c in range(len(op.chunks))]
            for j, group in enumerate(op.groups):
                c = max(i for i, s in enumerate(starts) if s <= group.qubit)
                size = op.chunks[c]
                rows[op.group_offset + j] = position[size] + op.chunk_offset[c] * size + (group.qubit - starts[c])
        for e, gi in enumerate(qubit_groups):
            rows[gi] = qubit_base + e
        self._group_rows = torch.tensor(rows, dtype=torch.long, device=dev)
        # The first stage acts on |0...0> when no initial state is given: a product state.
        self._product_start = bool(self.ops) and isinstance(self.ops[0], SingleStage)
        self._ket0 = torch.tensor([[1.0, 0.0]], dtype=self.dtype, device=dev)
        if self._product_start:
            first = self.ops[0]
            index = torch.full((n,), len(first.groups), dtype=torch.long)
            for j, group in enumerate(first.groups):
                index[group.qubit] = j
            first.column_index = index.to(dev)
        self._env_first = self._product_start and n >= ENV_MIN_QUBITS
        if self._env_first:
            env_rows = list(rows)
            first = self.ops[0]
            for j, group in enumerate(first.groups):
                env_rows[first.group_offset + j] = env_base + group.qubit
            self._group_rows_env = torch.tensor(env_rows, dtype=torch.long, device=dev)

    # -- gate matrices --------------------------------------------------------------------------
    def rotation_matrices(self, angles: torch.Tensor) -> torch.Tensor:
        """(batch, n_rotations, 2, 2) matrices of every rotation gate."""
        half = angles.to(self.real_dtype) / 2
        c, s = torch.cos(half)[..., None, None], torch.sin(half)[..., None, None]
        real = c * self._eye_real + s * self._rot_re
        imag = s * self._rot_im
        return torch.complex(real, imag).to(self.dtype)

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

    def _slot_matrices(self, angles: torch.Tensor) -> torch.Tensor:
        """(batch, n_groups, L, 2, 2): every gate of every group, identity-padded, in application order."""
        batch = angles.shape[0]
        if self.n_rotations:
            table = torch.cat([self.rotation_matrices(angles), self._fixed_table.expand(batch, -1, -1, -1)], 1)
        else:
            table = self._fixed_table.expand(batch, -1, -1, -1)
        return table[:, self._slots]

    @staticmethod
    def _group_matrices(slot_mats: torch.Tensor) -> torch.Tensor:
        """(batch, n_groups, 2, 2): the fused matrix U_L ... U_1 of every group."""
        fused = slot_mats[:, :, 0]
        for l in range(1, slot_mats.shape[2]):
            fused = slot_mats[:, :, l] @ fused
        return fused

    def _stage_blocks(self, op: SingleStage, fused: torch.Tensor) -> list[torch.Tensor]:
        """Dense blocks (batch, 2^k, 2^k) of a block-mode stage, lowest qubits first."""
        batch = fused.shape[0]
        eye = torch.eye(2, dtype=fused.dtype, device=fused.device).expand(batch, 1, 2, 2)
        per_qubit = torch.cat([fused, eye], 1)[:, op.qubit_group]  # (batch, n, 2, 2)
        blocks = []
        bit, i, sizes = 0, 0, op.chunks
        while i < len(sizes):  # blocks of equal size are built together
            size, j = sizes[i], i
            while j < len(sizes) and sizes[j] == size:
                j += 1
            count = j - i
            mats = per_qubit[:, bit:bit + size * count].reshape(batch, count, size, 2, 2)
            blocks.extend(_kron_matrices(mats).unbind(1))
            bit += size * count
            i = j
        return blocks

    def _matrices(self, angles: torch.Tensor, init_is_zero: bool | None = None):
        """(slot matrices, fused group matrices, blocks per stage), reused from the last no-grad forward."""
        cache = self._forward_cache
        if cache is not None and cache[0].shape == angles.shape and torch.equal(cache[0], angles):
            return cache[1], cache[2], cache[3], cache[4]
        if not self.groups:
            return None, None, {}, init_is_zero
        slot_mats = self._slot_matrices(angles)
        fused = self._group_matrices(slot_mats)
        return slot_mats, fused, {}, init_is_zero

    # -- application ----------------------------------------------------------------------------
    def initial(self, batch: int, init: torch.Tensor | None) -> torch.Tensor:
        if init is not None:
            return init.to(self.dtype).to(self.device)
        psi = torch.zeros(batch, self.dim, dtype=self.dtype, device=self.device)
        psi[:, 0] = 1
        return psi

    def _first_columns(self, op: SingleStage, fused: torch.Tensor) -> torch.Tensor:
        """(batch, n, 2): each qubit's state after the first stage acts on |0>."""
        batch = fused.shape[0]
        first = fused[:, op.group_offset:op.group_offset + len(op.groups), :, 0]
        if len(op.groups) == self.n:  # every qubit has a group, in qubit order
            return first
        zero = self._ket0.to(fused.dtype).expand(batch, 1, 2)
        return torch.cat([first, zero], 1)[:, op.column_index]

    def _product_state(self, op: SingleStage, fused: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The first stage applied to |0...0>: the Kronecker product of each qubit's first column."""
        columns = self._first_columns(op, fused)  # (batch, n, 2)
        batch = columns.shape[0]
        sizes = _chunk_sizes(self.n) if self.n > SMALL_STATE else [self.n]
        parts, bit = [], 0
        for size in sizes:
            parts.append(_kron_vectors(columns[:, bit:bit + size]))
            bit += size
        psi = parts[0]
        for i, part in enumerate(parts[1:]):
            if out is not None and i == len(parts) - 2:
                target = out[:batch * part.shape[1] * psi.shape[1]].view(batch, part.shape[1], psi.shape[1])
                psi = torch.mul(part[:, :, None], psi[:, None, :], out=target).view(batch, -1)
            else:
                psi = (part[:, :, None] * psi[:, None, :]).reshape(batch, -1)
        return psi

    def run(self, angles: torch.Tensor, init: torch.Tensor | None = None) -> torch.Tensor:
        """Final states (batch, 2**n); differentiable through torch autograd (the backprop method)."""
        angles = angles.to(self.device)
        batch = angles.shape[0]
        tracking = torch.is_grad_enabled() and (angles.requires_grad or (init is not None and init.requires_grad))
        slot_mats = self._slot_matrices(angles) if self.groups else None
        fused = self._group_matrices(slot_mats) if self.groups else None
        blocks: dict[int, list[torch.Tensor]] = {}
        ops = self.ops
        buffers = None if tracking else self._buffers(batch * self.dim)
        if init is None and self._product_start:
            ops = ops[1:]
            # An intermediate state may live in a work buffer; the result of the call never does.
            work = buffers.other(angles) if buffers is not None and ops else None
            psi = self._product_state(self.ops[0], fused, work)
        else:
            psi = self.initial(batch, init)
        last = len(ops) - 1
        for position, op in enumerate(ops):
            if isinstance(op, PermOp):
                if buffers is None:
                    psi = permute(psi, op)
                else:
                    # The result leaves this call: the last op writes fresh memory, never a work buffer.
                    out = (buffers.fresh() if position == last else buffers.other(psi)).view(batch, self.dim)
                    torch.gather(psi, 1, op.perm.expand(batch, -1), out=out)
                    psi = out.mul_(op.phase) if op.phase is not None else out
            elif op.chunks is not None:
                stage_blocks = blocks[id(op)] = self._stage_blocks(op, fused)
                for c, block in enumerate(stage_blocks):
                    size = block.shape[-1]
                    source = psi.reshape(batch, -1, size).transpose(1, 2)
                    if buffers is None:
                        psi = torch.matmul(block, source)
                    else:
                        final = position == last and c == len(stage_blocks) - 1
                        target = buffers.fresh() if final else buffers.other(psi)
                        psi = torch.bmm(block, source, out=target.view(batch, size, -1))
                psi = psi.reshape(batch, -1)
            else:
                for j, group in enumerate(op.groups):
                    psi = apply_single(psi, fused[:, op.group_offset + j], group.qubit)
        if not tracking:
            self._forward_cache = (angles.detach().clone(), slot_mats, fused, blocks, init is None)
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

    @staticmethod
    def _signs(masks: list[int], bits: int, offset: int) -> torch.Tensor:
        """(2**bits, k) of (-1)^popcount(i & mask_k >> offset) for the index bits [offset, offset + bits)."""
        idx = torch.arange(1 << bits)
        columns = []
        for mask in masks:
            part = (mask >> offset) & ((1 << bits) - 1)
            parity = torch.zeros(1 << bits, dtype=torch.int64)
            for q in range(bits):
                if (part >> q) & 1:
                    parity ^= (idx >> q) & 1
            columns.append(1 - 2 * parity)
        return torch.stack(columns, 1)

    def _readout_terms(self, plan: ReadoutPlan) -> list:
        """Per X/Y flip mask: (terms, flip index or None, low signs, high signs or None, is_real, low signs twice).

        A Pauli term's sign over basis states factorises into the low and high halves of the index,
        so large circuits never build a (2**n, terms) matrix.
        """
        if plan in self._fast_readout:
            return self._fast_readout[plan]
        groups: dict[int, list[int]] = {}
        for k, pauli in enumerate(plan.paulis):
            xmask = sum(1 << q for q, ch in enumerate(pauli) if ch in "XY")
            groups.setdefault(xmask, []).append(k)
        result = []
        low_bits = self.n // 2
        for xmask, terms in groups.items():
            zmasks = [sum(1 << q for q, ch in enumerate(plan.paulis[k]) if ch in "YZ") for k in terms]
            factors = torch.tensor([(-1j) ** plan.paulis[k].count("Y") for k in terms], dtype=torch.complex128)
            is_real = bool((factors.imag == 0).all())
            if self.dim * len(terms) <= DENSE_READOUT:
                low = self._signs(zmasks, self.n, 0).to(torch.complex128) * factors
                high = None
            else:
                low = self._signs(zmasks, low_bits, 0).to(torch.complex128)
                high = self._signs(zmasks, self.n - low_bits, low_bits).to(torch.complex128) * factors
            cast = (lambda t: t.real.to(self.real_dtype)) if is_real else (lambda t: t.to(self.dtype))
            flip = (torch.arange(self.dim) ^ xmask).to(self.device) if xmask else None
            low = cast(low).to(self.device)
            # Signs repeated for the real and imaginary parts: |ψ|² summed inside the product.
            low2 = low.repeat_interleave(2, dim=0) if flip is None and is_real else None
            result.append((torch.tensor(terms, device=self.device), flip, low,
                           None if high is None else cast(high).to(self.device), is_real, low2))
        self._fast_readout[plan] = result
        return result

    def expectations(self, psi: torch.Tensor, plan: ReadoutPlan) -> torch.Tensor:
        """Per-term Pauli expectations (batch, n_terms), differentiable."""
        batch = psi.shape[0]
        groups = self._readout_terms(plan)
        out = None
        squares = None
        for terms, flip, low, high, is_real, low2 in groups:
            if flip is None:
                if squares is None:
                    pr = torch.view_as_real(psi)
                    buffers = None if (torch.is_grad_enabled() and psi.requires_grad) else \
                        self._buffers(batch * self.dim)
                    if buffers is not None and psi.is_contiguous():
                        work = torch.view_as_real(buffers.other(psi).view(batch, self.dim))
                        squares = torch.mul(pr, pr, out=work).view(batch, -1)
                    else:
                        squares = (pr * pr).reshape(batch, -1)  # (batch, 2 * dim): re², im² interleaved
                prod, low = squares, low2
            else:
                flipped = torch.gather(psi, 1, flip.expand(batch, -1))
                prod = psi.conj() * flipped
                if is_real:
                    prod = prod.real
            if high is None:
                values = prod @ low
            else:
                values = ((prod.reshape(batch, high.shape[0], -1) @ low) * high).sum(1)
            if not is_real:
                values = values.real
            if len(groups) == 1:
                return values.to(self.real_dtype)
            if out is None:
                out = values.new_zeros(batch, len(plan.paulis))
            out = out.index_copy(1, terms, values.to(out.dtype))
        return out

    def _marginal_index(self, plan: ReadoutPlan) -> torch.Tensor:
        idx = torch.arange(self.dim, device=self.device)
        out = torch.zeros_like(idx)
        for j, q in enumerate(plan.marginal):
            out |= ((idx >> q) & 1) << j
        return out

    def probabilities(self, psi: torch.Tensor, plan: ReadoutPlan) -> torch.Tensor:
        pr = torch.view_as_real(psi)
        probs = (pr * pr).sum(-1)
        if tuple(plan.marginal) == tuple(range(self.n)):
            return probs
        out = probs.new_zeros(psi.shape[0], plan.width)
        return out.index_add(1, self._marginal_index(plan), probs)

    def readout(self, psi: torch.Tensor, plan: ReadoutPlan) -> torch.Tensor:
        return self.expectations(psi, plan) if plan.mode == "estimator" else self.probabilities(psi, plan)

    def observable_action(self, psi: torch.Tensor, plan: ReadoutPlan, upstream: torch.Tensor) -> torch.Tensor:
        """λ = Σ_k upstream_k O_k ψ: the adjoint state seeded by the upstream gradient of the readout."""
        upstream = upstream.to(self.real_dtype)
        batch = psi.shape[0]
        if plan.mode == "sampler":
            if tuple(plan.marginal) == tuple(range(self.n)):
                return psi * upstream
            weights = upstream[:, self._marginal_index(plan)]
            return psi * weights
        lam = None
        for terms, flip, low, high, is_real, _ in self._readout_terms(plan):
            # Complex weights straight from the product: complex x complex is one pass, real x complex is not.
            g = upstream[:, terms].to(self.dtype)
            low = low.to(self.dtype)
            if high is None:
                weight = g @ low.transpose(0, 1)
            else:
                weight = ((g[:, None, :] * high.to(self.dtype)) @ low.transpose(0, 1)).reshape(batch, -1)
            source = psi if flip is None else torch.gather(psi, 1, flip.expand(batch, -1))
            if lam is None:
                lam = torch.mul(source, weight, out=weight)
            else:
                lam = lam + source * weight
        return lam

    # -- adjoint differentiation ----------------------------------------------------------------
    def adjoint_vjp(self, psi: torch.Tensor, lam: torch.Tensor, angles: torch.Tensor,
                    need_initial: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reverse sweep: ∂/∂θ_g of Re⟨λ_final|ψ⟩-weighted readouts for every rotation gate.

        psi is the final state, lam = Σ_k g_k O_k ψ. Walks the stages backwards, undoing each on both
        vectors (in reused work buffers). Per dense block one reduction gives
        T[j, i] = Σ_rest conj(λ[j, rest]) ψ[i, rest] on the block's qubits; after the sweep every
        rotation gradient follows from 2x2 algebra on the partial traces of these, for all stages
        at once. When the first stage acted on |0...0>, ψ after it is a product state: its qubits'
        reductions come from contracting λ with the other qubits' states, and the sweep stops there.
        Returns (grad of angles (batch, n_rot), grad of the real initial state or None).
        """
        with torch.no_grad():
            batch, dim = psi.shape[0], self.dim
            angles = angles.to(self.device)
            slot_mats, fused, blocks, init_is_zero = self._matrices(angles)
            if init_is_zero is None:  # no forward cached for these angles: amplitude circuits start from init
                init_is_zero = not self.circuit.amplitude_inputs
            ops = self.ops
            use_env = self._env_first and init_is_zero and not need_initial
            stop = 1 if use_env else 0
            buffers = self._buffers(batch * dim)

            def target(*live: torch.Tensor) -> torch.Tensor | None:
                return None if buffers is None else buffers.other(*live).view(batch, dim)

            psi_t, lam_t = psi.to(self.dtype), lam.to(self.dtype)
            reductions: dict[int, list] = {size: [None] * count for size, count in self._block_counts.items()}
            qubit_rows: dict[int, torch.Tensor] = {}
            env_rows = None
            for position in range(len(ops) - 1, stop - 1, -1):
                op = ops[position]
                if isinstance(op, PermOp):
                    lam_t = _unpermute_into(lam_t, op, target(psi_t, lam_t))
                    if not (use_env and position == stop):  # below the product state only λ is needed
                        psi_t = _unpermute_into(psi_t, op, target(psi_t, lam_t))
                    continue
                final = position == 0 and not need_initial
                # Below the last stage that reduces, ψ is not needed (the product state uses λ alone).
                psi_last = position == stop or (use_env and position == stop + 1 and isinstance(ops[stop], PermOp))
                if op.chunks is not None:
                    stage_blocks = blocks.get(id(op)) or self._stage_blocks(op, fused)
                    for c, (size, block) in enumerate(zip(op.chunks, stage_blocks)):
                        if op.reduce[c]:
                            reductions[size][op.chunk_offset[c]] = _gram(psi_t, lam_t, 1 << size)
                        if final and not any(op.reduce[c + 1:]):
                            break
                        undo = block.mH
                        if not (psi_last and use_env and not any(op.reduce[c + 1:])):
                            psi_t = _apply_block(psi_t, undo, target(psi_t, lam_t))
                        lam_t = _apply_block(lam_t, undo, target(psi_t, lam_t))
                else:
                    for j, group in enumerate(op.groups):
                        gi = op.group_offset + j
                        if op.reduce[j]:
                            lo = 1 << group.qubit
                            qubit_rows[gi] = torch.einsum("bhil,bhjl->bji", psi_t.view(batch, -1, 2, lo),
                                                          lam_t.view(batch, -1, 2, lo).conj())
                        undo = fused[:, gi].mH
                        psi_t = apply_single(psi_t, undo, group.qubit)
                        lam_t = apply_single(lam_t, undo, group.qubit)
            if use_env:
                env_rows = self._environment_rows(lam_t, self._first_columns(ops[0], fused))
            grads = self._rotation_grads(slot_mats, reductions, qubit_rows, env_rows, batch)
            initial_grad = 2 * lam_t.real if need_initial else None
        return grads, initial_grad

    def _environment_rows(self, lam: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """(batch, n, 2, 2) of T_q = conj(μ_q) v_q^T for a product state ⊗ v_q, where μ_q is λ contracted
        with conj(v_p) on every other qubit p: two reads of λ, then ever smaller tensors."""
        batch = lam.shape[0]
        conj = columns.conj()
        leaves: list[torch.Tensor] = []  # (batch, size, 2) per leaf, in qubit order

        def split(tensor: torch.Tensor, lo: int, hi: int) -> None:
            if hi - lo <= ENV_LEAF:
                # A few qubits left: for each q, weight by the other qubits' states and sum by bit q.
                size = hi - lo
                others = _kron_others(conj[:, lo:hi])  # (batch, size, 2^size)
                leaves.append(torch.einsum("bqi,qic->bqc", others * tensor.unsqueeze(1),
                                           _bit_selection(size, lam.device, lam.dtype)))
                return
            mid = (lo + hi) // 2
            low_state = _kron_vectors(conj[:, lo:mid])  # (batch, 2^(mid-lo))
            high_state = _kron_vectors(conj[:, mid:hi])
            matrix = tensor.view(batch, 1 << (hi - mid), 1 << (mid - lo))
            split(torch.bmm(high_state.unsqueeze(1), matrix).squeeze(1), lo, mid)
            split(torch.bmm(matrix, low_state.unsqueeze(2)).squeeze(2), mid, hi)

        split(lam.reshape(batch, -1), 0, self.n)
        mu = leaves[0] if len(leaves) == 1 else torch.cat(leaves, 1)  # (batch, n, 2)
        return mu.conj()[..., :, None] * columns[..., None, :]

    def _rotation_grads(self, slot_mats, reductions, qubit_rows, env_rows, batch) -> torch.Tensor:
        if not self.n_rotations:
            return torch.zeros(batch, 0, dtype=self.real_dtype, device=self.device)
        parts = []
        for size in self._block_sizes:
            width = 1 << size
            items = reductions[size]
            zero = None
            filled = []
            for item in items:
                if item is None:
                    if zero is None:
                        zero = torch.zeros(batch, 2 * width, 2 * width, dtype=self.real_dtype, device=self.device)
                    item = zero
                filled.append(item)
            gram = filled[0].unsqueeze(1) if len(filled) == 1 else torch.stack(filled, 1)  # (batch, count, 2D, 2D)
            traces = gram.reshape(batch, len(filled), -1) @ self._selections[size]  # (batch, count, 8 * size)
            parts.append(torch.view_as_complex(traces.view(batch, len(filled) * size, 2, 2, 2)).to(self.dtype))
        zero2 = torch.zeros(batch, 1, 2, 2, dtype=self.dtype, device=self.device)
        if self._qubit_groups:
            parts.append(torch.stack([qubit_rows.get(gi, zero2[:, 0]) for gi in self._qubit_groups], 1))
        if env_rows is not None:
            parts.append(env_rows.to(self.dtype))
            index = self._group_rows_env
        else:
            parts.append(torch.zeros(batch, self.n, 2, 2, dtype=self.dtype, device=self.device))
            index = self._group_rows
        parts.append(zero2)
        rows = torch.cat(parts, 1)[:, index]  # (batch, G, 2, 2): T = R^T per group
        reduced = rows.transpose(-1, -2)
        # Suffix products W_l = U_L ... U_{l+1} (W_L = I); gradient of slot l = Im tr(G_l W_l^† R W_l).
        L = slot_mats.shape[2]
        if L > 1:
            suffix = [None] * L
            acc = torch.eye(2, dtype=self.dtype, device=self.device).expand_as(slot_mats[:, :, 0])
            suffix[L - 1] = acc
            for l in range(L - 1, 0, -1):
                acc = acc @ slot_mats[:, :, l]
                suffix[l - 1] = acc
            w = torch.stack(suffix, 2)  # (batch, G, L, 2, 2)
            local = w.mH @ reduced.unsqueeze(2) @ w
        else:
            local = reduced.unsqueeze(2)
        values = (self._generators * local.transpose(-1, -2)).sum((-1, -2)).imag  # tr(G A) = Σ G[i,j] A[j,i]
        return values.reshape(batch, -1)[:, self._column_slot].to(self.real_dtype)
