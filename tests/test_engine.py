"""The engine package (issue 9): its import boundary, the execution plan, the gradient registry, torch
conventions, the public QuantumLayer, and the defects found in review."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import workbench as wb
from conftest import layer_for, make_block
from workbench.engine import gradients as G
from workbench.engine.plan import ExecutionConfig, resolve
from workbench.engine.block import quantum_block

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "workbench" / "engine"


# ------------------------------------------------------------------------------------------------
# Package boundary


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(absolute module imported, at module level) for every import statement of a file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` blocks run no import
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            top_level -= {id(n) for n in node.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, id(node) in top_level))
    return found


def test_engine_imports_nothing_from_outside_the_engine():
    offenders = []
    for path in sorted(ENGINE.rglob("*.py")):
        for module, _ in _imports(path):
            if module.startswith("workbench") and not module.startswith("workbench.engine"):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, offenders


def test_engine_has_no_import_cycles_and_no_oversized_file():
    modules = {_module_name(p): p for p in ENGINE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for module, top in _imports(path):
            if not top:
                continue
            # `from .x import y` may name a submodule or an attribute: keep whichever is a module here.
            while module and module not in modules:
                module = module.rsplit(".", 1)[0] if "." in module else ""
            if module and module != name:
                targets.add(module)
        graph[name] = targets

    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle.extend(stack[stack.index(nxt):] + [nxt])
                return True
            if nxt not in state and visit(nxt, stack + [nxt]):
                return True
        state[node] = 2
        return False

    for name in graph:
        if name not in state and visit(name, [name]):
            break
    assert not cycle, " -> ".join(cycle)
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in ENGINE.rglob("*.py")}
    assert max(sizes.values()) <= 600, {k: v for k, v in sizes.items() if v > 600}


def test_importing_the_engine_does_not_load_cudaq_or_the_rest_of_the_workbench():
    code = ("import sys, workbench.engine as E; E.QuantumLayer(qubits=2, depth=1); "
            "print(sorted(m for m in sys.modules if m.startswith('workbench') and not m.startswith('workbench.engine'))"
            ", 'cudaq' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    # Importing workbench.engine runs workbench/__init__ (the package's own entry points), but the engine
    # pulls in neither CUDA-Q nor training, GUI, bench.
    outside, cudaq_loaded = done.stdout.strip().rsplit(" ", 1)
    assert cudaq_loaded == "False"
    assert not any(m.startswith(("workbench.gui", "workbench.bench", "workbench.training")) for m in eval(outside))


# ------------------------------------------------------------------------------------------------
# The execution plan


@pytest.mark.parametrize("options, method, words", [
    ({"target": "qpp-cpu"}, "adjoint", "exact simulator"),
    ({"target": "torch", "shots": 100}, "parameter_shift", "100 shots"),
    ({"target": "ionq"}, "parameter_shift", "hardware"),
    ({"target": "torch-density", "noise": {"depolarizing": 0.01}}, "density_matrix", "noisy"),
])
def test_resolve_picks_the_method_auto_picked_before_and_says_why(options, method, words):
    plan = resolve(ExecutionConfig(**options), quantum_block(qubits=3, depth=1))
    assert plan.gradient == method and words in plan.gradient_reason
    assert not plan.problems


def test_resolve_fills_in_shots_density_memory_and_hints():
    block = quantum_block(qubits=12, depth=1)
    hardware = resolve(ExecutionConfig(target="quantinuum"), block)
    assert hardware.shots == 1000 and hardware.target.hardware
    dm = resolve(ExecutionConfig(target="torch-density", noise={"depolarizing": 0.1}), quantum_block(qubits=3))
    assert dm.density and dm.state_bytes == 4**3 * 16 and dm.memory_estimate(2) == 2 * 4 * 4**3 * 16
    slow = resolve(ExecutionConfig(target="qpp-cpu"), block)
    assert slow.hints and "torch" in slow.hints[0] and "torch" in slow.gradient_reason
    assert not resolve(ExecutionConfig(target="torch"), block).hints


def test_resolve_collects_problems_with_their_error_types():
    block = quantum_block(qubits=2, depth=1)
    plan = resolve(ExecutionConfig(target="iqm", gradient="adjoint"), block)
    kinds = [p.error.__name__ for p in plan.problems]
    assert kinds == ["TargetError", "GradientError"]
    assert "mapping_file" in plan.problems[0].message and "parameter_shift" in plan.problems[1].message
    with pytest.raises(wb.engine.TargetError, match="mapping_file"):
        plan.check()
    noisy = resolve(ExecutionConfig(target="qpp-cpu", noise={"bit_flip": 0.1}), block)
    assert any("density-matrix" in p.message for p in noisy.problems)
    with pytest.raises(ValueError, match="precision"):
        ExecutionConfig(precision="quad")
    with pytest.raises(ValueError, match="shots"):
        ExecutionConfig(shots=0)


def test_a_mapping_file_that_cudaq_could_not_read_is_refused_before_the_target_is_selected(tmp_path):
    from workbench.engine.executors.cudaq_runtime import TargetConfig, check_target

    def check(path):
        check_target(TargetConfig("iqm", options=(("mapping_file", str(path)),)))

    with pytest.raises(wb.engine.TargetError, match="cannot be read"):
        check(tmp_path / "missing.txt")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("qubits: 0-1, 1-2\n")
    with pytest.raises(wb.engine.TargetError, match="does not start with 'Number of nodes: N'"):
        check(wrong)
    wrong.write_text("Number of nodes: 2\n0 --> {1}\n1 --> {2}\n")
    with pytest.raises(wb.engine.TargetError, match="line 3: qubit 2 is outside the 2 declared nodes"):
        check(wrong)
    line = tmp_path / "line.txt"
    line.write_text("Number of nodes: 3\nNumber of edges: ?\n0 --> {1}\n1 --> {0, 2}\n2 --> {1}\n")
    check(line)


def test_train_config_carries_every_execution_option():
    from workbench.training import TrainConfig, TrainingError

    config = TrainConfig(target="iqm", target_options={"mapping_file": "m.txt"}, emulate=True, shots=50)
    assert config.execution == ExecutionConfig(target="iqm", target_options={"mapping_file": "m.txt"}, shots=50)
    assert config.compile_options() == {"execution": config.execution}
    with pytest.raises(TrainingError, match="unknown gradient"):
        TrainConfig(gradient="magic")


# ------------------------------------------------------------------------------------------------
# Gradient registry


def test_registry_lists_methods_and_accepts_pennylane_spellings():
    names = G.method_names()
    assert names[0] == "auto" and set(names) == {"auto", "adjoint", "parameter_shift", "finite_diff",
                                                 "density_matrix", "backprop"} | set(names[6:])
    assert G.canonical_name("parameter-shift") == "parameter_shift"
    assert G.canonical_name("finite-diff") == "finite_diff"
    layer = layer_for(make_block("angle", "he-linear", "z", depth=1), 3, gradient="parameter-shift")
    assert layer.gradient_method == "parameter_shift"
    assert set(G.method_summaries()) == set(names)


def test_a_method_is_one_class_through_the_executor_interface():
    """A new method registers itself and runs on the torch engines and on CUDA-Q alike (here: forward
    differences, checked against the exact adjoint gradient)."""

    class ForwardDiff(G.GradientMethod):
        name = "forward_diff_test"
        summary = "forward differences (test)"

        def vjp(self, angles, init, saved, grad_out, need_init):
            eps = 1e-6
            base = self.executor.readout(angles, init)
            grads = []
            for k in range(angles.shape[1]):
                moved = angles.clone()
                moved[:, k] += eps
                grads.append(((self.executor.readout(moved, init) - base) / eps * grad_out).sum(1))
            return torch.stack(grads, 1), None

    G.register(ForwardDiff)
    try:
        block = make_block("angle", "he-linear", "z", depth=1)
        x = torch.tensor([[0.3, -0.2, 0.5]], dtype=torch.float64)
        for target in ("torch", "qpp-cpu"):
            layer = layer_for(block, 3, target=target, gradient="forward_diff_test")
            exact = layer_for(block, 3, target="torch", gradient="adjoint")
            exact.load_state_dict(layer.state_dict())
            layer(x).sum().backward()
            exact(x).sum().backward()
            np.testing.assert_allclose(layer.weight.grad.numpy(), exact.weight.grad.numpy(), atol=1e-5)
    finally:
        G.base._REGISTRY.pop("forward_diff_test")


# ------------------------------------------------------------------------------------------------
# Defects from the review


@pytest.mark.parametrize("qubits", [2, 3])
def test_density_matrix_cpu_adjoint_input_gradient_of_amplitude_encoding(qubits):
    """density-matrix-cpu without noise reads states back from ρ, up to a global phase; the input gradient
    of amplitude encoding was scaled by that phase's cosine (0.986 at 2 qubits). Oracle: torch backprop."""
    block = {"type": "quantum", "id": "q", "qubits": qubits, "encoding": "amplitude", "depth": 2,
             "readout": {"observables": ["X" + "Z" * (qubits - 1), "Y" * qubits]}}
    features = 2**qubits
    dm = layer_for(block, features, target="density-matrix-cpu")
    assert dm.gradient_method == "adjoint"
    oracle = layer_for(block, features, target="torch", gradient="backprop")
    oracle.load_state_dict(dm.state_dict())
    x = torch.tensor(np.random.default_rng(qubits).normal(size=(3, features)), requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    weights = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    (dm(x) * weights).sum().backward()
    (oracle(x2) * weights).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(dm.weight.grad.numpy(), oracle.weight.grad.numpy(), atol=1e-10)


# ------------------------------------------------------------------------------------------------
# Torch conventions


def _spec(qubits: int = 3) -> dict:
    return {"input_shape": [4], "task": "regression", "blocks": [
        {"type": "linear", "id": "fc", "out_features": qubits},
        {"type": "quantum", "id": "q", "qubits": qubits, "depth": 2},
        {"type": "linear", "id": "head", "out_features": 1}]}


def test_model_double_switches_the_quantum_layer_to_complex128():
    model = wb.compile(_spec(), seed=1)
    layer = model.quantum_layers["q"]
    assert layer.executor.program.dtype == torch.complex64
    model.double()
    assert layer.executor.program.dtype == torch.complex128 and layer.weight.dtype == torch.float64
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    out = model(x)
    assert out.dtype == torch.float64
    assert torch.autograd.gradcheck(lambda v: model(v), (x,), eps=1e-6, atol=1e-8)
    model.to(torch.float32)
    assert layer.executor.program.dtype == torch.complex64 and model(x.detach()).dtype == torch.float32


def test_double_precision_is_float64_end_to_end_and_survives_save_and_load(tmp_path):
    model = wb.compile(_spec(), precision="double", seed=2)
    assert model.blocks["fc"].weight.dtype == torch.float64 and model.blocks["head"].weight.dtype == torch.float64
    x = torch.randn(5, 4)  # float32 data, as datasets give it
    out = model(x)
    assert out.dtype == torch.float64
    path = model.save(tmp_path / "m.pt")
    loaded = wb.load_model(path)
    assert loaded.blocks["fc"].weight.dtype == torch.float64
    torch.testing.assert_close(loaded(x), out, rtol=0, atol=1e-14)
    # model.double() on a single-precision model is saved as what it is now.
    cast = wb.compile(_spec(), seed=2).double()
    reloaded = wb.load_model(cast.save(tmp_path / "cast.pt"))
    assert reloaded.quantum_layers["q"].weight.dtype == torch.float64
    assert reloaded.quantum_layers["q"].executor.program.dtype == torch.complex128


def test_compile_seed_leaves_the_global_random_state_alone_and_repeats():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = wb.compile(_spec(), seed=7)
    after = torch.rand(3)
    assert torch.equal(after, expected)
    second = wb.compile(_spec(), seed=7)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_initial_weights_and_the_weight_layout_table():
    block = quantum_block(qubits=2, depth=2, rotations=["ry", "rz"])
    start = torch.arange(8, dtype=torch.float64) / 10
    layer = wb.QuantumLayer(block, 2, initial_weights=start, precision="double")
    assert torch.equal(layer.weight.detach(), start)
    layout = [(s.index, s.gate, s.qubit, s.layer) for s in layer.weight_layout()]
    assert layout == [(0, "ry", 0, 0), (1, "rz", 0, 0), (2, "ry", 1, 0), (3, "rz", 1, 0),
                      (4, "ry", 0, 1), (5, "rz", 0, 1), (6, "ry", 1, 1), (7, "rz", 1, 1)]
    # Each slot names the gate the weight really drives in the circuit.
    for slot in layer.weight_layout():
        gate = layer.circuit.gates[slot.gate_index]
        assert gate.param.kind == "weight" and gate.param.index == slot.index and gate.wires == (slot.qubit,)
    assert "index  gate" in layer.weight_table()
    model = wb.compile({"input_shape": [2], "blocks": [{"type": "quantum", "id": "q", "qubits": 2}]},
                       initial_weights={"q": start.tolist()})
    torch.testing.assert_close(model.blocks["q"].weight.detach(), start.float())
    with pytest.raises(ValueError, match="8 weights"):
        wb.QuantumLayer(block, 2, initial_weights=[0.0, 1.0])
    with pytest.raises(ValueError, match="not quantum blocks"):
        wb.compile({"input_shape": [2], "blocks": [{"type": "quantum", "id": "q", "qubits": 2}]},
                   initial_weights={"nope": [0.0]})


# ------------------------------------------------------------------------------------------------
# The public QuantumLayer


def test_public_quantum_layer_validates_like_the_spec():
    with pytest.raises(wb.SpecError, match="field depth"):
        wb.QuantumLayer(qubits=2, depth=0)
    with pytest.raises(wb.SpecError, match="readout.observables"):
        wb.QuantumLayer(qubits=2, readout={"observables": ["ZZZ"]})
    with pytest.raises(wb.engine.GradientError, match="unknown gradient"):
        wb.QuantumLayer(qubits=2, gradient="magic")


def test_public_quantum_layer_trains_inside_a_users_module():
    """The README example: a QuantumLayer between two linear layers learns y = sin(x0) * cos(x1) on a grid,
    and the layer's output matches the dense-matrix oracle for its weights."""
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pre = nn.Linear(2, 2)
            self.quantum = wb.QuantumLayer(qubits=2, encoding="angle", ansatz="hardware_efficient", depth=2,
                                           target="torch", gradient="auto")
            self.head = nn.Linear(2, 1)

        def forward(self, x):
            return self.head(self.quantum(torch.tanh(self.pre(x)) * math.pi))

    grid = torch.linspace(-1, 1, 6)
    X = torch.cartesian_prod(grid, grid)
    y = (torch.sin(2 * X[:, 0]) * torch.cos(2 * X[:, 1])).unsqueeze(1)
    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    first = None
    for _ in range(150):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(X), y)
        loss.backward()
        optimizer.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < 0.25 * first and float(loss.detach()) < 0.05
    from conftest import forward as oracle_forward

    angles = (torch.tanh(net.pre(X[:4])) * math.pi).detach()
    block = dict(net.quantum.block.model_dump(mode="json"))
    got = net.quantum(angles).detach().double().numpy()
    np.testing.assert_allclose(got, oracle_forward(block, angles.double().numpy(),
                                                   net.quantum.weight.detach().double().numpy()), atol=1e-5)


