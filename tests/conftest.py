"""Shared fixtures and an independent dense-matrix oracle for the core-engine tests.

The oracle below rebuilds every circuit straight from the spec's documented semantics with numpy
Kronecker products (2**n x 2**n matrices, qubit q = bit q of the basis index). It shares no code with
workbench.engine (circuits, statevector, density matrix), so a bug there cannot hide in the reference.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

# Before anything loads torch: CUDA-Q's OpenMP parallel regions run on the first OpenMP runtime loaded
# (torch's libgomp). With the default active wait policy its threads spin at every barrier, and on a busy
# machine small CUDA-Q calls became 10-100x slower (20 three-qubit observe calls: 4 s instead of 20 ms).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore", message=".*cudaq-logical.*")
warnings.filterwarnings("ignore", message=".*sample.*observe.*")

# ------------------------------------------------------------------------------------------------
# Gates

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
Z = np.array([[1, 0], [0, -1]], dtype=complex)
H = np.array([[1, 1], [1, -1]], dtype=complex) / math.sqrt(2)
S = np.diag([1, 1j])
T = np.diag([1, np.exp(1j * math.pi / 4)])
PAULI = {"I": I2, "X": X, "Y": Y, "Z": Z}
P0 = np.diag([1, 0]).astype(complex)
P1 = np.diag([0, 1]).astype(complex)


def rot(name: str, theta: float) -> np.ndarray:
    gen = {"rx": X, "ry": Y, "rz": Z}[name]
    return math.cos(theta / 2) * I2 - 1j * math.sin(theta / 2) * gen


def on(n: int, ops: dict[int, np.ndarray]) -> np.ndarray:
    """Kronecker product placing ops[q] on qubit q (bit q of the index), identity elsewhere."""
    out = np.array([[1.0 + 0j]])
    for q in reversed(range(n)):
        out = np.kron(out, ops.get(q, I2))
    return out


def cnot(n: int, c: int, t: int) -> np.ndarray:
    return on(n, {c: P0}) + on(n, {c: P1, t: X})


def cz(n: int, a: int, b: int) -> np.ndarray:
    return on(n, {a: P0}) + on(n, {a: P1, b: Z})


def swap(n: int, a: int, b: int) -> np.ndarray:
    return sum(on(n, {a: PAULI[p], b: PAULI[p]}) for p in "IXYZ") / 2


def zz_rotation(n: int, a: int, b: int, theta: float) -> np.ndarray:
    """exp(-i theta Z_a Z_b / 2), built as a diagonal (independent of the CNOT-RZ-CNOT lowering)."""
    zz = np.diag(on(n, {a: Z, b: Z})).real
    return np.diag(np.exp(-0.5j * theta * zz))


def pauli_matrix(pauli: str) -> np.ndarray:
    """Character i acts on qubit i."""
    return on(len(pauli), {q: PAULI[ch] for q, ch in enumerate(pauli)})


FIXED = {"h": H, "x": X, "y": Y, "z": Z, "s": S, "t": T}

# ------------------------------------------------------------------------------------------------
# The circuit of a Quantum block, as dense operations, from the spec's documented semantics.


def _pairs(pattern: str, n: int) -> list[tuple[int, int]]:
    if n < 2 or pattern == "none":
        return []
    if pattern == "linear":
        return [(i, i + 1) for i in range(n - 1)]
    if pattern == "ring":
        return [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(0, 1)]
    return [(a, b) for a in range(n) for b in range(a + 1, n)]


def block_ops(block: dict, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(initial state, list of dense unitaries) for one sample x and weights w of a quantum block dict."""
    n = block.get("qubits", 4)
    enc = block.get("encoding", "angle")
    s = block.get("input_scaling", 1.0)
    rotation = block.get("rotation", "ry")
    ansatz = block.get("ansatz", "hardware_efficient")
    depth = block.get("depth", 2)
    role = block.get("role", "intermediate")
    dim = 2**n
    psi0 = np.zeros(dim, dtype=complex)
    psi0[0] = 1
    ops: list[np.ndarray] = []
    if role == "parameter_input":
        w, x = np.asarray(x, dtype=float), np.zeros(0)

    def encode() -> None:
        if enc in ("angle", "reupload"):
            for q in range(n):
                ops.append(on(n, {q: rot(rotation, s * x[q])}))
        elif enc == "dense_angle":
            for q in range(n):
                ops.append(on(n, {q: rot("ry", s * x[2 * q])}))
                ops.append(on(n, {q: rot("rz", s * x[2 * q + 1])}))
        elif enc == "iqp":
            for q in range(n):
                ops.append(on(n, {q: H}))
            for q in range(n):
                ops.append(on(n, {q: rot("rz", s * x[q])}))
            for a in range(n):
                for b in range(a + 1, n):
                    ops.append(zz_rotation(n, a, b, s * s * x[a] * x[b]))

    if enc == "amplitude":
        v = np.zeros(dim)
        v[: len(x)] = x
        psi0 = (v / np.linalg.norm(v)).astype(complex)
    k = 0
    if ansatz == "custom":
        if enc not in ("none", "amplitude"):
            encode()
        for g in block["gates"]:
            name, wires = g["gate"], g["wires"]
            src = g.get("source")
            if src == "weight":
                theta = g.get("scale", 1.0) * w[g["index"]]
            elif src == "input":
                theta = g.get("scale", 1.0) * x[g["index"]]
            elif src == "const":
                theta = g["value"]
            if name in FIXED:
                ops.append(on(n, {wires[0]: FIXED[name]}))
            elif name in ("rx", "ry", "rz"):
                ops.append(on(n, {wires[0]: rot(name, theta)}))
            elif name == "cx":
                ops.append(cnot(n, *wires))
            elif name == "cz":
                ops.append(cz(n, *wires))
            elif name == "swap":
                ops.append(swap(n, *wires))
            elif name == "rzz":
                ops.append(zz_rotation(n, wires[0], wires[1], theta))
        return psi0, ops
    for layer in range(depth):
        if layer == 0 or enc == "reupload":
            encode()
        if ansatz == "hardware_efficient":
            for q in range(n):
                for r in block.get("rotations", ["ry", "rz"]):
                    ops.append(on(n, {q: rot(r, w[k])}))
                    k += 1
            for a, b in _pairs(block.get("entanglement", "ring"), n):
                ops.append(cnot(n, a, b))
        elif ansatz == "strongly_entangling":
            for q in range(n):
                for r in ("rz", "ry", "rz"):
                    ops.append(on(n, {q: rot(r, w[k])}))
                    k += 1
            if n > 1:
                reach = layer % (n - 1) + 1
                for q in range(n):
                    ops.append(cnot(n, q, (q + reach) % n))
        elif ansatz == "basic_entangler":
            for q in range(n):
                ops.append(on(n, {q: rot("rx", w[k])}))
                k += 1
            for a, b in _pairs("ring", n):
                ops.append(cnot(n, a, b))
    return psi0, ops


