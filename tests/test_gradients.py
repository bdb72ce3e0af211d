"""Every gradient method, for weights and inputs, against central finite differences of the independent
dense oracle (conftest.py) and against torch autograd through the native engine (backprop).

Exact methods (adjoint, parameter_shift, backprop, density_matrix) must agree to 1e-6 in double precision
(they agree to ~1e-9, the accuracy of the oracle's own finite differences); finite_diff (step 1e-3) to 2e-5;
shot-based gradients within 5 standard deviations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ENCODING_FEATURES, covering_combos, layer_for, make_block

EXACT = 1e-6
FINITE_DIFF = 2e-5
TORCH_METHODS = ["adjoint", "parameter_shift", "finite_diff", "backprop"]
CUDAQ_METHODS = ["adjoint", "parameter_shift", "finite_diff"]


def _case(encoding: str, seed: int, batch: int = 2):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.2, 1.2, (batch, ENCODING_FEATURES[encoding]))


def _reference(ref, block, x, w, G):
    """(values, dL/dw, dL/dx) of L = Σ G * readout, from the oracle and its central differences."""
    gw = np.zeros(len(w))
    gx = np.zeros_like(x)
    for b in range(len(x)):
        jw, jx = ref.fd_jacobians(block, x[b], w)
        gw += G[b] @ jw
        gx[b] = G[b] @ jx
    return ref.forward(block, x, w), gw, gx


def _analytic(layer, x, G):
    xt = torch.tensor(x, requires_grad=True)
    out = layer(xt)
    (out * torch.tensor(G)).sum().backward()
    gw = layer.weight.grad.double().numpy() if layer.weight is not None else np.zeros(0)
    return out.detach().numpy(), gw, xt.grad.numpy()


def _check(name, got, want, tol):
    for label, a, b in zip(("values", "weight grad", "input grad"), got, want):
        np.testing.assert_allclose(a, b, atol=tol, rtol=0, err_msg=f"{name}: {label}")


@pytest.mark.parametrize("encoding, ansatz, readout", covering_combos())
def test_torch_methods_match_finite_differences_and_backprop(ref, encoding, ansatz, readout):
    block = make_block(encoding, ansatz, readout)
    features = ENCODING_FEATURES[encoding]
    x = _case(encoding, seed=len(ansatz) * 7 + len(readout))
    torch.manual_seed(1)
    layers = {m: layer_for(block, features, target="torch", gradient=m) for m in TORCH_METHODS}
    state = layers["backprop"].state_dict()
    for layer in layers.values():
        layer.load_state_dict(state)
    w = layers["backprop"].weight.detach().numpy()
    G = np.random.default_rng(2).normal(size=(len(x), layers["backprop"].plan.width))
    want = _reference(ref, block, x, w, G)
    assert np.abs(want[1]).max() > 1e-3  # the loss really depends on the weights
    results = {m: _analytic(layer, x, G) for m, layer in layers.items()}
    for method, got in results.items():
        assert layers[method].gradient_method == method
        tol = FINITE_DIFF if method == "finite_diff" else EXACT
        _check(method, got, want, tol)
        # Against the torch oracle (autograd through the engine) as well.
        _check(f"{method} vs backprop", got, results["backprop"], tol)


# Each encoding, ansatz and readout at least once on CUDA-Q, every method on each.
CUDAQ_COMBOS = [("angle", "he-linear", "paulis"), ("dense_angle", "custom", "hamiltonian"),
                ("amplitude", "he-ring", "marginal"), ("iqp", "strongly", "z"), ("reupload", "basic", "sampler"),
                ("amplitude", "he-all", "hamiltonian")]


@pytest.mark.parametrize("encoding, ansatz, readout", CUDAQ_COMBOS)
def test_qpp_cpu_methods_match_finite_differences_and_torch(ref, encoding, ansatz, readout):
    block = make_block(encoding, ansatz, readout, depth=1)
    features = ENCODING_FEATURES[encoding]
    x = _case(encoding, seed=3)
    torch.manual_seed(4)
    oracle = layer_for(block, features, target="torch", gradient="backprop")
    w = oracle.weight.detach().numpy()
    G = np.random.default_rng(5).normal(size=(len(x), oracle.plan.width))
    want = _reference(ref, block, x, w, G)
    torch_result = _analytic(oracle, x, G)
    _check("torch backprop", torch_result, want, EXACT)
    for method in CUDAQ_METHODS:
        layer = layer_for(block, features, target="qpp-cpu", gradient=method)
        layer.load_state_dict(oracle.state_dict())
        got = _analytic(layer, x, G)
        tol = FINITE_DIFF if method == "finite_diff" else EXACT
        _check(f"qpp-cpu {method}", got, want, tol)
        _check(f"qpp-cpu {method} vs torch", got, torch_result, tol)


@pytest.mark.parametrize("target", ["torch", "qpp-cpu"])
def test_parameter_input_gradients_reach_the_features(ref, target):
    block = {"type": "quantum", "id": "vqe", "qubits": 2, "role": "parameter_input", "encoding": "none",
             "depth": 2, "entanglement": "linear",
             "readout": {"hamiltonian": [{"coeff": 1.0, "pauli": "ZZ"}, {"coeff": 0.6, "pauli": "XI"},
                                         {"coeff": 0.6, "pauli": "IX"}]}}
    x = np.random.default_rng(6).uniform(-2, 2, (2, 8))
    G = np.array([[1.0], [-0.5]])
    want = _reference(ref, block, x, [], G)
    for method in ("adjoint", "parameter_shift"):
        layer = layer_for(block, 8, target=target, gradient=method)
        assert layer.weight is None
        got = _analytic(layer, x, G)
        _check(f"{target} {method}", got, want, EXACT)


# ------------------------------------------------------------------------------------------------
# Noisy gradients: the exact density-matrix gradient against finite differences of CUDA-Q's noisy forward

NOISE = {"depolarizing": 0.04, "depolarizing2": 0.06, "amplitude_damping": 0.05, "bit_flip": 0.02,
         "phase_flip": 0.03, "readout": 0.04}


def _fd_of_layer(layer, x, G, eps=1e-5):
    """Central differences of L = Σ G * layer(x) by perturbing the layer's weights and inputs in place."""
    def loss(xv):
        with torch.no_grad():
            return float((layer(torch.tensor(xv)) * torch.tensor(G)).sum())

    gw = np.zeros(layer.weight.numel())
    for i in range(len(gw)):
        with torch.no_grad():
            layer.weight[i] += eps
            up = loss(x)
            layer.weight[i] -= 2 * eps
            down = loss(x)
            layer.weight[i] += eps
        gw[i] = (up - down) / (2 * eps)
    gx = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        gx[idx] = (loss(x + e) - loss(x - e)) / (2 * eps)
    return gw, gx


