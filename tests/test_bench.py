"""The benchmark suites at their smallest sizes: every command runs, its JSON has every row it should, and the
optimised statevector engine stays exact. No timing assertions."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from workbench.bench.cli import bench_app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _invoke(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "result.json"
    html = tmp_path / "report.html"
    result = runner.invoke(bench_app, [*args, "--out", str(out), "--html", str(html)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    data = json.loads(out.read_text())
    page = html.read_text()
    assert "<html" in page and "Plotly.newPlot" in page
    assert re.search(r"<script[^>]*src=[\"']https?://", page) is None  # plotly.js inlined: opens offline
    return data


def test_engine_rows_and_ratio_checks(tmp_path):
    data = _invoke(tmp_path, "engine", "--qubits", "4", "--batch", "4", "--repeats", "1", "--rounds", "1",
                   "--shift-qubits", "4")
    assert data["suite"] == "engine"
    got = {(r["n"], r["executor"], r["gradient"]): r for r in data["rows"]}
    for key in [(4, "torch", "backprop"), (4, "torch", "adjoint"), (4, "qpp-cpu", "adjoint"),
                (4, "qpp-cpu", "parameter_shift")]:
        assert key in got, key
        row = got[key]
        assert row["status"] == "ok", row
        for field in ("forward_ms", "backward_ms", "optimizer_ms", "step_ms"):
            assert row[field] > 0
    names = [(c["name"], c.get("executor")) for c in data["checks"]]
    assert ("adjoint backward / forward", "torch") in names
    assert ("adjoint backward / forward", "qpp-cpu") in names
    shift = [c for c in data["checks"] if c["name"] == "CUDA-Q adjoint speed-up over parameter shift"]
    assert len(shift) == 1 and shift[0]["value"] > 0 and shift[0]["parameters"] == 16
    assert data["machine"]["torch"] and "load_average" in data["machine"]


def test_gradient_rows_errors_and_recommendation(tmp_path):
    data = _invoke(tmp_path, "gradient", "--qubits", "4", "--batches", "4", "--repeats", "1", "--rounds", "1")
    rows = {(r["executor"], r["gradient"], r["precision"]): r for r in data["rows"]}
    for key in [("torch", "backprop", "single"), ("torch", "adjoint", "single"), ("torch", "parameter_shift", "single"),
                ("torch", "finite_diff", "single"), ("torch", "adjoint", "double"), ("qpp-cpu", "adjoint", "single"),
                ("qpp-cpu", "parameter_shift", "single"), ("qpp-cpu", "finite_diff", "single")]:
        row = rows[key]
        assert row["status"] == "ok", row
        assert row["step_ms"] > 0 and row["peak_bytes"] is not None
        limit = 1e-2 if key[1] == "finite_diff" else 1e-5
        assert row["grad_error_rel"] < limit, row
    assert data["recommendation"]["sentence"].startswith("for this network on this machine use ")
    assert " because " in data["recommendation"]["sentence"]


def test_recommend_api_for_a_template():
    from workbench import templates
    from workbench.bench import recommend

    advice = recommend(templates.get("vqc-circles"), batch=4, repeats=1, targets=["torch"], max_seconds=10)
    assert advice["target"] == "torch"
    assert advice["gradient"] in ("adjoint", "backprop", "parameter_shift", "finite_diff")
    assert advice["sentence"].startswith("for this network on this machine use")
    assert {r["gradient"] for r in advice["rows"]} >= {"adjoint", "backprop"}


def test_scaling_rows_carry_the_bandwidth_limit(tmp_path):
    data = _invoke(tmp_path, "scaling", "--qubits", "4,6", "--batches", "2", "--batch-qubits", "4", "--repeats", "1",
                   "--rounds", "1", "--max-seconds", "20")
    assert data["bandwidth"]["gb_per_s"] > 0
    qubit_rows = [r for r in data["rows"] if r["sweep"] == "qubits"]
    for n in (4, 6):
        for executor in (("torch", "adjoint"), ("torch", "backprop"), ("qpp-cpu", "adjoint")):
            row = next(r for r in qubit_rows if r["n"] == n and (r["executor"], r["gradient"]) == executor)
            assert row["status"] == "ok", row
            assert row["sweep_ms"] > 0 and row["step_over_sweep"] > 0 and row["peak_bytes"] is not None
    batch_rows = [r for r in data["rows"] if r["sweep"] == "batch"]
    assert {(r["n"], r["batch"]) for r in batch_rows} == {(4, 2)}


def test_baseline_rows(tmp_path):
    data = _invoke(tmp_path, "baseline", "--epochs", "2", "--qubits", "4")
    hybrid, classical = data["rows"]
    assert hybrid["model"] == "hybrid" and classical["model"] == "classical"
    assert hybrid["quantum_parameters"] > 0 and classical["quantum_parameters"] == 0
    assert classical["parameters"] >= hybrid["parameters"]  # the dense stand-in has at least the circuit's weights
    for row in (hybrid, classical):
        assert 0 <= row["test_accuracy"] <= 1 and row["ms_per_step"] > 0


def test_gpu_check_says_no_gpu_on_cpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the check would measure it")
    proc = subprocess.run([sys.executable, "-m", "workbench.bench.gpu_check", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no GPU" in proc.stdout
    assert json.loads((tmp_path / "gpu_check.json").read_text())["gpu"] is False


def test_module_entry_point_lists_the_suites():
    proc = subprocess.run([sys.executable, "-m", "workbench.bench", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("engine", "gradient", "scaling", "peers", "baseline"):
        assert command in proc.stdout


# ---------------------------------------------------------------------------------------------
# The optimised engine stays exact: adjoint == autograd to ~1e-12 in double, across its code paths.


def _block(n: int, **overrides) -> dict:
    block = {"type": "quantum", "id": "q", "qubits": n, "encoding": "angle", "rotation": "ry",
             "ansatz": "hardware_efficient", "depth": 2, "rotations": ["ry", "rz"], "entanglement": "ring"}
    block.update(overrides)
    return block


CIRCUITS = [
    _block(3),
    _block(4, rotations=["rx", "ry", "rz"], entanglement="all_to_all"),
    _block(6, ansatz="strongly_entangling", depth=3),
    _block(9),  # several dense blocks per stage, product-state end of the sweep
    _block(5, encoding="iqp", depth=1),  # many single-qubit stages, per-qubit application
    _block(5, encoding="amplitude"),
    _block(4, encoding="none", ansatz="custom", gates=[
        {"gate": "h", "wires": [0]}, {"gate": "cz", "wires": [0, 2]}, {"gate": "rx", "wires": [1], "source": "weight",
                                                                      "index": 0},
        {"gate": "swap", "wires": [1, 3]}, {"gate": "t", "wires": [3]}, {"gate": "ry", "wires": [2], "source": "input",
                                                                          "index": 1},
        {"gate": "cx", "wires": [3, 0]}, {"gate": "rzz", "wires": [0, 1], "source": "weight", "index": 1},
        {"gate": "rz", "wires": [0], "source": "weight", "index": 2}, {"gate": "s", "wires": [2]}]),
]


@pytest.mark.parametrize("block", CIRCUITS, ids=lambda b: f"{b['qubits']}q-{b['encoding']}-{b['ansatz']}")
@pytest.mark.parametrize("readout", [None, {"mode": "estimator", "observables": ["XYZI", "ZZII", "IIIY"]},
                                     {"mode": "sampler", "marginal": [0, 2]}])
def test_statevector_adjoint_equals_autograd(block, readout):
    from workbench import load_spec
    from workbench.engine.circuits import build_circuit, readout_plan
    from workbench.engine.executors.statevector import StatevectorProgram

    n = block["qubits"]
    block = dict(block)
    if readout is not None:
        readout = dict(readout)
        if "observables" in readout:
            readout["observables"] = [(p * n)[:n] for p in readout["observables"]]
        block["readout"] = readout
    if block["encoding"] == "amplitude":
        features = 5
    elif block["ansatz"] == "custom":
        features = 2
    else:
        features = {"iqp": n, "angle": n}[block["encoding"]]
    spec = load_spec({"input_shape": [features], "blocks": [block]})
    q = spec.blocks[0]
    circuit = build_circuit(q, features)
    plan = readout_plan(q)
    generator = torch.Generator().manual_seed(n)
    x = torch.randn(3, features, generator=generator, dtype=torch.float64)
    w = torch.randn(max(circuit.n_weights, 1), generator=generator, dtype=torch.float64)[:circuit.n_weights]
    angles = circuit.angles(x, w)
    init = circuit.initial_state(x, torch.float64)
    program = StatevectorProgram(circuit, torch.complex128)
    upstream = torch.randn(3, plan.width if plan.mode == "sampler" else len(plan.paulis), generator=generator,
                           dtype=torch.float64)
    a = angles.clone().requires_grad_(True)
    i = init.clone().requires_grad_(True) if init is not None else None
    values = program.readout(program.run(a, i), plan)
    expected = torch.autograd.grad(values, [a] + ([i] if i is not None else []), upstream, allow_unused=True)
    psi = program.run(angles, init)
    assert torch.allclose(program.readout(psi, plan), values.detach(), atol=1e-13)
    norms = psi.abs().pow(2).sum(1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-12)
    lam = program.observable_action(psi, plan, upstream)
    grads, initial = program.adjoint_vjp(psi, lam, angles, need_initial=init is not None)
    reference = expected[0] if expected[0] is not None else torch.zeros_like(grads)
    assert (grads - reference).abs().max().item() < 1e-12
    if init is not None:
        assert (initial - expected[1]).abs().max().item() < 1e-12
    program._forward_cache = None  # the sweep without the forward's cached matrices
    again, _ = program.adjoint_vjp(psi, lam, angles, need_initial=init is not None)
    assert (again - reference).abs().max().item() < 1e-12


def test_statevector_matches_a_dense_oracle():
    """Final states against explicit 2^n x 2^n matrices (qubit q = bit q of the index)."""
    from workbench import load_spec
    from workbench.engine.circuits import build_circuit
    from workbench.engine.executors.statevector import StatevectorProgram

    n = 5
    spec = load_spec({"input_shape": [n], "blocks": [_block(n, rotations=["rx", "rz"])]})
    circuit = build_circuit(spec.blocks[0], n)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, n, generator=generator, dtype=torch.float64)
    w = torch.randn(circuit.n_weights, generator=generator, dtype=torch.float64)
    angles = circuit.angles(x, w)
    psi = StatevectorProgram(circuit, torch.complex128).run(angles)
    eye = torch.eye(2, dtype=torch.complex128)
    dim = 2**n

    def on(q: int, m: torch.Tensor) -> torch.Tensor:
        out = torch.ones(1, 1, dtype=torch.complex128)
        for p in reversed(range(n)):
            out = torch.kron(out, m if p == q else eye)
        return out

    def rotation(name: str, theta: float) -> torch.Tensor:
        c, s = math.cos(theta / 2), math.sin(theta / 2)
        return {"rx": torch.tensor([[c, -1j * s], [-1j * s, c]]), "ry": torch.tensor([[c, -s], [s, c]]),
                "rz": torch.tensor([[c - 1j * s, 0], [0, c + 1j * s]])}[name].to(torch.complex128)

    for b in range(2):
        state = torch.zeros(dim, dtype=torch.complex128)
        state[0] = 1
        column = 0
        for gate in circuit.gates:
            if gate.param is not None:
                state = on(gate.wires[0], rotation(gate.name, float(angles[b, column]))) @ state
                column += 1
            else:
                a, t = gate.wires
                idx = torch.arange(dim)
                state = state[idx ^ (((idx >> a) & 1) << t)]
        assert torch.allclose(psi[b], state, atol=1e-12)


@pytest.mark.skipif(importlib.util.find_spec("cudaq") is None, reason="cudaq is not installed")
def test_peer_cudaq_kernel_matches_the_workbench_circuit():
    """The hand-written CUDA-Q kernel is the workload circuit (expectations equal the torch engine's)."""
    from workbench.bench.peer_models import build

    n = 4
    torch.manual_seed(0)
    ours = build("workbench-torch-backprop", n, torch.float64)
    theirs = build("cudaq-parameter-shift", n, torch.float64)
    state = {k.removeprefix("blocks."): v for k, v in ours.model.state_dict().items()}
    theirs.load_common(state)
    x = torch.randn(3, n, dtype=torch.float64)
    assert torch.allclose(ours(x), theirs(x), atol=1e-10)