def final_state(block: dict, x, w) -> np.ndarray:
    psi, ops = block_ops(block, np.asarray(x, dtype=float), np.asarray(w, dtype=float))
    for u in ops:
        psi = u @ psi
    return psi


def default_paulis(n: int) -> list[str]:
    return ["I" * q + "Z" + "I" * (n - q - 1) for q in range(n)]


def readout(block: dict, rho_or_psi: np.ndarray) -> np.ndarray:
    """The block's readout from a state vector or a density matrix."""
    n = block.get("qubits", 4)
    r = block.get("readout", {}) or {}
    rho = rho_or_psi if rho_or_psi.ndim == 2 else np.outer(rho_or_psi, rho_or_psi.conj())
    if r.get("mode", "estimator") == "sampler":
        probs = np.diag(rho).real
        marginal = r.get("marginal") or list(range(n))
        out = np.zeros(2 ** len(marginal))
        for i, p in enumerate(probs):
            out[sum(((i >> q) & 1) << j for j, q in enumerate(marginal))] += p
        return out
    if r.get("hamiltonian"):
        return np.array([sum(t["coeff"] * np.trace(pauli_matrix(t["pauli"]) @ rho).real for t in r["hamiltonian"])])
    paulis = r.get("observables") or default_paulis(n)
    return np.array([np.trace(pauli_matrix(p) @ rho).real for p in paulis])


def forward(block: dict, X_batch, w) -> np.ndarray:
    """Exact readout of a batch (batch, width)."""
    return np.stack([readout(block, final_state(block, x, w)) for x in np.atleast_2d(X_batch)])


