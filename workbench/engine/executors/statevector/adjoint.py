"""The reverse sweep of the adjoint method on the torch statevector engine.

psi is the final state and lam = Σ_k g_k O_k ψ. The sweep walks the program's stages backwards,
undoing each on both vectors; per dense block one reduction gives the block's correlation
T[j, i] = Σ_rest conj(λ[j, rest]) ψ[i, rest], and after the sweep every rotation gradient follows from
2x2 algebra on the partial traces of these, for all stages at once. When the first stage acted on
|0...0>, ψ after it is a product state: its qubits' reductions come from contracting λ with the other
qubits' states, and the sweep stops there.
"""

from __future__ import annotations

import torch

from .kernels import ENV_LEAF, PermOp, apply_block, apply_single, bit_selection, gram, kron_others, kron_vectors, \
    unpermute_into


class AdjointSweep:
    """Mixed into StatevectorProgram: the adjoint vector-Jacobian product over its lowered stages."""

    # -- adjoint differentiation ----------------------------------------------------------------
    def adjoint_vjp(self, psi: torch.Tensor, lam: torch.Tensor, angles: torch.Tensor, need_initial: bool = False,
                    initial: torch.Tensor | None = None,
                    phase_known: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
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
            # The product-state shortcut contracts λ with states computed here from the angles, so it needs ψ
            # (and λ) with their true global phase; the full sweep only pairs λ with ψ, where a phase cancels.
            use_env = self._env_first and init_is_zero and not need_initial and phase_known
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
                    lam_t = unpermute_into(lam_t, op, target(psi_t, lam_t))
                    if not (use_env and position == stop):  # below the product state only λ is needed
                        psi_t = unpermute_into(psi_t, op, target(psi_t, lam_t))
                    continue
                final = position == 0 and not need_initial
                # Below the last stage that reduces, ψ is not needed (the product state uses λ alone).
                psi_last = position == stop or (use_env and position == stop + 1 and isinstance(ops[stop], PermOp))
                if op.chunks is not None:
                    stage_blocks = blocks.get(id(op)) or self._stage_blocks(op, fused)
                    for c, (size, block) in enumerate(zip(op.chunks, stage_blocks)):
                        if op.reduce[c]:
                            reductions[size][op.chunk_offset[c]] = gram(psi_t, lam_t, 1 << size)
                        if final and not any(op.reduce[c + 1:]):
                            break
                        undo = block.mH
                        if not (psi_last and use_env and not any(op.reduce[c + 1:])):
                            psi_t = apply_block(psi_t, undo, target(psi_t, lam_t))
                        lam_t = apply_block(lam_t, undo, target(psi_t, lam_t))
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
            initial_grad = None
            if need_initial:
                if initial is not None:
                    # psi may carry a global phase e^{ia} (a state read back from a density matrix has none of
                    # its own); λ carries the same one and the real part of λ would shrink by cos(a). Undone to
                    # the start, psi is e^{ia} times the real initial vector: divide the phase out.
                    overlap = (initial.to(psi_t.dtype).conj() * psi_t).sum(1, keepdim=True)
                    lam_t = lam_t * (overlap.conj() / overlap.abs().clamp_min(1e-300))
                initial_grad = 2 * lam_t.real
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
                others = kron_others(conj[:, lo:hi])  # (batch, size, 2^size)
                leaves.append(torch.einsum("bqi,qic->bqc", others * tensor.unsqueeze(1),
                                           bit_selection(size, lam.device, lam.dtype)))
                return
            mid = (lo + hi) // 2
            low_state = kron_vectors(conj[:, lo:mid])  # (batch, 2^(mid-lo))
            high_state = kron_vectors(conj[:, mid:hi])
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
