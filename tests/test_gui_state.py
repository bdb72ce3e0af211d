"""GUI state without a browser: builder edits and undo/redo, validation on the right block, URL state
round trip, uploads, generated code that really runs, gradient explanations, GPU targets greyed out,
forms from the schema, the circuit drawing, live chart data, per-session training, the benchmark,
and the Jupyter notebook executed headless."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import workbench as wb
from workbench.gui import charts, forms, share
from workbench.bench.step_benchmark import BenchmarkRun, plan
from workbench.gui.circuit_svg import block_circuit, circuit_stats, circuit_svg, layout
from workbench.gui.run_setup import RunSetup, target_choices
from workbench.gui.state import INPUT, PALETTE, BuilderState, session_payload, validate_spec

ROOT = Path(__file__).resolve().parents[1]


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")


def ids(builder: BuilderState) -> list[str]:
    return [b["id"] for b in builder.blocks]


@pytest.fixture()
def store(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite3"
    monkeypatch.setenv("WORKBENCH_STORE", str(path))
    return wb.RunStore(path)


# ---------------------------------------------------------------------------------------------
# Builder: add, move, duplicate, delete, undo, redo


def test_add_move_duplicate_delete_with_undo_redo():
    b = BuilderState()
    assert b.blocks == [] and not b.valid and "empty" in b.error["message"]
    b.add("linear")
    b.add("scaled_tanh")
    b.add("r_expect")
    assert ids(b) == ["fc1", "act1", "q1"]
    assert b.valid, b.error
    assert b.shapes == [[[2], [4]], [[4], [4]], [[4], [4]]]
    assert b.selected == 2

    b.add("dropout", index=1)
    assert ids(b) == ["fc1", "drop1", "act1", "q1"] and b.selected == 1
    b.move(1, 4)  # dropout to the end: the quantum output is no longer last
    assert ids(b) == ["fc1", "act1", "q1", "drop1"]
    assert not b.valid and b.error["block"] == "q1" and "must be the last block" in b.error["message"]
    b.undo()
    assert ids(b) == ["fc1", "drop1", "act1", "q1"] and b.valid
    assert b.selected == 1  # undo re-selects the block that moved
    b.redo()
    assert ids(b) == ["fc1", "act1", "q1", "drop1"]
    b.undo()

    b.duplicate(0)
    assert ids(b) == ["fc1", "fc2", "drop1", "act1", "q1"] and b.selected == 1
    assert b.blocks[1] == {**b.blocks[0], "id": "fc2"}
    b.delete(1)
    assert ids(b) == ["fc1", "drop1", "act1", "q1"]
    b.undo()
    assert ids(b) == ["fc1", "fc2", "drop1", "act1", "q1"] and b.selected == 1
    # A new edit after undo drops the redo branch.
    b.undo()
    assert b.can_redo
    b.delete(1)
    assert not b.can_redo and ids(b) == ["fc1", "act1", "q1"]
    # Undo all the way back to the empty canvas, then redo everything.
    count = 0
    while b.undo():
        count += 1
    assert b.blocks == [] and not b.can_undo
    for _ in range(count):
        assert b.redo()
    assert ids(b) == ["fc1", "act1", "q1"] and not b.can_redo


def test_canvas_messages_drive_the_same_actions():
    b = BuilderState()
    b.dispatch({"action": "add", "key": "linear"})
    b.dispatch({"action": "add", "key": "q_angle", "index": 0})
    assert ids(b) == ["q1", "fc1"]
    b.dispatch({"action": "move", "from": 1, "to": 0})
    assert ids(b) == ["fc1", "q1"]
    b.dispatch({"action": "duplicate", "index": 1})
    b.dispatch({"action": "delete", "index": 2})
    b.dispatch({"action": "select", "index": -1})
    assert b.selected == INPUT
    b.dispatch({"action": "undo"})
    b.dispatch({"action": "redo"})
    assert ids(b) == ["fc1", "q1"] and b.valid
    with pytest.raises(ValueError):
        b.dispatch({"action": "explode"})


def test_readout_dropped_on_a_quantum_block_replaces_its_readout():
    b = BuilderState()
    b.load_template("hybrid-digits")
    index = ids(b).index("qlayer")
    b.apply_readout(index, "r_logit")
    block = b.blocks[index]
    assert block["role"] == "output" and block["readout"]["observables"] == ["ZIIIII"]  # fitted to 6 qubits
    assert not b.valid and b.error["block"] == "qlayer"  # an output layer must come last
    b.delete(len(b.blocks) - 1)  # remove the classical head
    assert b.valid and b.shapes[-1][1] == [1]
    with pytest.raises(ValueError):
        b.apply_readout(0, "r_expect")  # flatten is not a quantum block


def test_every_palette_block_can_be_added():
    for item in PALETTE:
        b = BuilderState()
        b.add(item.key)
        assert b.blocks[0]["type"] == item.block["type"]
        error, _ = validate_spec(b.spec)
        # Alone after a 2-feature input, a block is either valid or its error names that block.
        assert error is None or error["block"] == b.blocks[0]["id"], (item.key, error)


def test_templates_open_valid_and_load_replaces_with_undo():
    b = BuilderState()
    for name in wb.templates.names():
        b.load_template(name)
        assert b.valid, (name, b.error)
        assert b.spec["name"] == name
    b.undo()
    assert b.spec["name"] == wb.templates.names()[-2]


# ---------------------------------------------------------------------------------------------
# Validation: the message belongs to the offending block, and Train is disabled


def test_validation_message_is_on_the_offending_block():
    b = BuilderState()
    b.load_template("vqc-circles")
    b.set_field(0, "out_features", 3)  # fc_in now feeds 3 features to a 4-qubit re-uploading layer
    assert b.error["block"] == "vqc" and b.error_index == 2
    assert b.error["message"] == ("block vqc: reupload encoding needs 4 features but block fc_in gives 3: "
                                  "set fc_in out_features=4 or use amplitude encoding")
    payload = b.canvas_payload()
    assert [blk["error"] != "" for blk in payload["blocks"]] == [False, False, True]
    assert payload["status"]["ok"] is False
    # Shapes before the offending block are still shown; after it they are unknown.
    assert [blk["in"] for blk in payload["blocks"]] == ["(2,)", "(3,)", "(3,)"]
    assert payload["blocks"][2]["out"] == "?"
    b.undo()
    assert b.valid and b.canvas_payload()["status"]["ok"]


def test_duplicate_ids_and_input_errors_are_placed():
    b = BuilderState()
    b.add("linear")
    b.add("linear")
    b.set_field(1, "id", "fc1")
    assert b.error["field"] == "id" and b.error_index == 1  # the second use is the one to fix
    b.undo()
    b.set_spec_field("input_shape", [0])
    assert b.error["block"] is None and "input_shape" in b.error["message"]
    assert b.canvas_payload()["input_node"]["error"]


def test_train_is_disabled_until_the_network_is_fixed(store):
    from workbench.gui.app import WorkbenchApp

    app = WorkbenchApp(store=store)
    assert app.builder.valid and not app.train_button.disabled
    app.builder.clear()
    app.builder.add("q_angle")
    assert app.train_button.disabled
    assert "angle encoding needs 4 features but the input gives 2" in app.train_blockers()[0]
    assert "needs 4 features" in app.network_status.value
    assert not app.start_training() and "needs 4 features" in app.train.message.value
    # Fix it in the settings form: amplitude encoding holds 2 features in 4 qubits.
    app.builder.select(0)
    _, encoding = app.build._form_widgets["encoding"]
    encoding.value = "amplitude"
    assert app.builder.valid and app.builder.blocks[0]["encoding"] == "amplitude"
    # Valid as a network, but four ⟨Z⟩ scores cannot classify two classes: a 2-score head fixes it.
    assert app.train_button.disabled and "outputs 4 scores" in app.train_blockers()[0]
    app.builder.add("linear")
    app.builder.set_field(1, "out_features", 2)
    assert app.builder.valid and not app.train_button.disabled
    app.shutdown()


def test_form_fields_come_from_the_schema_and_parse_user_text():
    fields = {f.path: f for f in forms.schema_fields("quantum")}
    assert fields["qubits"].kind == "int" and fields["qubits"].maximum == 30
    assert fields["encoding"].options == ["angle", "dense_angle", "amplitude", "iqp", "reupload", "none"]
    assert fields["rotations"].kind == "enum_list"
    assert fields["readout.mode"].group == "Readout" and fields["readout.shots"].kind == "opt_int"
    assert fields["gates"].kind == "json"
    reshape = {f.path: f for f in forms.schema_fields("reshape")}["shape"]
    assert forms.parse_text(reshape, "1, 8 8") == [1, 8, 8]
    with pytest.raises(ValueError, match="not a list of whole numbers"):
        forms.parse_text(reshape, "1, x")
    assert forms.parse_text(fields["readout.observables"], "zii, IZI") == ["ZII", "IZI"]
    assert forms.parse_text(fields["readout.shots"], "") is None
    with pytest.raises(ValueError, match="at least 1"):
        forms.parse_text(fields["readout.shots"], "0")
    with pytest.raises(ValueError, match="not valid JSON"):
        forms.parse_text(fields["gates"], "[{")
    block = {"type": "quantum", "encoding": "amplitude", "ansatz": "custom"}
    assert not forms.relevant(block, fields["rotation"]) and forms.relevant(block, fields["gates"])
    assert forms.with_defaults({"type": "quantum", "id": "q"})["rotations"] == ["ry", "rz"]


# ---------------------------------------------------------------------------------------------
# Sharing: URL state, uploads, generated code


def test_url_state_round_trip_restores_network_and_settings(store):
    from workbench.gui.app import WorkbenchApp

    first = WorkbenchApp(store=store)
    first.open_template("hybrid-digits")
    first.builder.set_field(3, "depth", 3)
    first.setup.param.update(epochs=7, lr=0.01, optimizer="sgd", shots=200, noise={"bit_flip": 0.02})
    token = first.state_token()
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token) and len(token) < 1500
    assert first.export.share_url.value.endswith("?s=" + token)
    second = WorkbenchApp(store=store, state=token)
    assert second.builder.spec == first.builder.spec
    assert second.setup.to_dict() == first.setup.to_dict()
    assert "Restored" in second.restore_message
    assert second.setup_tab.epochs_w.value == 7 and second.setup_tab.optimizer_w.value == "sgd"
    assert share.decode_state(token) == session_payload(first.builder, first.setup)

    # A hand-edited link: valid settings apply, bad ones are named and ignored.
    tampered = share.encode_state({"v": 1, "spec": first.builder.spec,
                                   "setup": {"epochs": 3, "lr": -1, "optimizer": "nope"}})
    third = WorkbenchApp(store=store, state=tampered)
    assert third.setup.epochs == 3 and third.setup.lr == 0.05 and third.setup.optimizer == "adam"
    assert "lr=-1 ignored" in third.restore_message and "optimizer='nope' ignored" in third.restore_message
    third.shutdown()

    broken = WorkbenchApp(store=store, state=token[: len(token) // 2])
    assert "damaged" in broken.restore_message
    assert broken.builder.spec["name"] == "vqc-circles"  # fell back to the default template
    for app in (first, second, broken):
        app.shutdown()


def test_bad_uploads_change_nothing_and_say_why(store, tmp_path):
    from workbench.gui.app import WorkbenchApp

    app = WorkbenchApp(store=store)
    before = json.dumps(app.builder.spec, sort_keys=True)
    cases = {
        b"not json {": "not valid JSON",
        b"[1, 2]": "not a network spec",
        json.dumps({"input_shape": [2], "blocks": [{"type": "quantum", "id": "q", "qubits": 4}]}).encode():
            "angle encoding needs 4 features",
        json.dumps({"input_shape": [2], "blocks": [{"type": "teleporter", "id": "t"}]}).encode(): "unknown",
        b"\xff\xfe\x00": "not a text file",
    }
    for data, expected in cases.items():
        message = app.apply_upload(data, "bad.json")
        assert expected in message and "Nothing was changed" in message, message
        assert json.dumps(app.builder.spec, sort_keys=True) == before
    good = wb.templates.get("quantum-output").to_json().encode()
    message = app.apply_upload(good, "qo.json")
    assert "Loaded qo.json (3 blocks)" in message and "Dataset set to iris" in message
    assert app.builder.spec["name"] == "quantum-output" and app.setup.dataset == "iris"
    assert not app.train_button.disabled
    app.builder.undo()
    assert json.dumps(app.builder.spec, sort_keys=True) == before
    app.shutdown()


def test_generated_code_rebuilds_and_trains_the_model(tmp_path):
    b = BuilderState()
    b.load_template("vqc-circles")
    setup = RunSetup()
    setup.use_template_dataset("vqc-circles")
    setup.param.update(epochs=1, batch_size=16, lr=0.1, seed=3,
                       dataset_options={**setup.dataset_options, "n_samples": 60})
    code = share.generate_code(b.spec, setup.to_dict(), weights_path="trained.pt")
    assert "workbench.compile(spec, **COMPILE)" in code and "from workbench.training import train" in code
    script = tmp_path / "train_network.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_STORE": str(tmp_path / "unused.sqlite3")}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "status: completed" in done.stdout and "total trainable parameters: 36" in done.stdout
    model = wb.load_model(tmp_path / "trained.pt")
    assert model.spec.to_dict() == wb.load_spec(b.spec).to_dict()
    assert model.config["target"] == "torch"


# ---------------------------------------------------------------------------------------------
# Run setup: gradient explanation, targets


def test_gradient_auto_explains_its_choice():
    spec = wb.templates.get("vqc-circles").to_dict()
    s = RunSetup()
    line = s.gradient_explanation(spec)["lines"][0]
    assert (line["block"], line["method"]) == ("vqc", "adjoint") and "exact simulator" in line["reason"]
    s.shots = 500
    line = s.gradient_explanation(spec)["lines"][0]
    assert line["method"] == "parameter_shift" and "500 shots" in line["reason"]
    s.param.update(shots=0, noise={"depolarizing": 0.01})
    assert s.gradient_explanation(spec)["lines"][0]["method"] == "density_matrix"
    s.param.update(noise={}, gradient="backprop", target="qpp-cpu")
    result = s.gradient_explanation(spec)
    assert not result["ok"] and "backprop differentiates the torch engine" in result["error"]
    s.param.update(gradient="auto", target="quantinuum")
    result = s.gradient_explanation(spec)  # emulated hardware only measures: no exact expectations
    assert not result["ok"] and "set Shots above 0" in result["error"]
    s.shots = 1000
    line = s.gradient_explanation(spec)["lines"][0]
    assert line["method"] == "parameter_shift" and "hardware" in line["reason"]
    s.param.update(target="qpp-cpu", shots=0, noise={"depolarizing": 0.01})
    assert "density-matrix" in s.gradient_explanation(spec)["error"]


def test_gpu_targets_are_disabled_with_the_reason(monkeypatch, store):
    from workbench.engine.executors import cudaq_runtime as _cudaq
    from workbench.gui import run_setup
    from workbench.gui.app import WorkbenchApp

    monkeypatch.setattr(_cudaq, "gpu_count", lambda: 0)
    run_setup._engine_targets.cache_clear()
    try:
        choices = {c["name"]: c for c in target_choices()}
        assert choices["torch"]["reason"] == "" and choices["qpp-cpu"]["reason"] == ""
        for gpu in ("nvidia", "nvidia-fp64", "nvidia-mqpu", "tensornet"):
            assert choices[gpu]["kind"] == "gpu" and "needs an NVIDIA GPU" in choices[gpu]["reason"]
        assert "emulated" in choices["ionq"]["label"]
        app = WorkbenchApp(store=store)
        disabled = set(app.setup_tab.target_w.disabled_options)
        assert {choices["nvidia"]["label"], choices["tensornet"]["label"]} <= disabled
        assert choices["qpp-cpu"]["label"] not in disabled
        app.setup_tab.target_w.value = choices["qpp-cpu"]["label"]
        assert app.setup.target == "qpp-cpu"
        assert "needs an NVIDIA GPU" in app.setup_tab.target_reasons.object
        app.setup.target = "nvidia"  # e.g. from a link made on a GPU machine
        assert app.train_button.disabled and "needs an NVIDIA GPU" in app.train_blockers()[0]
        app.shutdown()
    finally:
        run_setup._engine_targets.cache_clear()


# ---------------------------------------------------------------------------------------------
# Circuit view


def test_circuit_svg_draws_the_gate_list():
    spec = wb.templates.get("vqc-circles").to_dict()
    circuit, plan_, quantum = block_circuit(spec["blocks"][2], 4)
    svg = circuit_svg(circuit, plan_)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    counts = circuit.gate_counts()
    assert svg.count('data-gate="ry"') == counts["ry"] and svg.count('data-gate="rz"') == counts["rz"]
    assert svg.count('data-gate="cx-target"') == counts["cx"] == 12
    assert svg.count('data-source="input"') == 12 and svg.count('data-source="weight"') == 24
    assert "θ₂₃" in svg and "x₃" in svg and "⟨ZIII⟩" in svg
    columns, depth = layout(circuit)
    assert len(columns) == len(circuit.gates) and depth == 21
    stats = circuit_stats(circuit, quantum, batch=32)
    assert (stats["qubits"], stats["trainable"], stats["gates"]) == (4, 24, 48)
    assert stats["state_bytes"] == 16 * 8 and stats["batch_bytes"] == 16 * 8 * 32 * 4
    noisy = circuit_stats(circuit, quantum, batch=1, execution={"noise": {"depolarizing": 0.01}, "precision": "double"})
    assert noisy["state_bytes"] == 256 * 16 and noisy["representation"] == "density matrix"
    # Settings change the drawing: one layer less removes its rotations.
    shallower = dict(spec["blocks"][2], depth=2)
    assert circuit_svg(*block_circuit(shallower, 4)[:2]).count('data-gate="ry"') == counts["ry"] - 8
    amplitude = block_circuit({"type": "quantum", "id": "a", "qubits": 3, "encoding": "amplitude"}, 6)[0]
    assert 'data-gate="amplitude"' in circuit_svg(amplitude)


# ---------------------------------------------------------------------------------------------
# Live data and the dashboard


def test_live_data_from_a_real_training_stream():
    from workbench.data import load_dataset
    from workbench.gui.dashboard import LiveDashboard

    data = load_dataset("circles", n_samples=80, noise=0.05, standardize=True)
    trainer = wb.Trainer(wb.templates.get("vqc-circles"), data, wb.TrainConfig(epochs=2, batch_size=16,
                                                                               boundary_every=1))
    dash = LiveDashboard()
    dash.attach(trainer.stream, trainer)
    trainer.run()
    assert dash.poll() > 0
    d = dash.data
    assert d.status == "completed" and d.points == len(d.steps) + 2
    assert len(d.steps) == trainer.steps_per_epoch * 2 == len(d.loss)
    assert set(d.grad_norm) == {"fc_in", "vqc"} and all(len(v) == len(d.steps) for v in d.grad_norm.values())
    assert d.methods == {"vqc": "adjoint"} and d.boundary is not None
    assert dash.loss.figure["data"][0]["x"] == d.steps
    assert dash.gradnorm.figure["data"][0]["y"] == ["fc_in", "vqc"]
    assert dash.boundary.figure["data"][0]["type"] == "contour"
    assert dash.stop_button.disabled and "Completed" in dash.headline.html
    level, hint = d.plateau_hint()
    assert level in ("ok", "weak", "plateau") and "vqc" in hint


def test_plateau_hint_speaks_plainly():
    d = charts.LiveData()
    d.extend([{"kind": "start", "epochs": 1, "steps_per_epoch": 3}] + [
        {"kind": "step", "step": i, "loss": 1.0, "metric": "accuracy", "accuracy": 0.5, "grad_norm": {"q": 1e-4},
         "quantum": {"q": {"gradient_method": "adjoint", "grad_variance": 1e-9, "circuit_executions": 8}}}
        for i in range(3)])
    level, hint = d.plateau_hint()
    assert level == "plateau" and "barren plateau" in hint and "fewer qubits" in hint
    assert charts.variance_figure(d)["layout"]["yaxis"]["type"] == "log"
    assert d.executions == [8, 8, 8]


# ---------------------------------------------------------------------------------------------
# Sessions: training in the background, isolation, shutdown


def test_sessions_train_independently_and_stop_on_close(store):
    from workbench.gui.app import TAB, WorkbenchApp

    a, b = WorkbenchApp(store=store), WorkbenchApp(store=store)
    a.setup.param.update(epochs=400, dataset_options={**a.setup.dataset_options, "n_samples": 120})
    assert a.start_training()
    assert a.tabs.active == TAB["Train"] and a.train_button.disabled
    wait_until(lambda: (a.poll(), a.dashboard.data.points >= 3)[1], message="session A's first steps")
    run_id = a.session.last_run_id
    assert run_id and store.get_run(run_id).status == "running"
    # Session B sees neither A's run nor A's settings.
    b.poll()
    assert b.dashboard.data.points == 0 and b.session.status == "idle" and b.setup.epochs == 20
    b.compare.include_earlier.value = True
    b.compare.refresh_runs()
    assert run_id not in b.compare.run_select.options.values()
    b.builder.clear()
    assert len(a.builder.blocks) == 3
    # Pause holds the steps; resume continues exactly where it stopped.
    a.pause_button.clicks += 1
    assert a.session.status == "paused" and a.resume_button.disabled is False and a.pause_button.disabled
    wait_until(lambda: a.session.trainer.status == "paused", message="the trainer to wait in pause")
    a.poll()
    paused_at = len(a.dashboard.data.steps)
    assert a.dashboard.data.steps == list(range(paused_at))
    a.resume_button.clicks += 1
    wait_until(lambda: (a.poll(), len(a.dashboard.data.steps) > paused_at + 2)[1], message="resume")
    assert a.dashboard.data.steps[:paused_at + 3] == list(range(paused_at + 3))  # no gap, no repeat
    # Closing A's tab stops its training.
    a.shutdown(wait=30)
    assert store.get_run(run_id).status == "cancelled"
    assert a.session.trainer.status == "cancelled"
    b.shutdown()
    # After A closed, its run is history that a later session may include.
    c = WorkbenchApp(store=store)
    c.compare.include_earlier.value = True
    c.compare.refresh_runs()
    assert run_id in c.compare.run_select.options.values()
    c.shutdown()


def test_training_completes_lists_the_run_and_saves_weights(store):
    from workbench.gui.app import TAB, WorkbenchApp

    app = WorkbenchApp(store=store)
    app.setup.param.update(epochs=2, dataset_options={**app.setup.dataset_options, "n_samples": 80})
    assert app.start_training()
    wait_until(lambda: (app.poll(), app.session.status == "completed")[1], timeout=120, message="completion")
    app.poll()
    run_id = app.session.last_run_id
    assert list(app.compare.run_select.options.values()) == [run_id] and app.compare.run_select.value == [run_id]
    assert app.compare.compare_plot.figure["data"][0]["x"]
    assert not app.export.download_weights.disabled
    weights = app.export._weights_file().getvalue()
    assert len(weights) > 1000
    # The matched classical baseline trains with the same settings and joins the comparison.
    assert app.compare.start_baseline()
    app.tabs.active = TAB["Compare"]  # Compare: its charts draw while it is shown
    wait_until(lambda: (app.poll(), app.session.baseline_status == "completed")[1], timeout=120,
               message="baseline")
    app.poll()
    names = [t["name"] for t in app.compare.baseline_plot.figure["data"]]
    assert any(n.startswith("hybrid") for n in names) and any(n.startswith("classical") for n in names)
    assert len(app.compare.run_select.options) == 2
    baseline = store.get_run(app.session.baseline.run_id)
    assert baseline.parent_id == run_id and baseline.spec["name"] == "vqc-circles-classical"
    app.shutdown()


def test_the_baseline_of_a_run_until_paused_trains_its_completed_epochs_and_can_be_stopped(store):
    from workbench.gui.app import TAB, WorkbenchApp

    app = WorkbenchApp(store=store)
    app.setup.param.update(until_paused=True, dataset_options={**app.setup.dataset_options, "n_samples": 80})
    try:
        assert not app.compare.start_baseline()  # no run, no epoch count: nothing to match yet
        assert "no finished epoch to match" in app.compare.baseline_status.value and app.session.baseline is None
        assert app.start_training()
        wait_until(lambda: (app.poll(), len(app.dashboard.data.epochs) >= 2)[1], timeout=120, message="two epochs")
        app.stop_button.clicks += 1
        wait_until(lambda: (app.poll(), app.session.status == "cancelled")[1], timeout=60, message="the stop")
        app.poll()
        completed = len(app.dashboard.data.epochs)
        assert app.stop_button.disabled and app.compare.baseline_stop.disabled
        # Without an epoch count the baseline would train a billion epochs: it trains as many as the run completed,
        # whatever the checkbox now says (the run decides).
        app.setup.until_paused = False
        assert app.compare.start_baseline()
        app.tabs.active = TAB["Compare"]
        assert f"for {completed} epochs, as many as the run completed" in app.compare.baseline_status.value
        wait_until(lambda: (app.poll(), app.session.baseline_status == "completed")[1], timeout=120,
                   message="the baseline")
        app.poll()
        baseline = store.get_run(app.session.baseline.run_id)
        assert baseline.config["epochs"] == completed and len(app.compare.baseline_data.epochs) == completed
        # A baseline with many epochs has its own Stop (the sidebar's acts on the run, which has ended).
        app.setup.param.update(until_paused=False, epochs=5000)
        app.session.start_baseline(app.builder.spec, app.setup)  # (the tab would match the until-paused run again)
        wait_until(lambda: (app.poll(), app.session.baseline_status == "running")[1], timeout=60, message="start")
        assert not app.compare.baseline_stop.disabled and app.compare.baseline_button.disabled
        app.compare.baseline_stop.clicks += 1
        wait_until(lambda: (app.poll(), app.session.baseline_status == "cancelled")[1], timeout=60,
                   message="the baseline to stop")
        assert "classical baseline stopped" in app.compare.baseline_status.value
        assert app.compare.baseline_stop.disabled and not app.compare.baseline_button.disabled
        assert store.get_run(app.session.baseline.run_id).status == "cancelled"
    finally:
        app.shutdown(wait=30)


def _shown_bloch(table_html: str, qubit: int, stage: str) -> tuple[list[float], int | None, str]:
    """(Bloch vector, step, source) as the Quantum state tab's table shows them."""
    cell = re.search(rf"data-qubit='{qubit}' data-stage='{re.escape(stage)}' data-bloch='([^']*)'", table_html)
    weights = re.search(r"class='wb-state-weights' data-step='(-?\d*)' data-source='(\w*)'", table_html)
    step = int(weights.group(1)) if weights and weights.group(1) else None
    return json.loads(cell.group(1).replace("&quot;", '"')), step, weights.group(2) if weights else ""


