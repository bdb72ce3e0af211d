"""Forward values of every engine against an independent dense-matrix oracle (conftest.py):
the torch statevector and density-matrix engines, CUDA-Q's qpp-cpu and density-matrix-cpu targets
(noiseless and with every noise channel) and emulated hardware targets with shots."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from conftest import (ANSATZE, CUSTOM_GATES, ENCODING_FEATURES, READOUTS, covering_combos, layer_for, make_block,
                      shot_bound)

ALL_COMBOS = list(itertools.product(ENCODING_FEATURES, ANSATZE, READOUTS))


def _inputs(encoding: str, batch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.2, 1.2, (batch, ENCODING_FEATURES[encoding]))


def _weights(layer) -> np.ndarray:
    return layer.weight.detach().double().numpy()


@pytest.mark.parametrize("encoding, ansatz, readout", ALL_COMBOS)
def test_torch_statevector_matches_dense_oracle(ref, encoding, ansatz, readout):
    block = make_block(encoding, ansatz, readout)
    torch.manual_seed(0)
    layer = layer_for(block, ENCODING_FEATURES[encoding], target="torch")
    x = _inputs(encoding, 3, seed=len(encoding) + len(ansatz))
    with torch.no_grad():
        got = layer(torch.tensor(x)).numpy()
    expected = ref.forward(block, x, _weights(layer))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("encoding, ansatz, readout", covering_combos()[::4])
def test_torch_single_precision_is_close(ref, encoding, ansatz, readout):
    block = make_block(encoding, ansatz, readout)
    layer = layer_for(block, ENCODING_FEATURES[encoding], target="torch", precision="single")
    x = _inputs(encoding, 2, seed=5)
    with torch.no_grad():
        got = layer(torch.tensor(x, dtype=torch.float32)).numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref.forward(block, x.astype(np.float32), _weights(layer)), atol=2e-5, rtol=0)


def test_oracle_is_not_trivially_symmetric(ref):
    """The oracle's qubit order, Y sign and gate conventions, checked on known states."""
    # RY(pi/2) on qubit 0 only: <X0> = 1, <Z1> = 1; character i acts on qubit i.
    psi = ref.on(2, {0: ref.rot("ry", np.pi / 2)}) @ np.array([1, 0, 0, 0], dtype=complex)
    assert np.isclose(np.vdot(psi, ref.pauli_matrix("XI") @ psi).real, 1)
    assert np.isclose(np.vdot(psi, ref.pauli_matrix("IX") @ psi).real, 0)
    # RX(-pi/2)|0> = (|0> + i|1>)/sqrt 2 has <Y> = +1.
    psi = ref.rot("rx", -np.pi / 2) @ np.array([1, 0], dtype=complex)
    assert np.isclose(np.vdot(psi, ref.PAULI["Y"] @ psi).real, 1)
    # CNOT(control 0, target 1) maps |q1 q0> = |01> (index 1) to |11> (index 3).
    assert ref.cnot(2, 0, 1)[3, 1] == 1


def test_dense_single_qubit_gates_and_basis_order(ref):
    """Every fixed gate, checked on basis states where the answer is known by hand."""
    block = {"type": "quantum", "id": "q", "qubits": 2, "encoding": "none", "ansatz": "custom",
             "gates": [{"gate": "x", "wires": [1]}], "readout": {"mode": "sampler"}}
    layer = layer_for(block, 0, target="torch")
    out = layer(torch.zeros(1, 0, dtype=torch.float64)).detach().numpy()[0]
    # X on qubit 1: index 2 (bit 1 set).
    np.testing.assert_allclose(out, [0, 0, 1, 0], atol=1e-15)
    gates = [{"gate": "h", "wires": [0]}, {"gate": "s", "wires": [0]}, {"gate": "t", "wires": [0]},
             {"gate": "t", "wires": [0]}]  # H then S T T = S S = Z phase: |+> -> |->
    block.update(gates=gates, readout={"observables": ["XI", "YI"]})
    layer = layer_for(block, 0, target="torch")
    np.testing.assert_allclose(layer(torch.zeros(1, 0, dtype=torch.float64)).detach().numpy()[0], [-1, 0],
                               atol=1e-12)


