"""Pauli strings and bit readouts: the one place for Pauli matrices, term grouping and marginals.

A Pauli string has one character of I/X/Y/Z per qubit; character q acts on qubit q, which is bit q of
the basis-state index. P maps |r⟩ to a phase times |r ^ xmask⟩ (xmask: the X/Y qubits), so
tr(P ρ) = Σ_r phase(r) ρ[r ^ xmask, r] with phase(r) = (-i)^{#Y} (-1)^{popcount(r & zmask)}
(zmask: the Y/Z qubits). Terms that share an xmask read the same pairs of amplitudes, so readouts
group them.
"""

from __future__ import annotations

import numpy as np
import torch

PAULI_MATRICES: dict[str, list[list[complex]]] = {
    "I": [[1, 0], [0, 1]],
    "X": [[0, 1], [1, 0]],
    "Y": [[0, -1j], [1j, 0]],
    "Z": [[1, 0], [0, -1]],
}


def pauli_tensor(letter: str, dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    """The 2x2 matrix of one Pauli letter (I, X, Y or Z, either case)."""
    return torch.tensor(PAULI_MATRICES[letter.upper()], dtype=dtype)


def x_mask(pauli: str) -> int:
    """Bits of the qubits the string flips (X or Y)."""
    return sum(1 << q for q, ch in enumerate(pauli) if ch in "XY")


def z_mask(pauli: str) -> int:
    """Bits of the qubits whose value sets the sign (Y or Z)."""
    return sum(1 << q for q, ch in enumerate(pauli) if ch in "YZ")


def y_factor(pauli: str) -> complex:
    """(-i)^{#Y}: the constant part of the string's phase."""
    return (-1j) ** pauli.count("Y")


def group_by_flip(paulis: tuple[str, ...] | list[str]) -> dict[int, list[int]]:
    """Term indices grouped by their X/Y flip mask, in first-seen order."""
    groups: dict[int, list[int]] = {}
    for k, pauli in enumerate(paulis):
        groups.setdefault(x_mask(pauli), []).append(k)
    return groups


def sign_vector(zmask: int, bits: int, offset: int = 0) -> torch.Tensor:
    """(2**bits,) int64 of (-1)^popcount(i & (zmask >> offset)) over the index bits [offset, offset + bits)."""
    idx = torch.arange(1 << bits)
    part = (zmask >> offset) & ((1 << bits) - 1)
    parity = torch.zeros(1 << bits, dtype=torch.int64)
    for q in range(bits):
        if (part >> q) & 1:
            parity ^= (idx >> q) & 1
    return 1 - 2 * parity


def term_phases(pauli: str, n_qubits: int) -> torch.Tensor:
    """(2**n,) complex128 phase(r) with tr(P ρ) = Σ_r phase(r) ρ[r ^ xmask, r] and ⟨ψ|P|ψ⟩ alike."""
    return sign_vector(z_mask(pauli), n_qubits).to(torch.complex128) * y_factor(pauli)


def marginal_index(n_qubits: int, marginal: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """(2**n,) index of each basis state's outcome on the kept qubits (kept qubit j is bit j of the outcome)."""
    idx = torch.arange(2**n_qubits, device=device)
    out = torch.zeros_like(idx)
    for j, q in enumerate(marginal):
        out |= ((idx >> q) & 1) << j
    return out


def density_expectation(rho: np.ndarray, pauli: str) -> np.ndarray:
    """tr(P ρ) for a batch of density matrices ρ[b, i, j] (numpy)."""
    dim = rho.shape[-1]
    idx = np.arange(dim)
    phase = term_phases(pauli, int(dim).bit_length() - 1).numpy()
    return (rho[:, idx ^ x_mask(pauli), idx] * phase).sum(axis=1).real


def tfim_terms(n_qubits: int) -> list[str]:
    """Open transverse-field Ising chain: the n-1 ZZ bonds, then the n X fields (character i acts on qubit i)."""
    n = int(n_qubits)
    bonds = ["I" * i + "ZZ" + "I" * (n - i - 2) for i in range(n - 1)]
    fields = ["I" * i + "X" + "I" * (n - i - 1) for i in range(n)]
    return bonds + fields
