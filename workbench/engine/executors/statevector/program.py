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

import torch

from ...circuits import Circuit, ReadoutPlan
from ...pauli import group_by_flip, marginal_index, sign_vector, y_factor, z_mask
from .adjoint import AdjointSweep
from .kernels import (BUFFER_MIN, DENSE_READOUT, ENV_MIN_QUBITS, FIXED_GATES, FIXED_NAMES, GENERATOR, PERSISTENT_BYTES,
                      ROTATION_KINDS, SMALL_STATE, PermOp, SingleOp, SingleStage, WorkBuffers, apply_single,
                      bit_permutation, block_selection, chunk_sizes, kron_matrices, kron_vectors, permute)


class StatevectorProgram(AdjointSweep):
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
        self._fixed = {k: torch.tensor(v, dtype=dtype, device=self.device) for k, v in FIXED_GATES.items()}
        self.ops = self._lower(fuse)
        self._prepare()
        self._fast_readout: dict = {}
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

    def _buffers(self, numel: int) -> WorkBuffers | None:
        """Work buffers for passes without autograd: kept per thread between calls while small enough."""
        if numel < BUFFER_MIN:
            return None
        itemsize = 16 if self.dtype == torch.complex128 else 8
        # A call holds at most three buffers (ψ, λ and the next output).
        if 3 * numel * itemsize > PERSISTENT_BYTES:
            return WorkBuffers(numel, self.dtype, self.device)
        store = getattr(self._local, "buffers", None)
        if store is None:
            store = self._local.buffers = {}
        if numel not in store:
            if 3 * itemsize * (sum(store) + numel) > PERSISTENT_BYTES:
                store.clear()
            store[numel] = WorkBuffers(numel, self.dtype, self.device)
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
        self._fixed_index = {name: self.n_rotations + i for i, name in enumerate(FIXED_NAMES)}
        self._identity_index = self.n_rotations + len(FIXED_NAMES)
        fixed = [self._fixed[name] for name in FIXED_NAMES] + [torch.eye(2, dtype=self.dtype, device=dev)]
        self._fixed_table = torch.stack(fixed).unsqueeze(0)  # (1, F + 1, 2, 2)
        kinds = [ROTATION_KINDS.index(self.circuit.gates[g].name) for g in self.circuit.rotation_gates]
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
            sizes = chunk_sizes(n)
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
        self._selections = {size: block_selection(size, self.real_dtype).to(dev) for size in self._block_sizes}
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
                    generators[gi, l] = self._fixed[GENERATOR[gate.name]].cpu()
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

    def gate_matrix(self, gate_index: int, rot: torch.Tensor) -> torch.Tensor:
        gate = self.circuit.gates[gate_index]
        if gate.param is not None:
            return rot[:, self.rotation_column[gate_index]]
        return self._fixed[gate.name]

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
            blocks.extend(kron_matrices(mats).unbind(1))
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
        sizes = chunk_sizes(self.n) if self.n > SMALL_STATE else [self.n]
        parts, bit = [], 0
        for size in sizes:
            parts.append(kron_vectors(columns[:, bit:bit + size]))
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
    def _readout_terms(self, plan: ReadoutPlan) -> list:
        """Per X/Y flip mask: (terms, flip index or None, low signs, high signs or None, is_real, low signs twice).

        A Pauli term's sign over basis states factorises into the low and high halves of the index,
        so large circuits never build a (2**n, terms) matrix.
        """
        if plan in self._fast_readout:
            return self._fast_readout[plan]
        result = []
        low_bits = self.n // 2
        for xmask, terms in group_by_flip(plan.paulis).items():
            zmasks = [z_mask(plan.paulis[k]) for k in terms]
            factors = torch.tensor([y_factor(plan.paulis[k]) for k in terms], dtype=torch.complex128)
            is_real = bool((factors.imag == 0).all())
            if self.dim * len(terms) <= DENSE_READOUT:
                low = _signs(zmasks, self.n, 0).to(torch.complex128) * factors
                high = None
            else:
                low = _signs(zmasks, low_bits, 0).to(torch.complex128)
                high = _signs(zmasks, self.n - low_bits, low_bits).to(torch.complex128) * factors
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

    def marginal_index(self, plan: ReadoutPlan) -> torch.Tensor:
        """(2**n,) outcome index on the sampler's kept qubits, cached per readout."""
        key = ("marginal", plan.marginal)
        if key not in self._fast_readout:
            self._fast_readout[key] = marginal_index(self.n, plan.marginal, self.device)
        return self._fast_readout[key]

    def probabilities(self, psi: torch.Tensor, plan: ReadoutPlan) -> torch.Tensor:
        pr = torch.view_as_real(psi)
        probs = (pr * pr).sum(-1)
        if tuple(plan.marginal) == tuple(range(self.n)):
            return probs
        out = probs.new_zeros(psi.shape[0], plan.width)
        return out.index_add(1, self.marginal_index(plan), probs)

    def readout(self, psi: torch.Tensor, plan: ReadoutPlan) -> torch.Tensor:
        return self.expectations(psi, plan) if plan.mode == "estimator" else self.probabilities(psi, plan)

    def observable_action(self, psi: torch.Tensor, plan: ReadoutPlan, upstream: torch.Tensor) -> torch.Tensor:
        """λ = Σ_k upstream_k O_k ψ: the adjoint state seeded by the upstream gradient of the readout."""
        upstream = upstream.to(self.real_dtype)
        batch = psi.shape[0]
        if plan.mode == "sampler":
            if tuple(plan.marginal) == tuple(range(self.n)):
                return psi * upstream
            weights = upstream[:, self.marginal_index(plan)]
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


def _signs(masks: list[int], bits: int, offset: int) -> torch.Tensor:
    """(2**bits, k) of (-1)^popcount(i & mask_k >> offset) for the index bits [offset, offset + bits)."""
    return torch.stack([sign_vector(mask, bits, offset) for mask in masks], 1)
