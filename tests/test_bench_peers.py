"""The peers suite: its independent reference simulator against analytic results and finite differences, its
per-peer environments' bookkeeping, and a CI-sized run (n = 4) in which every expected row is present. No
timing assertions: speed is what the benchmark itself reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.bench import peer_env, reference
from workbench.bench.cli import bench_app
from workbench.bench.peer_models import FRAMEWORK_OF, OURS, VARIANTS
from workbench.bench.peers import reference_inputs

runner = CliRunner()


def _z(n: int, state: np.ndarray, qubits: list[int]) -> float:
    """⟨Π Z_q⟩ straight from the definition: Σ |ψ_i|² (−1)^(Σ bits)."""
    index = np.arange(2**n)
    parity = sum((index >> q) & 1 for q in qubits) % 2
    return float(np.abs(state) ** 2 @ (1 - 2 * parity))


@pytest.mark.parametrize("theta", [0.0, 0.3, 1.2, math.pi / 2, 2.9, -1.7])
def test_reference_ry_gives_cos_theta(theta):
    for n, qubit in ((1, 0), (3, 0), (3, 2)):
        state = reference.run_gates(n, [("ry", qubit, -1, theta)])
        values = reference.z_expectations(n, state)
        assert values[qubit] == pytest.approx(math.cos(theta), abs=1e-14)
        assert np.allclose(np.delete(values, qubit), 1.0, atol=1e-14)  # the other qubits stay in |0⟩


def test_reference_rz_leaves_z_and_turns_the_phase():
    state = reference.run_gates(1, [("ry", 0, -1, math.pi / 2), ("rz", 0, -1, 0.7)])
    assert reference.z_expectations(1, state)[0] == pytest.approx(0.0, abs=1e-15)
    # ⟨X⟩ = cos φ after RZ(φ) on |+⟩
    assert 2 * (state[0].conjugate() * state[1]).real == pytest.approx(math.cos(0.7), abs=1e-14)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_reference_ghz_parities(n):
    gates = [("ry", 0, -1, math.pi / 2)] + [("cnot", q, q + 1, 0.0) for q in range(n - 1)]
    state = reference.run_gates(n, gates)
    assert np.allclose(np.abs(state[[0, 2**n - 1]]) ** 2, 0.5, atol=1e-14)  # (|0…0⟩ + |1…1⟩)/√2
    for q in range(n):
        assert _z(n, state, [q]) == pytest.approx(0.0, abs=1e-14)
    for a in range(n):
        for b in range(a + 1, n):
            assert _z(n, state, [a, b]) == pytest.approx(1.0, abs=1e-14)  # every pair agrees
    assert _z(n, state, list(range(n))) == pytest.approx(1.0 if n % 2 == 0 else 0.0, abs=1e-14)


def test_reference_cnot_direction_and_ring():
    state = reference.run_gates(2, [("ry", 1, -1, math.pi), ("cnot", 1, 0, 0.0)])  # |q1=1⟩ controls q0
    assert np.allclose(reference.z_expectations(2, state), [-1.0, -1.0], atol=1e-14)
    state = reference.run_gates(2, [("ry", 1, -1, math.pi), ("cnot", 0, 1, 0.0)])  # control q0 is 0: no flip
    assert np.allclose(reference.z_expectations(2, state), [1.0, -1.0], atol=1e-14)
    assert reference.ring(4) == [(0, 1), (1, 2), (2, 3), (3, 0)]


def test_reference_network_gradient_matches_finite_differences():
    """The hand-written chain rule and shift rule against central differences of the reference's own loss."""
    n = 3
    inputs = reference_inputs(n, batch=2)
    exact = reference.network(n, inputs["state"], inputs["x"], inputs["y"])
    step = 1e-6
    for name, values in inputs["state"].items():
        flat = np.asarray(values, dtype=float).reshape(-1)
        for k in range(flat.size):
            shifted = []
            for sign in (1, -1):
                state = {key: np.asarray(v, dtype=float).copy() for key, v in inputs["state"].items()}
                moved = state[name].reshape(-1)
                moved[k] += sign * step
                shifted.append(reference.network(n, state, inputs["x"], inputs["y"])["loss"])
            numeric = (shifted[0] - shifted[1]) / (2 * step)
            assert exact["grads"][name][k] == pytest.approx(numeric, abs=1e-8), (name, k)


