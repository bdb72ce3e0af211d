"""The three ways a circuit sits in a network (intermediate layer, output layer, parameter input with an
energy loss), each trained a few Adam steps, and circuits outside torch layers driven by scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch

import workbench as wb
from workbench.engine.function import CircuitFunction, circuit_function, expectation
from workbench.spec import SpecError


def _toy_classification(n: int = 32, seed: int = 0):
    """Two classes split by a circle: needs a nonlinear model."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    y = (np.hypot(x[:, 0], x[:, 1]) > 0.7).astype(np.int64)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def _train(model, loss_fn, steps: int, lr: float = 0.08) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def _assert_learns(losses: list[float], factor: float = 0.9) -> None:
    assert all(math.isfinite(v) for v in losses)
    assert min(losses[-3:]) < factor * losses[0], losses


@pytest.mark.parametrize("target, steps", [("torch", 25), ("qpp-cpu", 8)])
def test_intermediate_layer_trains(target, steps):
    spec = {"name": "mid", "input_shape": [2], "blocks": [
        {"type": "linear", "id": "fc_in", "out_features": 3},
        {"type": "activation", "id": "angles", "fn": "scaled_tanh", "scale": math.pi / 2},
        {"type": "quantum", "id": "q", "role": "intermediate", "qubits": 3, "encoding": "angle", "depth": 1,
         "entanglement": "linear"},
        {"type": "linear", "id": "head", "out_features": 2}]}
    model = wb.compile(spec, target=target, seed=0)
    assert model.gradient_info()["q"]["method"] == "adjoint"
    x, y = _toy_classification(16 if target != "torch" else 32)
    before = model.blocks["q"].weight.detach().clone()
    losses = _train(model, lambda: torch.nn.functional.cross_entropy(model(x), y), steps)
    _assert_learns(losses, 0.95 if target != "torch" else 0.9)
    # The circuit itself trained, and the classical layer before it got gradients through it.
    assert not torch.equal(model.blocks["q"].weight.detach(), before)
    assert model.blocks["fc_in"].weight.grad.abs().max() > 0
    assert model.circuit_executions() > 0


@pytest.mark.parametrize("target, gradient, steps", [("torch", "auto", 25), ("qpp-cpu", "parameter_shift", 6)])
def test_output_layer_trains(target, gradient, steps):
    spec = {"name": "out", "input_shape": [2], "blocks": [
        {"type": "linear", "id": "fc_in", "out_features": 2},
        {"type": "activation", "id": "angles", "fn": "scaled_tanh", "scale": math.pi},
        {"type": "quantum", "id": "qout", "role": "output", "qubits": 2, "encoding": "reupload", "depth": 2,
         "readout": {"observables": ["ZI", "IZ"]}}]}
    model = wb.compile(spec, target=target, gradient=gradient, seed=1)
    x, y = _toy_classification(12 if target != "torch" else 32, seed=1)
    # <Z> in [-1, 1] are the class scores; scaled so softmax can get confident.
    losses = _train(model, lambda: torch.nn.functional.cross_entropy(3 * model(x), y), steps)
    _assert_learns(losses, 0.95 if target != "torch" else 0.9)
    out = model(x)
    assert out.abs().max() <= 1 + 1e-6  # the outputs really are expectation values


def _tfim_terms(n: int) -> list[str]:
    zz = ["I" * i + "ZZ" + "I" * (n - i - 2) for i in range(n - 1)]
    return zz + ["I" * i + "X" + "I" * (n - i - 1) for i in range(n)]


def _tfim_coefficients(h: torch.Tensor, n: int) -> torch.Tensor:
    """(batch, terms): H(h) = -Σ Z_i Z_{i+1} - h Σ X_i."""
    return torch.cat([-torch.ones(len(h), n - 1, dtype=h.dtype), -h.reshape(-1, 1).expand(-1, n)], dim=1)


@pytest.mark.parametrize("target, steps", [("torch", 30), ("qpp-cpu", 10)])
def test_parameter_input_with_energy_loss_trains_and_respects_the_variational_bound(ref, target, steps):
    n, depth = 2, 2
    spec = {"name": "vqe-param", "task": "energy", "input_shape": [1], "blocks": [
        {"type": "linear", "id": "fc1", "out_features": 8},
        {"type": "activation", "id": "act", "fn": "tanh"},
        {"type": "linear", "id": "to_params", "out_features": n * 2 * depth},
        {"type": "quantum", "id": "vqe", "role": "parameter_input", "qubits": n, "encoding": "none",
         "depth": depth, "entanglement": "linear", "readout": {"observables": _tfim_terms(n)}}]}
    model = wb.compile(spec, target=target, precision="double", seed=2).double()
    h = torch.linspace(0.2, 1.5, 6, dtype=torch.float64).reshape(-1, 1)
    coefficients = _tfim_coefficients(h, n)
    exact = np.array([ref.ground_energy([(float(c), p) for c, p in zip(row, _tfim_terms(n))])
                      for row in coefficients])

    def energies():
        return (model(h) * coefficients).sum(1)

    losses = _train(model, lambda: energies().mean(), steps, lr=0.05)
    _assert_learns(losses, 0.9 if losses[0] > 0 else 1.0)
    assert losses[-1] < losses[0] - 0.1
    final = energies().detach().numpy()
    # Variational principle: no state has less energy than the ground state (a check the engine cannot fake).
    assert np.all(final >= exact - 1e-9), (final, exact)