def fd_jacobians(block: dict, x: np.ndarray, w: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Central finite-difference Jacobians of the exact readout of one sample: (width, n_w), (width, n_x)."""
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)

    def jac(f, v):
        cols = []
        for i in range(len(v)):
            e = np.zeros_like(v)
            e[i] = eps
            cols.append((f(v + e) - f(v - e)) / (2 * eps))
        return np.stack(cols, 1) if cols else np.zeros((len(f(v)), 0))

    jw = jac(lambda v: forward(block, x[None], v)[0], w)
    jx = jac(lambda v: forward(block, v[None], w)[0], x)
    return jw, jx


# ------------------------------------------------------------------------------------------------
# Noise, from the channel definitions (Kraus operators written out here, not imported).


def kraus_channels(noise: dict) -> list[list[np.ndarray]]:
    chans = []
    if noise.get("depolarizing"):
        p = noise["depolarizing"]
        chans.append([math.sqrt(1 - p) * I2] + [math.sqrt(p / 3) * m for m in (X, Y, Z)])
    if noise.get("amplitude_damping"):
        g = noise["amplitude_damping"]
        chans.append([np.array([[1, 0], [0, math.sqrt(1 - g)]], dtype=complex),
                      np.array([[0, math.sqrt(g)], [0, 0]], dtype=complex)])
    if noise.get("bit_flip"):
        p = noise["bit_flip"]
        chans.append([math.sqrt(1 - p) * I2, math.sqrt(p) * X])
    if noise.get("phase_flip"):
        p = noise["phase_flip"]
        chans.append([math.sqrt(1 - p) * I2, math.sqrt(p) * Z])
    return chans


def noisy_circuit_rho(gates: list[tuple], n: int, noise: dict) -> np.ndarray:
    """Density matrix after a gate list [(name, wires, theta)], each gate followed by its noise channels."""
    rho = np.zeros((2**n, 2**n), dtype=complex)
    rho[0, 0] = 1
    p2 = noise.get("depolarizing2", 0.0)
    for name, wires, theta in gates:
        if len(wires) == 1:
            q = wires[0]
            u = on(n, {q: rot(name, theta) if name in ("rx", "ry", "rz") else FIXED[name]})
            rho = u @ rho @ u.conj().T
            for chan in kraus_channels(noise):
                rho = sum(on(n, {q: k}) @ rho @ on(n, {q: k}).conj().T for k in chan)
        else:
            a, b = wires
            u = {"cx": cnot, "cz": cz, "swap": swap}[name](n, a, b)
            rho = u @ rho @ u.conj().T
            if p2:
                new = (1 - p2) * rho
                for pa in "IXYZ":
                    for pb in "IXYZ":
                        if pa == pb == "I":
                            continue
                        k = on(n, {a: PAULI[pa], b: PAULI[pb]})
                        new = new + p2 / 15 * k @ rho @ k.conj().T
                rho = new
    return rho


def ground_energy(terms: list[tuple[float, str]]) -> float:
    h = sum(c * pauli_matrix(p) for c, p in terms)
    return float(np.linalg.eigvalsh(h)[0])


@pytest.fixture(scope="session")
def ref():
    """The independent dense-matrix oracle."""
    return SimpleNamespace(
        on=on, rot=rot, cnot=cnot, cz=cz, swap=swap, pauli_matrix=pauli_matrix, final_state=final_state,
        readout=readout, forward=forward, fd_jacobians=fd_jacobians, noisy_circuit_rho=noisy_circuit_rho,
        kraus_channels=kraus_channels, ground_energy=ground_energy, default_paulis=default_paulis,
        PAULI=PAULI, FIXED=FIXED,
    )


def shot_bound(exact: np.ndarray, shots: int, sigmas: float = 5.0) -> np.ndarray:
    """Per-value bound for Pauli expectations estimated from `shots` ±1 outcomes."""
    exact = np.asarray(exact, dtype=float)
    return sigmas * np.sqrt(np.clip(1 - exact**2, 0, None) / shots) + 1e-12


@pytest.fixture(scope="session")
def shots_bound():
    return shot_bound


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray instance (2 CPUs) for every test that needs one: each start costs ~20 s and, on a busy
    machine, may fail inside Ray itself, so it happens once per test session, retried."""
    ray = pytest.importorskip("ray", reason="the [cluster] extra (ray) is not installed")
    root = str(Path(__file__).resolve().parents[1])
    # Ray's worker processes import this checkout's workbench, as the driver does.
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, before]))
    # On a loaded two-core machine the raylet can take longer than Ray's default 30 s to register.
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
    attempts = 3
    for _ in range(attempts):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as err:  # Ray raises a bare Exception for a node that timed out during startup
            ray.shutdown()
            # the raylet aborts when Ray's dashboard agent takes more than a hard-coded 15 s to start
            # (ray-project/ray#65983, "Timed out waiting for file .../metrics_agent_port_*")
            if "timed out during startup" not in str(err):
                raise
    else:
        pytest.skip(f"a local Ray instance did not start in {attempts} attempts (machine too busy, ray#65983)")
    yield ray
    ray.shutdown()
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


