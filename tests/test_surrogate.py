"""The surrogate gradient (qtDNN, issue 14): gradient quality against an exact oracle, training under a shot
budget measured against parameter shift, and accounting against the circuits the executor really ran."""

from __future__ import annotations

import pytest
import torch

from workbench import compile as wb_compile
from workbench.bench.surrogate import SMALL_CIRCLES_SPEC, train_under_budget
from workbench.data import load_dataset
from workbench.engine.gradients import GradientContext, GradientError, choose
from workbench.engine.targets import get_target


def choose_gradient(method, *, engine, shots, hardware, noisy, n_angles=None):
    """The engine's choice for a target, shots, noise and angle count (`hardware` comes with the target)."""
    target = get_target(engine)
    assert target.hardware == hardware
    return choose(method, GradientContext(target=target, shots=shots, noisy=noisy, n_angles=n_angles))
from workbench.engine.gradients.surrogate import SurrogateError, cosine
from workbench.training import TrainConfig, Trainer


def _circles():
    return load_dataset("circles", n_samples=300, noise=0.05, standardize=True)


def _weight_gradient(model, X, y) -> torch.Tensor:
    model.zero_grad()
    torch.nn.functional.binary_cross_entropy_with_logits(model(X).squeeze(1), y.float()).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.slow
def test_surrogate_gradient_agrees_with_adjoint_after_fitting():
    """Bound: after 20 fitted minibatches at fixed weights (2-qubit circuit, 3 perturbations per point), the median
    cosine of the last 5 weight gradients with the adjoint (exact) ones exceeds 0.85; so does the live
    angle-level metric. The first minibatch's fit is poor (cosine < 0.5): the bound is earned by fitting."""
    data = _circles()
    torch.manual_seed(1)
    surrogate = wb_compile(SMALL_CIRCLES_SPEC, gradient="surrogate", gradient_options={"perturbations": 3})
    exact = wb_compile(SMALL_CIRCLES_SPEC, gradient="adjoint")
    exact.load_state_dict(surrogate.state_dict())
    cosines, reports = [], []
    for i in range(20):
        j = i % 15
        X, y = data.X_train[16 * j:16 * (j + 1)].float(), data.y_train[16 * j:16 * (j + 1)]
        cosines.append(cosine(_weight_gradient(surrogate, X, y), _weight_gradient(exact, X, y)))
        reports.append(surrogate.quantum_layers["vqc"].gradient_report())
    assert cosines[0] < 0.5, cosines
    assert sorted(cosines[-5:])[2] > 0.85, cosines
    assert reports[-1]["gradient_cosine"] > 0.85, reports[-1]
    assert reports[-1]["fit_error"] < 0.15  # RMS over the buffer, readout in [-1, 1]
    # The forward values are the real circuit's, not the surrogate's.
    X = data.X_test[:20].float()
    with torch.no_grad():
        assert torch.allclose(surrogate(X), exact(X), atol=1e-5)


@pytest.mark.slow
def test_surrogate_beats_parameter_shift_under_one_shot_budget():
    """Circles, 100 shots per circuit, 400,000 training shots each: the surrogate reaches test accuracy >= 0.8
    (best of the evaluations every 5 steps, with 100-shot inference); parameter shift, measured under the same
    budget (6 steps of 16 x (1 + 2 x 18 angles) circuits), does not.
    (With no budget, exact gradients take this model to 0.97: the 0.8 is the budget's limit, not the model's.)"""
    data = _circles()
    budget = 400_000
    results = {method: train_under_budget(SMALL_CIRCLES_SPEC, data, gradient=method, target="torch", shots=100,
                                          shot_budget=budget, batch=16, lr=0.05, seed=0,
                                          gradient_options={"refit_steps": 20})
               for method in ("surrogate", "parameter_shift")}
    for row in results.values():
        assert row["shots"] <= budget
        assert row["shots"] == row["circuits"] * 100
    assert results["surrogate"]["best_test_accuracy"] >= 0.8, results["surrogate"]
    assert results["parameter_shift"]["best_test_accuracy"] < 0.8, results["parameter_shift"]
    assert results["surrogate"]["steps"] > 5 * results["parameter_shift"]["steps"]


def test_accounting_equals_what_the_cudaq_executor_ran():
    """Every circuit and shot in the step events is one the executor ran (qpp-cpu with 50 shots)."""
    data = load_dataset("circles", n_samples=60, noise=0.05, standardize=True)
    config = TrainConfig(epochs=1, batch_size=8, lr=0.05, target="qpp-cpu", shots=50, gradient="surrogate",
                         val_fraction=0.0, boundary_every=0,
                         gradient_options={"perturbations": 2, "refit_steps": 5})
    trainer = Trainer(SMALL_CIRCLES_SPEC, data, config)
    layer = trainer.model.quantum_layers["vqc"]
    ran: list[tuple[int, int]] = []
    readout = layer.executor.readout

    def counted(angles, init):
        ran.append((angles.shape[0], layer.execution.shots))  # the executor draws the plan's shots
        return readout(angles, init)

    layer.executor.readout = counted
    result = trainer.run()
    assert result.status == "completed"
    steps = [e["quantum"]["vqc"] for e in result.history if e["kind"] == "step"]
    assert len(steps) == trainer.steps_per_epoch
    evaluation_rows = len(data.X_test) + len(trainer.X_train)  # the final test + train evaluation, no gradient
    step_rows = sum(rows for rows, _ in ran) - evaluation_rows
    assert step_rows == sum(s["forward_circuits"] + s["surrogate_circuits"] for s in steps)
    assert step_rows == sum(s["circuit_executions"] for s in steps)
    assert all(shots == 50 for _, shots in ran)
    for s in steps:
        batch = s["forward_circuits"]
        assert s["surrogate_circuits"] == 2 * batch
        assert s["forward_shots"] == 50 * batch and s["surrogate_shots"] == 100 * batch
        n_angles = len(layer.circuit.rotation_gates)
        assert s["parameter_shift_circuits"] == 2 * n_angles * batch
        assert s["parameter_shift_shots"] == 50 * s["parameter_shift_circuits"]
        assert 0 <= s["fit_error"] < 2 and -1 <= s["gradient_cosine"] <= 1