# ------------------------------------------------------------------------------------------------
# iqm (a hardware target that needs a mapping file) from the CLI


@pytest.mark.slow
def test_iqm_with_a_mapping_file_trains_from_the_cli(tmp_path):
    mapping = tmp_path / "iqm-3.txt"
    # CUDA-Q's QPU architecture format: the node count, then each node's neighbours (a 3-qubit line).
    mapping.write_text("Number of nodes: 3\nNumber of edges: ?\n0 --> {1}\n1 --> {0, 2}\n2 --> {1}\n")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "iqm-tiny", "task": "classification", "input_shape": [2], "blocks": [
        {"type": "quantum", "id": "q", "qubits": 2, "depth": 1, "role": "output",
         "readout": {"observables": ["ZI"]}}]}))
    out, db = tmp_path / "out.json", tmp_path / "runs.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "train", "--spec", str(spec), "--dataset",
                           "circles", "--option", "n_samples=12", "--epochs", "1", "--batch-size", "8",
                           "--target", "iqm", "--target-option", f"mapping_file={mapping}", "--shots", "200",
                           "--store", str(db), "--out", str(out), "--yes"], capture_output=True, text=True, env=env,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert summary["status"] == "completed"
    assert summary["gradient"]["q"]["method"] == "parameter_shift"
    from workbench.store import RunStore

    record = RunStore(db).get_run(summary["run_id"])
    assert record.config["target"] == "iqm" and record.config["target_options"] == {"mapping_file": str(mapping)}
    # Without the mapping file the CLI says what is missing.
    missing = subprocess.run([sys.executable, "-m", "workbench.cli", "train", "--spec", str(spec), "--dataset",
                              "circles", "--option", "n_samples=12", "--epochs", "1", "--target", "iqm",
                              "--store", str(db)], capture_output=True, text=True, env=env, timeout=600)
    assert missing.returncode != 0 and "mapping_file" in missing.stderr + missing.stdout