# ------------------------------------------------------------------------------------------------
# The block catalogue the engine and gradient tests sweep (3 qubits).

N_QUBITS = 3
ENCODING_FEATURES = {"angle": 3, "dense_angle": 6, "amplitude": 7, "iqp": 3, "reupload": 3}
CUSTOM_GATES = [
    {"gate": "h", "wires": [0]},
    {"gate": "rx", "wires": [1], "source": "weight", "index": 0},
    {"gate": "rzz", "wires": [0, 2], "source": "weight", "index": 1, "scale": 0.5},
    {"gate": "cz", "wires": [1, 2]},
    {"gate": "ry", "wires": [2], "source": "input", "index": 1, "scale": 2.0},
    {"gate": "swap", "wires": [0, 1]},
    {"gate": "rz", "wires": [0], "source": "const", "value": 0.3},
    {"gate": "s", "wires": [1]},
    {"gate": "t", "wires": [2]},
    {"gate": "y", "wires": [0]},
    {"gate": "x", "wires": [2]},
    {"gate": "z", "wires": [1]},
    {"gate": "cx", "wires": [2, 0]},
    {"gate": "ry", "wires": [0], "source": "weight", "index": 0},  # a weight used twice
    {"gate": "rx", "wires": [2], "source": "weight", "index": 2, "scale": -1.5},
]
ANSATZE = {
    "he-linear": {"ansatz": "hardware_efficient", "entanglement": "linear"},
    "he-ring": {"ansatz": "hardware_efficient", "entanglement": "ring", "rotations": ["rx", "ry", "rz"]},
    "he-all": {"ansatz": "hardware_efficient", "entanglement": "all_to_all"},
    "strongly": {"ansatz": "strongly_entangling"},
    "basic": {"ansatz": "basic_entangler"},
    "custom": {"ansatz": "custom", "gates": CUSTOM_GATES},
}
READOUTS = {
    "z": {},
    "paulis": {"observables": ["XYZ", "YIX", "IZY", "XXI"]},
    "hamiltonian": {"hamiltonian": [{"coeff": 0.7, "pauli": "ZZI"}, {"coeff": -1.3, "pauli": "XIY"},
                                    {"coeff": 0.4, "pauli": "IYY"}, {"coeff": 0.2, "pauli": "III"}]},
    "sampler": {"mode": "sampler"},
    "marginal": {"mode": "sampler", "marginal": [2, 0]},
}


def make_block(encoding: str, ansatz: str, readout: str, **extra) -> dict:
    block = {"type": "quantum", "id": "q", "qubits": N_QUBITS, "encoding": encoding, "depth": 2,
             "input_scaling": 0.8, "rotation": "rx" if encoding == "reupload" else "ry",
             "readout": READOUTS[readout], **ANSATZE[ansatz]}
    block.update(extra)
    return block


def covering_combos() -> list[tuple[str, str, str]]:
    """Every encoding with every ansatz and every readout with every encoding and every ansatz (pairwise)."""
    encs, ans, ros = list(ENCODING_FEATURES), list(ANSATZE), list(READOUTS)
    combos = set()
    for i, e in enumerate(encs):
        for j, a in enumerate(ans):
            combos.add((e, a, ros[(i + j) % len(ros)]))
    for i, e in enumerate(encs):
        for k, r in enumerate(ros):
            combos.add((e, ans[(i + 2 * k) % len(ans)], r))
    for j, a in enumerate(ans):
        for k, r in enumerate(ros):
            combos.add((encs[(j + k) % len(encs)], a, r))
    return sorted(combos)


def layer_for(block: dict, features: int, **options):
    from workbench.engine.layer import QuantumLayer
    from workbench.engine.noise import NoiseModel
    from workbench.spec import Quantum

    noise = options.pop("noise", None)
    options.setdefault("precision", "double")
    return QuantumLayer(Quantum.model_validate(block), features, noise=NoiseModel.from_any(noise), **options)


@pytest.fixture(scope="session")
def cudaq_seed():
    from workbench.engine.executors.cudaq_runtime import cudaq, on_cudaq_thread

    on_cudaq_thread(lambda: cudaq.set_random_seed(7))
    return cudaq


# ------------------------------------------------------------------------------------------------
# Process exit

_EXIT_STATUS = 0


def pytest_sessionfinish(session, exitstatus):
    global _EXIT_STATUS
    _EXIT_STATUS = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the test process with pytest's own status once everything is reported. After the Ray tests, Ray's
    C++ terminate handler stays installed; at interpreter shutdown a daemon thread dropping a torch tensor
    is unwound by the runtime, which that handler turns into an abort (exit 134) after every test passed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS)
