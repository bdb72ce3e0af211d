"""workbench.inspect against the dense-matrix oracle of tests/conftest.py (independent of the engine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.inspect import circuit_descriptors, inspect_sample


def _expect(ref, psi, n, q, pauli):
    return float(np.real(psi.conj() @ ref.on(n, {q: ref.PAULI[pauli]}) @ psi))


def _entropy(psi, n, q):
    t = psi.reshape([2] * n)
    m = np.moveaxis(t, n - 1 - q, 0).reshape(2, -1)
    values = np.clip(np.linalg.eigvalsh(m @ m.conj().T), 0, 1)
    return float(-sum(v * np.log2(v) for v in values if v > 1e-12))


def test_bloch_vectors_and_entropies_match_the_dense_oracle(ref):
    spec = wb.templates.get("vqc-circles")
    torch.manual_seed(3)
    model = wb.compile(spec)
    sample = torch.tensor([0.4, -0.7])
    view = inspect_sample(model, sample)
    layer = model.quantum_layers[view["block"]]
    block = layer.block.to_dict() if hasattr(layer.block, "to_dict") else layer.block.model_dump()
    with torch.no_grad():
        features = model.blocks["to_angles"](model.blocks["fc_in"](sample.unsqueeze(0)))[0].double().numpy()
    w = layer.weight.detach().double().numpy()
    n = view["qubits"]
    names = [s["name"] for s in view["stages"]]
    assert names == ["encoding"] + [f"layer {d}" for d in range(1, block["depth"] + 1)]
    per_layer = len(w) // block["depth"]
    for depth in range(1, block["depth"] + 1):
        psi = ref.final_state({**block, "depth": depth}, features, w[:depth * per_layer])
        stage = view["stages"][depth]
        for q in range(n):
            expected = [_expect(ref, psi, n, q, p) for p in "XYZ"]
            assert stage["bloch"][q] == pytest.approx(expected, abs=1e-9)
            assert stage["entropy"][q] == pytest.approx(_entropy(psi, n, q), abs=1e-7)
    # After the angle encoding alone every qubit is RY(x_q)|0⟩: a product state on the X-Z circle.
    for q in range(n):
        x, y, z = view["stages"][0]["bloch"][q]
        assert (x, y, z) == pytest.approx((np.sin(features[q]), 0.0, np.cos(features[q])), abs=1e-9)
        assert view["stages"][0]["entropy"][q] == pytest.approx(0.0, abs=1e-9)
    psi = ref.final_state(block, features, w)
    assert view["probabilities"] == pytest.approx(list(np.abs(psi) ** 2), abs=1e-9)


def test_circuit_descriptors_tell_circuits_apart():
    base = wb.templates.get("vqc-circles").quantum_blocks()[0]
    product = base.model_copy(update={"entanglement": "none"})
    deep = base.model_copy(update={"depth": 6})
    d_base = circuit_descriptors(base, 4, samples=150)
    d_product = circuit_descriptors(product, 4, samples=150)
    d_deep = circuit_descriptors(deep, 4, samples=150)
    assert d_product["two_qubit_gates"] == 0 and d_product["entangling_capability"] == pytest.approx(0, abs=1e-9)
    assert d_base["two_qubit_gates"] == 4 * base.depth  # a CNOT ring of 4 per layer
    assert d_base["parameters"] == 2 * 4 * base.depth  # RY and RZ per qubit per layer
    assert d_deep["entangling_capability"] > 0.5
    # Sim et al.: a product circuit is far less expressive (larger KL divergence to Haar) than an entangling one.
    assert d_product["expressibility"] > 2 * d_deep["expressibility"]
    # Barren plateaus: the cost-gradient variance shrinks as the circuit gets deeper and more random.
    assert d_deep["gradient_variance"] < d_product["gradient_variance"]