@pytest.mark.slow
def test_quantum_state_tab_follows_a_running_job_step_by_step(store, ref):
    """While a worker trains, the tab shows the weights of the job's newest snapshot (not only each epoch's
    checkpoint): the Bloch vector equals the dense oracle from those weights, at steps inside an epoch."""
    import io

    import numpy as np
    import torch

    from workbench.gui.app import TAB, WorkbenchApp

    app = WorkbenchApp(store=store)
    app.setup.param.update(epochs=50, batch_size=4, dataset_options={**app.setup.dataset_options, "n_samples": 200})
    app.session.step_delay = 0.03  # the speed control: ~25 steps a second, many snapshots per epoch
    assert app.start_training()
    app.tabs.active = TAB["Quantum state"]
    app.state_view.sample = 7
    spec = wb.templates.get("vqc-circles")
    block = spec.quantum_blocks()[0].model_dump()
    oracle_model = wb.compile(spec)
    sample = app.session.dataset.X_train[7:8]
    checked: list[int] = []  # steps whose shown Bloch vector matched the oracle

    def two_inside_one_epoch() -> bool:
        """Two checked steps in one epoch, neither its last: the view moved between checkpoints."""
        per_epoch = app.session.trainer.steps_per_epoch
        epochs = [s // per_epoch for s in checked if (s + 1) % per_epoch]
        return len(epochs) != len(set(epochs))

    deadline = time.monotonic() + 180
    try:
        while not two_inside_one_epoch():
            assert time.monotonic() < deadline, f"the tab did not follow the run within an epoch: {checked}"
            app.poll()
            snapshot = app.session.trainer.weights
            if snapshot is None:
                time.sleep(0.05)
                continue
            app.state_view.refresh(force=True)
            shown, step, source = _shown_bloch(app.state_view.table.object, 2, "layer 3")
            if source != "live" or step != snapshot["step"] or (checked and step <= checked[-1]):
                continue  # a newer snapshot came in between (or a checkpoint was newer): look again
            oracle_model.load_state_dict(torch.load(io.BytesIO(snapshot["state"]), weights_only=True), strict=False)
            with torch.no_grad():
                features = oracle_model.blocks["to_angles"](oracle_model.blocks["fc_in"](sample))[0].double().numpy()
            psi = ref.final_state(block, features, oracle_model.blocks["vqc"].weight.detach().double().numpy())
            expected = [float(np.real(psi.conj() @ ref.on(block["qubits"], {2: ref.PAULI[p]}) @ psi)) for p in "XYZ"]
            assert shown == pytest.approx(expected, abs=1e-5), step
            checked.append(step)
            time.sleep(0.2)
        # Snapshots are for watching: the store holds the run's events and checkpoints only.
        assert {e["kind"] for e in store.events(app.session.last_run_id)} <= {"step", "epoch", "boundary"}
    finally:
        app.shutdown(wait=30)


# ---------------------------------------------------------------------------------------------
# Benchmark


def test_benchmark_times_every_applicable_method():
    spec = wb.templates.get("vqc-circles")
    targets = [c for c in target_choices() if c["name"] in ("torch", "qpp-cpu", "nvidia", "density-matrix-cpu")]
    rows = {(r["target"], r["gradient"]): r["skip"] for r in plan(spec, targets=targets, noise=None, shots=None)}
    assert rows[("torch", "adjoint")] == rows[("torch", "backprop")] == rows[("qpp-cpu", "adjoint")] == ""
    assert "backprop differentiates the torch engine" in rows[("qpp-cpu", "backprop")]
    assert "noisy simulation" in rows[("torch", "density_matrix")]
    torch_only = [c for c in targets if c["name"] == "torch"]
    run = BenchmarkRun(spec, targets=torch_only, batch=4, repeats=1)
    run.run()
    timed = {r["gradient"]: r for r in run.rows if r.get("seconds") is not None}
    assert set(timed) == {"adjoint", "parameter_shift", "finite_diff", "backprop", "surrogate"}
    assert all(r["seconds"] > 0 and r["status"] == "done" for r in timed.values())
    # Parameter shift runs two shifted circuits per angle: far more circuits than adjoint.
    assert timed["parameter_shift"]["executions"] > 10 * timed["adjoint"]["executions"]
    figure = charts.benchmark_figure(run.rows)
    assert len(figure["data"][0]["x"]) == 5 and all(t.endswith(("ms", " s")) for t in figure["data"][0]["text"])


# ---------------------------------------------------------------------------------------------
# Jupyter


@pytest.mark.notebook
@pytest.mark.slow
def test_notebook_runs_headless(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "runs.sqlite3"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.read(ROOT / "notebooks" / "00_jupyter_workbench.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert re.search(r"\d+ points after \d+ updates", text), text
    # Inline resources: the Workbench cell's output carries Panel's JS itself, no CDN script tags.
    bundles = [json.dumps(o.get("data", {})) for o in outputs if o.get("output_type") in ("display_data",
                                                                                         "execute_result")]
    scripts = re.findall(r'<script[^>]+src=\\"(https?://[^"\\]+)', "".join(bundles))
    assert scripts == [], scripts


def test_opening_a_search_candidate_shows_the_build_tab(store):
    from workbench.gui.app import TAB, WorkbenchApp

    app = WorkbenchApp(store=store)
    app.tabs.active = TAB["Search"]
    app.search.param.trigger("opened")  # what SearchTab.open_in_builder does after loading the candidate
    assert app.tabs.active == TAB["Build"]
    app.shutdown()