@pytest.mark.parametrize("encoding, readout", [("angle", "paulis"), ("amplitude", "marginal"), ("iqp", "hamiltonian")])
def test_density_matrix_gradient_matches_finite_differences_of_cudaq(encoding, readout):
    block = make_block(encoding, "he-ring", readout, depth=1)
    features = ENCODING_FEATURES[encoding]
    x = _case(encoding, seed=8)
    cq = layer_for(block, features, target="density-matrix-cpu", noise=NOISE)
    assert cq.gradient_method == "density_matrix"
    G = np.random.default_rng(9).normal(size=(len(x), cq.plan.width))
    values, gw, gx = _analytic(cq, x, G)
    fd_w, fd_x = _fd_of_layer(cq, x, G)
    np.testing.assert_allclose(gw, fd_w, atol=EXACT, rtol=0)
    np.testing.assert_allclose(gx, fd_x, atol=EXACT, rtol=0)
    # The torch density engine with the same noise gives the same values and gradients.
    tq = layer_for(block, features, target="torch-density", noise=NOISE, gradient="backprop")
    tq.load_state_dict(cq.state_dict())
    _check("torch-density backprop", _analytic(tq, x, G), (values, gw, gx), EXACT)
    td = layer_for(block, features, target="torch-density", noise=NOISE, gradient="density_matrix")
    td.load_state_dict(cq.state_dict())
    _check("torch-density density_matrix", _analytic(td, x, G), (values, gw, gx), EXACT)
    # Noise matters: the noiseless gradient is different.
    clean = layer_for(block, features, target="torch", gradient="adjoint")
    clean.load_state_dict(cq.state_dict())
    assert np.abs(_analytic(clean, x, G)[1] - gw).max() > 1e-3


def test_parameter_shift_on_noisy_cudaq_matches_density_matrix_gradient():
    """Parameter shift is exact for noisy expectations too (channels act after each rotation)."""
    block = make_block("angle", "he-linear", "paulis", depth=1)
    x = _case("angle", seed=10)
    noise = {k: v for k, v in NOISE.items() if k != "amplitude_damping"}
    dm = layer_for(block, 3, target="density-matrix-cpu", noise=noise)
    ps = layer_for(block, 3, target="density-matrix-cpu", noise=noise, gradient="parameter_shift")
    ps.load_state_dict(dm.state_dict())
    G = np.random.default_rng(11).normal(size=(len(x), dm.plan.width))
    _check("noisy parameter shift", _analytic(ps, x, G), _analytic(dm, x, G), EXACT)


# ------------------------------------------------------------------------------------------------
# Shot-based gradients