# ------------------------------------------------------------------------------------------------
# CUDA-Q CPU path: fused single-qubit runs


def test_u3_angles_reproduce_every_single_qubit_unitary_up_to_a_global_phase():
    from workbench.engine.executors.cudaq import u3_angles

    torch.manual_seed(0)
    unitaries, _ = torch.linalg.qr(torch.randn(200, 2, 2, dtype=torch.complex128))
    special = torch.tensor([[[1, 0], [0, 1j]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]],
                           dtype=torch.complex128)
    unitaries = torch.cat([unitaries, special])
    angles, alpha = u3_angles(unitaries)
    theta, phi, lam = angles.unbind(-1)
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    rebuilt = torch.stack([torch.stack([c + 0j, -torch.exp(1j * lam) * s], -1),
                           torch.stack([torch.exp(1j * phi) * s, torch.exp(1j * (phi + lam)) * c], -1)], -2)
    torch.testing.assert_close(torch.exp(1j * alpha)[:, None, None] * rebuilt, unitaries, rtol=0, atol=1e-14)


@pytest.mark.parametrize("qubits, target", [(3, "qpp-cpu"), (6, "qpp-cpu"), (6, "density-matrix-cpu")])
def test_cudaq_adjoint_agrees_with_the_torch_engine(qubits, target):
    """qpp-cpu runs fused u3 gates (states get the circuit's global phase back); density-matrix-cpu reads
    states from ρ without a phase. From 5 qubits the adjoint sweep's product-state shortcut needs that phase
    (it went wrong on 9f01f3e for density-matrix-cpu, and for fused states before the phase was restored)."""
    block = {"type": "quantum", "id": "q", "qubits": qubits, "encoding": "reupload", "rotation": "rx", "depth": 3,
             "ansatz": "hardware_efficient", "entanglement": "ring", "rotations": ["rx", "ry", "rz"],
             "readout": {"observables": ["X" + "Z" * (qubits - 1), "Y" * qubits, "I" * (qubits - 1) + "Z"]}}
    layer = layer_for(block, qubits, target=target, gradient="adjoint")
    torch_layer = layer_for(block, qubits, target="torch", gradient="adjoint")
    torch_layer.load_state_dict(layer.state_dict())
    executor = layer.executor
    assert executor.fused == (target == "qpp-cpu")
    if executor.fused:
        assert len(executor.codes) < len(layer.circuit.gates)
    x = torch.tensor(np.random.default_rng(qubits).uniform(-2, 2, size=(2, qubits)), requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out, ref = layer(x), torch_layer(x2)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(layer.weight.grad, torch_layer.weight.grad, rtol=0, atol=1e-12)