def test_peer_environments_report_why_they_are_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PEER_ENVS", str(tmp_path))
    assert peer_env.root() == tmp_path
    status = peer_env.status("tyxonq")
    assert status["status"] == "missing" and "--setup" in status["reason"]
    env = tmp_path / "pyqtorch"
    env.mkdir()
    (env / peer_env.MARKER_FILE).write_text(json.dumps({"status": "failed", "reason": "pip failed: no wheel"}))
    assert peer_env.status("pyqtorch") == {"status": "failed", "reason": "pip failed: no wheel", "log": None}
    (env / peer_env.MARKER_FILE).write_text(json.dumps({"status": "ready", "torch": "torch==0.0.1"}))
    assert peer_env.status("pyqtorch")["status"] == "stale"
    assert "--setup" in peer_env.status("pyqtorch")["reason"]
    assert peer_env.interpreter("workbench")[0]  # ours always runs in this interpreter
    assert peer_env.torch_pin().startswith("torch==")
    for framework in peer_env.PEER_PACKAGES:
        assert any(FRAMEWORK_OF[v] == framework for v in VARIANTS)


@pytest.mark.slow
def test_peers_suite_at_four_qubits_has_every_row(tmp_path, monkeypatch):
    """CI-sized: only the peers installed in this interpreter run (no per-peer environments here); every variant
    has its row, skipped ones with a reason; whatever ran agrees with the float64 reference."""
    monkeypatch.setenv("WORKBENCH_PEER_ENVS", str(tmp_path / "no-envs"))
    out = tmp_path / "peers.json"
    result = runner.invoke(bench_app, ["peers", "--qubits", "4", "--batch", "4", "--repeats", "1", "--rounds", "2",
                                       "--max-seconds", "2", "--grad-qubits", "4", "--grad-batch", "2",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    data = json.loads(out.read_text())
    rows = {(r["variant"], r["n"]): r for r in data["rows"]}
    assert set(rows) == {(v, 4) for v in VARIANTS}
    for variant in VARIANTS:
        row, info = rows[(variant, 4)], data["peers"][variant]
        if info["status"] == "skipped":
            assert row["status"] == "skipped" and row["reason"], row
        else:
            assert row["status"] in ("ok", "over budget"), row
            if row["status"] == "ok":
                assert row["cpu_ms"] > 0 and row["step_ms"] > 0 and len(row["rounds"]) == 2
                assert all(len(r["load_average"]) == 3 for r in row["rounds"])
            else:
                assert "budget" in row["reason"]
    for variant in (*OURS, "cudaq-parameter-shift"):
        assert rows[(variant, 4)]["status"] == "ok"
    for variant in ("tyxonq-vmap", "pyqtorch-adjoint", "tensorcircuit-torch", "torchquantum"):
        if data["peers"][variant]["status"] == "skipped":
            assert "--setup" in data["peers"][variant]["reason"] or "import" in data["peers"][variant]["reason"]
    checked = {(a["variant"], a["dtype"]): a for a in data["reference_agreement"]}
    for variant in (*OURS, "cudaq-parameter-shift", "workbench-qpp-adjoint"):
        assert checked[(variant, "float64")]["max_abs_grad_diff"] <= 1e-12
        assert checked[(variant, "float32")]["max_abs_grad_diff"] <= 1e-6
    headline = data["headline"][0]
    assert headline["n"] == 4 and headline["cpu_ours"] in OURS and headline["cpu_peer"] not in OURS
    assert {r["round"] for r in headline["rounds"]} == {0, 1}
    for entry in headline["rounds"]:  # each ratio compares one round's own measurements
        assert entry["cpu_ms"]["ratio"] == pytest.approx(entry["cpu_ms"]["peer_ms"] / entry["cpu_ms"]["ours_ms"])
    assert "headline" in result.output