@pytest.mark.parametrize("target", ["torch", "qpp-cpu"])
def test_shot_parameter_shift_gradient_within_five_sigma(ref, cudaq_seed, target):
    torch.manual_seed(21)
    shots = 20000
    block = make_block("angle", "he-linear", "paulis", depth=1)
    x = _case("angle", seed=12, batch=1)
    exact_layer = layer_for(block, 3, target="torch", gradient="adjoint")
    layer = layer_for(block, 3, target=target, shots=shots)
    layer.load_state_dict(exact_layer.state_dict())
    assert layer.gradient_method == "parameter_shift"
    G = np.array([[1.0, -0.5, 0.25, 0.75]])
    _, gw, gx = _analytic(layer, x, G)
    _, ew, ex = _analytic(exact_layer, x, G)
    # Each gradient entry is Σ_k G_k (E+ - E-)/2 of independent estimates with variance <= 1/shots each.
    sigma = np.sqrt((G**2).sum() / 2 / shots)
    assert np.abs(gw - ew).max() <= 5 * sigma, (gw, ew)
    assert np.abs(gx - ex).max() <= 5 * sigma, (gx, ex)
    assert np.abs(gw - ew).max() > 1e-6  # really estimated from shots
    assert np.abs(ew).max() > 10 * sigma  # and the bound is tight enough to mean something


def test_amplitude_input_gradient_is_exact_for_difference_methods(ref):
    """Regression: amplitude-encoded inputs are differentiated by exact differences of the quadratic form."""
    block = make_block("amplitude", "he-linear", "paulis", depth=1)
    x = _case("amplitude", seed=13)
    G = np.random.default_rng(14).normal(size=(2, 4))
    adj = layer_for(block, 7, target="torch", gradient="adjoint")
    want = _analytic(adj, x, G)
    for method in ("parameter_shift", "finite_diff"):
        layer = layer_for(block, 7, target="torch", gradient=method)
        layer.load_state_dict(adj.state_dict())
        np.testing.assert_allclose(_analytic(layer, x, G)[2], want[2], atol=1e-9, rtol=0, err_msg=method)


# ------------------------------------------------------------------------------------------------
# Choosing a method


@pytest.mark.parametrize("options, method, words", [
    ({"target": "torch"}, "adjoint", "exact simulator"),
    ({"target": "qpp-cpu"}, "adjoint", "exact simulator"),
    ({"target": "torch", "shots": 100}, "parameter_shift", "100 shots"),
    ({"target": "ionq"}, "parameter_shift", "hardware"),
    ({"target": "torch-density", "noise": {"depolarizing": 0.01}}, "density_matrix", "noisy"),
    ({"target": "density-matrix-cpu", "noise": {"bit_flip": 0.01}}, "density_matrix", "noisy"),
    ({"target": "torch", "noise": {"readout": 0.01}}, "adjoint", "exact simulator"),
])
def test_auto_gradient_choice(options, method, words):
    layer = layer_for(make_block("angle", "he-linear", "z", depth=1), 3, **options)
    assert layer.choice.method == method
    assert words in layer.choice.reason


@pytest.mark.parametrize("options, words", [
    ({"target": "torch", "gradient": "adjoint", "shots": 100}, ["needs exact states", "parameter_shift"]),
    ({"target": "torch", "gradient": "backprop", "shots": 100}, ["needs exact states"]),
    ({"target": "ionq", "gradient": "adjoint"}, ["hardware", "parameter_shift"]),
    ({"target": "torch-density", "gradient": "adjoint", "noise": {"depolarizing": 0.01}}, ["noise", "density_matrix"]),
    ({"target": "qpp-cpu", "gradient": "backprop"}, ["backprop", "adjoint"]),
    ({"target": "torch", "gradient": "density_matrix"}, ["noise model"]),
    ({"target": "torch", "gradient": "magic"}, ["unknown gradient", "adjoint"]),
])
def test_impossible_gradient_choice_is_explained(options, words):
    from workbench.engine.gradients import GradientError

    with pytest.raises(GradientError) as info:
        layer_for(make_block("angle", "he-linear", "z", depth=1), 3, **options)
    for word in words:
        assert word in str(info.value)


def test_gradients_flow_through_classical_layers():
    import workbench as wb

    spec = {"input_shape": [3], "task": "regression", "blocks": [
        {"type": "linear", "id": "fc", "out_features": 2},
        {"type": "activation", "id": "act", "fn": "tanh"},
        {"type": "quantum", "id": "q", "qubits": 2, "depth": 2, "encoding": "iqp"},
        {"type": "linear", "id": "head", "out_features": 1}]}
    for gradient in ("adjoint", "parameter_shift"):
        model = wb.compile(spec, gradient=gradient, precision="double", seed=5).double()
        x = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda v: model(v), (x,), eps=1e-6, atol=1e-7)
        # The first classical layer's weights get the chain rule through the circuit.
        loss = model(x.detach()).pow(2).sum()
        loss.backward()
        grad = model.blocks["fc"].weight.grad.clone()
        eps = 1e-6
        with torch.no_grad():
            model.blocks["fc"].weight[1, 2] += eps
            up = model(x.detach()).pow(2).sum()
            model.blocks["fc"].weight[1, 2] -= 2 * eps
            down = model(x.detach()).pow(2).sum()
            model.blocks["fc"].weight[1, 2] += eps
        assert abs(float((up - down) / (2 * eps)) - float(grad[1, 2])) < 1e-7