# ------------------------------------------------------------------------------------------------
# CUDA-Q executors


def _cudaq_vs_oracle(ref, block, features, target, batch=3, seed=1, **options):
    torch.manual_seed(seed)
    layer = layer_for(block, features, target=target, **options)
    x = np.random.default_rng(seed).uniform(-1.2, 1.2, (batch, features))
    with torch.no_grad():
        got = layer(torch.tensor(x)).numpy()
    return layer, x, got, ref.forward(block, x, _weights(layer) if layer.weight is not None else [])


QPP_COMBOS = [("angle", "he-linear", "z"), ("dense_angle", "he-ring", "paulis"), ("amplitude", "he-all", "marginal"),
              ("iqp", "strongly", "hamiltonian"), ("reupload", "basic", "sampler"), ("angle", "custom", "paulis"),
              ("amplitude", "custom", "hamiltonian")]


@pytest.mark.parametrize("encoding, ansatz, readout", QPP_COMBOS)
def test_qpp_cpu_matches_dense_oracle(ref, encoding, ansatz, readout):
    block = make_block(encoding, ansatz, readout)
    # parameter_shift makes the forward pass a broadcast observe (adjoint would read get_state instead).
    layer, x, got, expected = _cudaq_vs_oracle(ref, block, ENCODING_FEATURES[encoding], "qpp-cpu",
                                               gradient="parameter_shift")
    np.testing.assert_allclose(got, expected, atol=1e-12, rtol=0)
    # The get_state route (adjoint) agrees too.
    adjoint = layer_for(block, ENCODING_FEATURES[encoding], target="qpp-cpu", gradient="adjoint")
    adjoint.load_state_dict(layer.state_dict())
    with torch.no_grad():
        np.testing.assert_allclose(adjoint(torch.tensor(x)).numpy(), expected, atol=1e-12, rtol=0)


def test_qpp_amplitude_batch_rows_are_independent(ref):
    """Regression: cudaq 0.16 broadcasting of list[complex] arguments runs every row from one state."""
    block = make_block("amplitude", "he-linear", "z", depth=1)
    _, x, got, expected = _cudaq_vs_oracle(ref, block, 7, "qpp-cpu", batch=4, gradient="parameter_shift")
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert np.ptp(got[:, 0]) > 1e-3  # the rows differ