def test_auto_never_picks_the_surrogate_and_hints_at_it_on_hardware():
    exact = choose_gradient("auto", engine="torch", shots=None, hardware=False, noisy=False, n_angles=40)
    shots = choose_gradient("auto", engine="qpp-cpu", shots=100, hardware=False, noisy=False, n_angles=40)
    assert "surrogate" not in (exact.method, shots.method) and "surrogate" not in exact.reason
    many = choose_gradient("auto", engine="quantinuum", shots=1000, hardware=True, noisy=False, n_angles=40)
    few = choose_gradient("auto", engine="quantinuum", shots=1000, hardware=True, noisy=False, n_angles=2)
    assert many.method == few.method == "parameter_shift"
    assert "gradient='surrogate'" in many.reason and "80 circuits per sample" in many.reason
    assert "surrogate" not in few.reason
    assert choose_gradient("surrogate", engine="torch", shots=None, hardware=False, noisy=False).method == "surrogate"
    with pytest.raises(GradientError, match="unknown gradient method"):
        choose_gradient("qtdnn", engine="torch", shots=None, hardware=False, noisy=False)
    # Through a real layer on emulated hardware: the layer hands its angle count to auto.
    info = wb_compile(SMALL_CIRCLES_SPEC, target="quantinuum").gradient_info()["vqc"]
    assert info["method"] == "parameter_shift" and "36 circuits per sample" in info["reason"]


def test_bad_surrogate_options_get_one_clear_message():
    with pytest.raises(SurrogateError, match="unknown surrogate option.*buffer_size"):
        wb_compile(SMALL_CIRCLES_SPEC, gradient="surrogate", gradient_options={"bufer_size": 10})
    with pytest.raises(SurrogateError, match="perturbation_scale"):
        wb_compile(SMALL_CIRCLES_SPEC, gradient="surrogate", gradient_options={"perturbation_scale": 0})
    with pytest.raises(ValueError, match="gradient='surrogate'"):
        wb_compile(SMALL_CIRCLES_SPEC, gradient="adjoint", gradient_options={"refit_steps": 3})


def test_bench_surrogate_writes_table_json_and_offline_html(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app

    out, html = tmp_path / "s.json", tmp_path / "s.html"
    result = CliRunner().invoke(app, ["bench", "surrogate", "--shot-budget", "30000", "--seconds", "1",
                                      "--gradient-option", "refit_steps=5", "--out", str(out), "--html", str(html)])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(out.read_text())
    assert {(r["budget"], r["gradient"]) for r in data["rows"]} == {
        (b, g) for b in ("shots", "time") for g in ("parameter_shift", "surrogate")}
    for row in data["rows"]:
        assert row["shots"] == 100 * row["circuits"]
        if row["budget"] == "shots" and row["steps"] > 1:
            assert row["shots"] <= 30000
    assert "parameter_shift" in result.output and "best test acc" in result.output
    page = html.read_text()
    assert "Test accuracy against shots spent" in page and 'src="http' not in page and "Plotly.newPlot" in page
    bad = CliRunner().invoke(app, ["bench", "surrogate", "--gradient-option", "nonsense"])
    assert bad.exit_code == 2 and "key=value" in bad.output


def test_the_train_tab_shows_the_shots_spent_against_parameter_shift():
    """The live dashboard's surrogate line adds up exactly what the step events report."""
    from workbench.gui.charts import LiveData
    from workbench.gui.dashboard import LiveDashboard

    data = load_dataset("circles", n_samples=48, noise=0.05, standardize=True)
    config = TrainConfig(epochs=1, batch_size=8, lr=0.05, shots=20, gradient="surrogate", val_fraction=0.0,
                         boundary_every=0, gradient_options={"perturbations": 1, "refit_steps": 3})
    result = Trainer(SMALL_CIRCLES_SPEC, data, config).run()
    steps = [e["quantum"]["vqc"] for e in result.history if e["kind"] == "step"]
    live = LiveData()
    live.extend(result.history)
    forward = sum(s["forward_shots"] for s in steps)
    fitting = sum(s["surrogate_shots"] for s in steps)
    shift = sum(s["parameter_shift_shots"] for s in steps) + forward
    (line,) = live.surrogate_lines()
    assert f"{forward + fitting:,} shots so far ({forward:,} forward + {fitting:,} fitting)" in line
    assert f"parameter shift would have spent {shift:,}" in line and shift > 5 * (forward + fitting)
    assert f"fit error {steps[-1]['fit_error']:.3f}" in line
    dashboard = LiveDashboard(controls=False)
    dashboard.data = live
    assert "surrogate gradient" in dashboard._headline_html()