def test_fixed_hamiltonian_readout_is_the_energy(ref):
    terms = [(0.5, "ZZ"), (-0.8, "XI"), (0.3, "IY"), (1.1, "II")]
    spec = {"name": "ham", "task": "energy", "input_shape": [4], "blocks": [
        {"type": "quantum", "id": "vqe", "role": "parameter_input", "qubits": 2, "encoding": "none", "depth": 1,
         "readout": {"hamiltonian": [{"coeff": c, "pauli": p} for c, p in terms]}}]}
    model = wb.compile(spec, precision="double")
    params = (0.3 * torch.randn(1, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
              ).requires_grad_(True)
    losses = _train_params(model, params, 40)
    _assert_learns(losses, 0.95 if losses[0] > 0 else 1.0)
    assert losses[-1] >= ref.ground_energy(terms) - 1e-9
    assert losses[-1] < losses[0] - 0.2


def _train_params(model, params, steps):
    opt = torch.optim.Adam([params], lr=0.1)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model(params).sum()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_noisy_model_trains_with_density_matrix_gradients():
    spec = {"name": "noisy", "input_shape": [2], "blocks": [
        {"type": "quantum", "id": "q", "role": "output", "qubits": 2, "encoding": "angle", "depth": 1,
         "readout": {"observables": ["ZZ"]}}]}
    model = wb.compile(spec, target="torch", noise={"depolarizing": 0.02, "depolarizing2": 0.03}, seed=3)
    assert model.config["target"] == "torch-density"
    assert model.gradient_info()["q"]["method"] == "density_matrix"
    x = torch.tensor([[0.1, 0.2], [0.4, -0.3]])
    losses = _train(model, lambda: (model(x) - torch.tensor([[-0.8], [-0.8]])).pow(2).mean(), 15)
    _assert_learns(losses)


# ------------------------------------------------------------------------------------------------
# Circuits outside torch layers

TFIM3 = [(-1.0, "ZZI"), (-1.0, "IZZ"), (-0.7, "XII"), (-0.7, "IXI"), (-0.7, "IIX")]
H2_LIKE = [(-1.052373245772859, "II"), (0.39793742484318045, "ZI"), (-0.39793742484318045, "IZ"),
           (-0.01128010425623538, "ZZ"), (0.18093119978423156, "XX")]


def _vqe_block(n: int, terms, depth: int = 2, rotations=("ry",)) -> dict:
    return {"qubits": n, "encoding": "none", "ansatz": "hardware_efficient", "depth": depth,
            "entanglement": "linear", "rotations": list(rotations),
            "readout": {"hamiltonian": [{"coeff": c, "pauli": p} for c, p in terms]}}


@pytest.mark.parametrize("target", ["torch", "qpp-cpu"])
@pytest.mark.parametrize("name, terms, rotations", [("tfim-3", TFIM3, ("ry",)), ("h2-like", H2_LIKE, ("ry", "rz"))])
def test_vqe_with_scipy_reaches_the_exact_ground_energy(ref, target, name, terms, rotations):
    n = len(terms[0][1])
    exact = ref.ground_energy(terms)
    f = CircuitFunction(_vqe_block(n, terms, rotations=rotations), target=target)
    assert f.parameter_mode and f.n_weights == 2 * n * len(rotations)
    assert f.gradient_method == "adjoint"
    best = math.inf
    for seed in range(4):  # a few restarts guard against a local minimum
        result = scipy.optimize.minimize(f.value_and_grad, f.initial_weights(seed), jac=True, method="BFGS",
                                         options={"gtol": 1e-8})
        best = min(best, result.fun)
        if best - exact < 1e-6:
            break
    assert abs(best - exact) < 1e-4, (best, exact)
    # The value at the optimum is what the function reports.
    assert abs(f(result.x)[0] - result.fun) < 1e-12


def test_vqe_with_parameter_shift_and_shots_gets_close(ref, cudaq_seed):
    terms = H2_LIKE
    exact = ref.ground_energy(terms)
    exact_f = CircuitFunction(_vqe_block(2, terms, rotations=("ry", "rz")))
    w = scipy.optimize.minimize(exact_f.value_and_grad, exact_f.initial_weights(1), jac=True, method="BFGS").x
    shot_f = CircuitFunction(_vqe_block(2, terms, rotations=("ry", "rz")), target="qpp-cpu", shots=20000)
    assert shot_f.gradient_method == "parameter_shift"
    value, grad = shot_f.value_and_grad(w)
    # 4 non-identity terms, each |c| <= 0.4 and variance <= 1/shots.
    sigma = math.sqrt(sum(c * c for c, p in terms if p != "II") / 20000)
    assert abs(value - exact) < 5 * sigma
    assert np.abs(grad).max() < 5 * sigma * math.sqrt(2)


def test_value_and_grad_matches_finite_differences_of_the_oracle(ref):
    block = {"qubits": 3, "encoding": "iqp", "depth": 2, "ansatz": "strongly_entangling",
             "readout": {"observables": ["ZXI", "IYZ"]}}
    f = CircuitFunction(block, gradient="parameter_shift")
    w = f.initial_weights(3, scale=0.5)
    x = np.array([0.3, -0.5, 0.9])
    full = dict(block, type="quantum", id="circuit")
    values, jac = f.value_and_grad(w, x)
    np.testing.assert_allclose(values, ref.forward(full, x[None], w)[0], atol=1e-12)
    jw, _ = ref.fd_jacobians(full, x, w)
    np.testing.assert_allclose(jac, jw, atol=1e-8)
    # A batch of fixed inputs: values (batch, width), Jacobian (batch, width, n_weights).
    X = np.array([[0.3, -0.5, 0.9], [1.0, 0.1, -0.2]])
    values, jac = f.value_and_grad(w, X)
    assert values.shape == (2, 2) and jac.shape == (2, 2, f.n_weights)
    np.testing.assert_allclose(values, ref.forward(full, X, w), atol=1e-12)
    np.testing.assert_allclose(jac[1], ref.fd_jacobians(full, X[1], w)[0], atol=1e-8)


@pytest.mark.parametrize("target", ["torch", "qpp-cpu"])
def test_fixed_input_inference_matches_the_compiled_model(target):
    spec = wb.templates.get("quantum-output")
    model = wb.compile(spec, target=target, precision="double", seed=4)
    layer_block = spec.block("qout")
    f = circuit_function(layer_block, target=target)
    weights = model.blocks["qout"].weight.detach().numpy()
    x = torch.rand(3, 4, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        # precision="double" makes the classical layers float64 too: they take x as it is.
        angles = model.blocks["to_angles"](model.blocks["fc_in"](x))
        want = model.blocks["qout"](angles).numpy()
    np.testing.assert_allclose(f(weights, angles.numpy()), want, atol=1e-12)
    np.testing.assert_allclose(expectation(layer_block, weights, angles.numpy()[0], target=target), want[0],
                               atol=1e-12)
    # torch tensors in, numpy out
    assert isinstance(f(torch.tensor(weights), angles[0]), np.ndarray)


def test_circuit_function_with_noise_uses_the_density_matrix(ref):
    block = _vqe_block(2, H2_LIKE)
    clean = CircuitFunction(block)
    noisy = CircuitFunction(block, noise={"depolarizing": 0.05})
    assert noisy.target == "torch-density" and noisy.gradient_method == "density_matrix"
    w = clean.initial_weights(0, scale=0.4)
    assert abs(noisy(w)[0] - clean(w)[0]) > 1e-3
    value, grad = noisy.value_and_grad(w)
    eps = 1e-6
    fd = np.array([(noisy(w + eps * e)[0] - noisy(w - eps * e)[0]) / (2 * eps) for e in np.eye(len(w))])
    np.testing.assert_allclose(grad, fd, atol=1e-7)


def test_circuit_function_explains_misuse():
    f = CircuitFunction(_vqe_block(2, H2_LIKE))
    with pytest.raises(ValueError, match="expected 4 weights, got 3"):
        f(np.zeros(3))
    with pytest.raises(ValueError, match="no data input"):
        f(np.zeros(4), x=[0.1, 0.2])
    g = CircuitFunction({"qubits": 2, "encoding": "angle", "depth": 1})
    with pytest.raises(ValueError, match="pass x with 2 features"):
        g(np.zeros(g.n_weights))
    with pytest.raises(ValueError, match="2 features per sample"):
        g(np.zeros(g.n_weights), [0.1, 0.2, 0.3])
    with pytest.raises(SpecError) as info:
        CircuitFunction({"qubits": 2, "encoding": "none", "readout": {"observables": ["ZQ"]}})
    assert info.value.field == "readout.observables" and "'ZQ'" in str(info.value)
    with pytest.raises(SpecError, match="field depth"):
        CircuitFunction({"qubits": 2, "depth": 0})
    with pytest.raises(SpecError, match="type 'quantum'"):
        CircuitFunction({"type": "linear", "id": "fc", "out_features": 3})