@pytest.mark.parametrize("readout", ["paulis", "sampler"])
def test_density_matrix_cpu_without_noise_matches_oracle(ref, readout):
    block = make_block("angle", "he-ring", readout)
    layer, _, got, expected = _cudaq_vs_oracle(ref, block, 3, "density-matrix-cpu")
    assert layer.gradient_method == "adjoint"  # statevectors recovered from the pure density matrix
    np.testing.assert_allclose(got, expected, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Noise: CUDA-Q density-matrix-cpu == torch density engine == numpy Kraus oracle

NOISY_GATES = [
    {"gate": "h", "wires": [0]},
    {"gate": "rx", "wires": [1], "source": "weight", "index": 0},
    {"gate": "cz", "wires": [0, 1]},
    {"gate": "ry", "wires": [0], "source": "input", "index": 0},
    {"gate": "cx", "wires": [1, 0]},
    {"gate": "swap", "wires": [0, 1]},
    {"gate": "rz", "wires": [1], "source": "weight", "index": 1},
    {"gate": "ry", "wires": [1], "source": "input", "index": 1},
]


def _noisy_block(readout: dict) -> dict:
    return {"type": "quantum", "id": "noisy", "qubits": 2, "encoding": "none", "ansatz": "custom",
            "gates": NOISY_GATES, "readout": readout}


def _oracle_gate_list(x, w):
    """The gate sequence of NOISY_GATES as the engines lower it (swap = three CNOTs)."""
    gates = []
    for g in NOISY_GATES:
        theta = {"weight": lambda i: w[i], "input": lambda i: x[i]}[g["source"]](g["index"]) if g.get("source") \
            else None
        if g["gate"] == "swap":
            a, b = g["wires"]
            gates += [("cx", (a, b), None), ("cx", (b, a), None), ("cx", (a, b), None)]
        else:
            gates.append((g["gate"], tuple(g["wires"]), theta))
    return gates


def _oracle_noisy(ref, readout: dict, noise: dict, X, w) -> np.ndarray:
    block = _noisy_block(readout)
    p = noise.get("readout", 0.0)
    rows = []
    for x in X:
        rho = ref.noisy_circuit_rho(_oracle_gate_list(x, w), 2, noise)
        values = ref.readout(block, rho)
        if p and readout.get("mode") == "sampler":
            marginal = readout.get("marginal") or [0, 1]
            k = len(marginal)
            flipped = np.zeros_like(values)
            for a in range(2**k):
                for b in range(2**k):
                    flips = bin(a ^ b).count("1")
                    flipped[b] += values[a] * p**flips * (1 - p) ** (k - flips)
            values = flipped
        elif p:
            paulis = readout.get("observables") or ["ZI", "IZ"]
            values = values * np.array([(1 - 2 * p) ** sum(c != "I" for c in s) for s in paulis])
        rows.append(values)
    return np.array(rows)


NOISES = {
    "depolarizing": {"depolarizing": 0.08},
    "depolarizing2": {"depolarizing2": 0.12},
    "amplitude_damping": {"amplitude_damping": 0.15},
    "bit_flip": {"bit_flip": 0.07},
    "phase_flip": {"phase_flip": 0.09},
    "readout": {"readout": 0.06},
    "all": {"depolarizing": 0.03, "depolarizing2": 0.05, "amplitude_damping": 0.04, "bit_flip": 0.02,
            "phase_flip": 0.05, "readout": 0.03},
}
PAULI_READOUT = {"observables": ["ZI", "IZ", "XX", "YZ", "XY"]}


@pytest.mark.parametrize("noise", list(NOISES))
def test_noisy_cudaq_matches_torch_density_and_kraus_oracle(ref, noise):
    model = NOISES[noise]
    block = _noisy_block(PAULI_READOUT)
    X = np.array([[0.3, -0.7], [1.1, 0.4]])
    cq = layer_for(block, 2, target="density-matrix-cpu", noise=model)
    target = "torch-density" if set(model) != {"readout"} else "torch"
    tq = layer_for(block, 2, target=target, noise=model)
    tq.load_state_dict(cq.state_dict())
    with torch.no_grad():
        a = cq(torch.tensor(X)).numpy()
        b = tq(torch.tensor(X)).numpy()
    expected = _oracle_noisy(ref, PAULI_READOUT, model, X, _weights(cq))
    noiseless = ref.forward(block, X, _weights(cq))
    assert np.abs(expected - noiseless).max() > 1e-3  # the noise is visible in these values
    np.testing.assert_allclose(b, expected, atol=1e-12)
    np.testing.assert_allclose(a, expected, atol=1e-12)


@pytest.mark.parametrize("readout", [{"mode": "sampler"}, {"mode": "sampler", "marginal": [1]}])
def test_noisy_sampler_probabilities_match(ref, readout):
    model = NOISES["all"]
    block = _noisy_block(readout)
    X = np.array([[0.5, 0.2], [-0.9, 1.3]])
    cq = layer_for(block, 2, target="density-matrix-cpu", noise=model)
    tq = layer_for(block, 2, target="torch-density", noise=model)
    tq.load_state_dict(cq.state_dict())
    expected = _oracle_noisy(ref, readout, model, X, _weights(cq))
    with torch.no_grad():
        np.testing.assert_allclose(cq(torch.tensor(X)).numpy(), expected, atol=1e-12)
        np.testing.assert_allclose(tq(torch.tensor(X)).numpy(), expected, atol=1e-12)


def test_noisy_amplitude_encoding_matches_between_engines():
    block = make_block("amplitude", "he-linear", "paulis", depth=1)
    noise = {"depolarizing": 0.05, "depolarizing2": 0.05, "amplitude_damping": 0.05}
    X = np.random.default_rng(3).uniform(-1, 1, (2, 7))
    cq = layer_for(block, 7, target="density-matrix-cpu", noise=noise)
    tq = layer_for(block, 7, target="torch-density", noise=noise)
    tq.load_state_dict(cq.state_dict())
    with torch.no_grad():
        np.testing.assert_allclose(cq(torch.tensor(X)).numpy(), tq(torch.tensor(X)).numpy(), atol=1e-12)


def test_gate_noise_needs_a_density_matrix_target():
    block = make_block("angle", "he-linear", "z")
    with pytest.raises(ValueError, match="density-matrix"):
        layer_for(block, 3, target="qpp-cpu", noise={"depolarizing": 0.01})
    with pytest.raises(ValueError, match="torch-density"):
        layer_for(block, 3, target="torch", noise={"depolarizing": 0.01})


# ------------------------------------------------------------------------------------------------
# Shots: estimates inside 5 sigma of the exact values


def _sampler_bound(p: np.ndarray, shots: int) -> np.ndarray:
    return 5 * np.sqrt(p * (1 - p) / shots) + 2 / shots


SHOT_CASES = [("torch", {}), ("qpp-cpu", {}), ("quantinuum", {"emulate": True}), ("ionq", {"emulate": True})]


@pytest.mark.parametrize("target, options", SHOT_CASES)
def test_shot_estimates_are_within_five_sigma(ref, cudaq_seed, target, options):
    torch.manual_seed(11)
    shots = 3000
    block = make_block("angle", "he-linear", "paulis", depth=1)
    layer = layer_for(block, 3, target=target, shots=shots, **options)
    assert layer.gradient_method == "parameter_shift"
    x = np.array([[0.4, -0.8, 1.0], [1.3, 0.2, -0.4]])
    with torch.no_grad():
        got = layer(torch.tensor(x)).numpy()
    exact = ref.forward(block, x, _weights(layer))
    assert np.all(np.abs(got - exact) <= shot_bound(exact, shots) + 2 / shots), (got, exact)
    # Shot noise is really there (the estimates are not the exact values).
    assert np.abs(got - exact).max() > 1e-6
    # Granularity: every estimate is a multiple of 2/shots away from -1.
    counts = (got + 1) * shots / 2
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)


@pytest.mark.parametrize("target, options", [("torch", {}), ("qpp-cpu", {}), ("quantinuum", {"emulate": True})])
def test_sampled_probabilities_are_within_five_sigma(ref, cudaq_seed, target, options):
    torch.manual_seed(12)
    shots = 3000
    block = make_block("angle", "he-ring", "marginal", depth=1)
    layer = layer_for(block, 3, target=target, shots=shots, **options)
    x = np.array([[0.4, -0.8, 1.0], [1.3, 0.2, -0.4]])
    with torch.no_grad():
        got = layer(torch.tensor(x)).numpy()
    exact = ref.forward(block, x, _weights(layer))
    np.testing.assert_allclose(got.sum(1), 1, atol=1e-12)
    assert np.all(np.abs(got - exact) <= _sampler_bound(exact, shots)), (got, exact)


def test_hardware_target_defaults_to_shots():
    layer = layer_for(make_block("angle", "he-linear", "z", depth=1), 3, target="ionq")
    assert layer.shots == 1000 and layer.gradient_method == "parameter_shift"


def test_noisy_shots_on_density_matrix_cpu(ref, cudaq_seed):
    torch.manual_seed(13)
    shots = 4000
    model = NOISES["all"]
    X = np.array([[0.3, -0.7], [1.1, 0.4]])
    for readout in (PAULI_READOUT, {"mode": "sampler"}):
        block = _noisy_block(readout)
        layer = layer_for(block, 2, target="density-matrix-cpu", noise=model, shots=shots)
        with torch.no_grad():
            got = layer(torch.tensor(X)).numpy()
        exact = _oracle_noisy(ref, readout, model, X, _weights(layer))
        if readout.get("mode") == "sampler":
            assert np.all(np.abs(got - exact) <= _sampler_bound(exact, shots)), (got, exact)
        else:
            # Readout error scales the ±1 outcomes, so the spread bound of the noisy value still holds.
            assert np.all(np.abs(got - exact) <= shot_bound(exact, shots) + 2 / shots), (got, exact)


def test_custom_gate_catalogue_covers_every_gate():
    from workbench.spec import GateSpec

    names = set(GateSpec.model_fields["gate"].annotation.__args__)
    assert {g["gate"] for g in CUSTOM_GATES} == names
