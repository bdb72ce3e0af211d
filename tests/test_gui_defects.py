"""Defects a newcomer met in the GUI (issue 12), checked on the state and chart code the browser draws."""

from __future__ import annotations

import math

import pytest

import workbench as wb
from workbench.gui import charts
from workbench.gui.run_setup import RunSetup
from workbench.gui.state import BuilderState, block_summary


def test_palette_plus_keeps_a_quantum_output_layer_last():
    b = BuilderState(wb.templates.get("quantum-output").to_dict())
    assert b.valid and b.blocks[-1]["role"] == "output"
    b.add("dropout")  # the palette's "+" sends no index
    assert [x["id"] for x in b.blocks] == ["fc_in", "to_angles", "drop1", "qout"]
    assert b.valid, b.error
    b.add("r_expect")  # another output layer goes to the very end (and the engine then says why it is wrong)
    assert b.blocks[-1]["type"] == "quantum" and b.blocks[-2]["id"] == "qout"


@pytest.mark.parametrize("scale,label", [(math.pi, "π·tanh"), (math.pi / 2, "π/2·tanh"), (2 * math.pi, "2π·tanh"),
                                         (1.5, "1.5·tanh")])
def test_scaled_tanh_label_reads_like_maths(scale, label):
    assert block_summary({"type": "activation", "fn": "scaled_tanh", "scale": scale}) == label


def test_a_four_score_head_on_two_class_data_cannot_train():
    spec = {"version": 1, "name": "four", "task": "classification", "input_shape": [2],
            "blocks": [{"id": "fc", "type": "linear", "out_features": 4}]}
    setup = RunSetup(dataset="circles")
    problem, _ = setup.dataset_problem(spec)
    assert "2 classes but the network outputs 4 scores" in problem
    spec["blocks"][0]["out_features"] = 2
    assert setup.dataset_problem(spec)[0] == ""


def test_emulated_hardware_needs_shots():
    spec = wb.templates.get("vqc-circles").to_dict()
    setup = RunSetup(target="quantinuum", shots=0)
    result = setup.gradient_explanation(spec)
    assert not result["ok"] and "Shots above 0" in result["error"]
    setup.shots = 200
    assert setup.gradient_explanation(spec)["ok"]


def _events(steps: int, per_epoch: int) -> list[dict]:
    out = [{"kind": "start", "epochs": steps // per_epoch, "steps_per_epoch": per_epoch}]
    for s in range(steps):
        out.append({"kind": "step", "step": s, "loss": 1.0 / (s + 1), "metric": "accuracy", "accuracy": 0.5,
                    "step_time": 0.01, "grad_norm": {"fc": 0.1 + s}, "quantum": {"q": {"grad_variance": 1e-3,
                                                                                       "gradient_method": "adjoint",
                                                                                       "circuit_executions": 1}}})
        if (s + 1) % per_epoch == 0:
            out.append({"kind": "epoch", "epoch": s // per_epoch, "step": s, "loss": 0.3, "metric": "accuracy",
                        "accuracy": 0.6, "val_loss": 0.4, "val_accuracy": 0.55})
    return out


@pytest.mark.parametrize("steps", [7, 600, 601, 1999, 5003])
def test_every_chart_ends_at_the_last_step_received(steps):
    d = charts.LiveData()
    d.extend(_events(steps, 7))
    last = steps - 1
    for make in (charts.loss_figure, charts.metric_figure, charts.variance_figure, charts.throughput_figure,
                 charts.gradnorm_figure):
        figure = make(d)
        for trace in figure["data"]:
            assert trace["x"][-1] <= last
        step_traces = [t for t in figure["data"] if t["x"] and t["x"][-1] == last]
        assert step_traces, (make.__name__, [t["x"][-1] for t in figure["data"]])
        assert all(len(t["x"]) <= 610 for t in figure["data"])  # thinned for drawing
    loss = charts.loss_figure(d)["data"][0]
    assert loss["y"][-1] == pytest.approx(1.0 / steps)  # the latest point itself, not a bin mean
    if steps % 7 == 0:  # an epoch just ended: its point sits on the last step too
        epoch = charts.loss_figure(d)["data"][1]
        assert epoch["x"][-1] == last


def test_epoch_and_boundary_points_sit_on_their_last_step_in_charts_compare_and_the_store(tmp_path):
    """x means "after step x" everywhere: an epoch's point sits on the epoch's last step event, in the live
    charts, in the store and in Compare (it used to be one step ahead there)."""
    from workbench.data import load_dataset

    store = wb.RunStore(tmp_path / "runs.sqlite3")
    data = load_dataset("circles", n_samples=60, noise=0.05, standardize=True)
    result = wb.Trainer(wb.templates.get("vqc-circles"), data,
                        wb.TrainConfig(epochs=2, batch_size=16, boundary_every=1), store=store).run()
    steps = store.events(result.run_id, "step")
    last_of_epoch = [max(e["step"] for e in steps if e["epoch"] == epoch) for epoch in (0, 1)]
    assert last_of_epoch == [2, 5]  # 48 training samples in batches of 16: steps 0-2, then 3-5
    assert [x for x, _ in store.compare([result.run_id], "loss")[result.run_id]] == last_of_epoch
    assert [e["step"] for e in store.events(result.run_id, "boundary")] == last_of_epoch
    live = charts.LiveData()
    live.extend(result.history)
    assert live.epoch_steps == last_of_epoch
    assert [t["x"][-1] for t in charts.loss_figure(live)["data"]] == [5, 5, 5]  # step, epoch and validation
    assert "after epoch 2 (step 5)" in charts.boundary_figure(live)["layout"]["title"]["text"]
    compare = charts.compare_figure(store.compare([result.run_id], "val_loss"), {}, "val_loss")
    assert compare["data"][0]["x"] == last_of_epoch


def test_a_run_until_paused_shows_epoch_step_and_elapsed_time_not_a_billion_epochs(tmp_path):
    from workbench.gui.app import WorkbenchApp
    from workbench.training import UNTIL_PAUSED

    d = charts.LiveData()
    events = _events(17, 7)  # two epochs of 7 steps, then 3 steps into the third
    events[0].update(epochs=UNTIL_PAUSED, time=1000.0)
    for k, event in enumerate(events[1:]):
        event["time"] = 1000.0 + 5.0 * (k + 1)
    d.extend(events)
    headline = d.headline()
    assert "epoch 3 (until paused)" in headline and "17 steps" in headline and "1 min 35 s elapsed" in headline
    assert str(UNTIL_PAUSED) not in headline
    assert d.progress() == (3, 7)  # the bar shows the current epoch, not 17 of 7 billion steps
    # Compare lists such a run as "2 (until paused)" epochs.
    store = wb.RunStore(tmp_path / "runs.sqlite3")
    spec = wb.templates.get("vqc-circles").to_dict()
    run_id = store.create_run(spec=spec, config={"epochs": UNTIL_PAUSED, "target": "torch"},
                              dataset={"name": "circles"}, environment={}, name="playground")
    store.set_status(run_id, "cancelled", {"epochs_done": 2, "steps": 17})
    app = WorkbenchApp(store=store)
    try:
        app.session.run_ids = [run_id]
        app.compare.run_select.value = [run_id]
        table = app.compare.compare_table.object
        assert "2 (until paused)" in table and str(UNTIL_PAUSED) not in table
    finally:
        app.shutdown()


def test_a_notebook_cell_that_adds_a_block_and_undoes_it_sends_the_settings_form_no_fields():
    """In JupyterLab, add("dropout") + undo() in one cell left the dropout on the canvas and its fields in the
    form: both went out twice in a row and the first could be drawn last. In a notebook the Build tab now shows
    the cell's net change, once the cell has finished."""
    import asyncio

    from workbench.gui.app import WorkbenchApp

    app = WorkbenchApp(store=None, notebook=True)
    try:
        sent: list[list[str]] = []
        app.build.form_body.param.watch(lambda e: sent.append([type(w).__name__ for w in e.new]), "objects")
        drawn: list[list[str]] = []
        app.build.canvas.param.watch(lambda e: drawn.append([b["id"] for b in e.new["blocks"]]), "view")

        async def cell() -> None:
            app.builder.add("dropout", index=1)
            app.builder.undo()
            await asyncio.sleep(0)  # the cell has finished: the kernel loop runs what waited for it
            await asyncio.sleep(0)

        asyncio.run(cell())
        assert app.builder.selected is None and sent == []  # nothing to draw: no block is selected
        assert not any("drop1" in ids for ids in drawn), drawn  # the canvas never shows drop1 ...
        assert [b["id"] for b in app.build.canvas.view["blocks"]] == ["fc_in", "to_angles", "vqc"]  # ... but this
        assert app.build._form_key == ("none",) and app.build.form_body.objects == []

        async def select() -> None:
            app.builder.selected = 0
            await asyncio.sleep(0)

        asyncio.run(select())  # one edit: its fields are sent once
        assert len(sent) == 1 and sent[0] and app.build._form_key == ("block", 0, "linear")
    finally:
        app.shutdown()


def test_thinning_keeps_the_trend():
    xs = list(range(10_000))
    ys = [float(x) for x in xs]
    tx, ty = charts._thin(xs, ys, limit=600)
    assert len(tx) <= 600 and tx[-1] == 9999 and ty[-1] == 9999.0
    assert all(a < b for a, b in zip(tx, tx[1:]))
    assert all(abs(y - x) <= 20 for x, y in zip(tx, ty))  # bin means stay near the line


def test_benchmark_tab_shows_installed_peer_frameworks_from_the_peers_result():
    import json

    from workbench.bench.peers import installed
    from workbench.gui.tabs.benchmark import PEERS_RESULT, BenchmarkTab

    tab = BenchmarkTab(BuilderState(wb.templates.get("vqc-circles").to_dict()), RunSetup())
    tab.show_peers.value = True
    shown = tab.peers_table.object
    result = json.loads(PEERS_RESULT.read_text())
    expected = [r for r in result["rows"]
                if r["n"] == 4 and r.get("step_ms") is not None and not installed(r["variant"])]
    assert expected and "standard 4-qubit network" in shown
    for row in expected:
        assert f"<td>{row['variant']}</td><td class=num>{row['step_ms']:.2f}</td>" in shown
    tab.show_peers.value = False
    assert tab.peers_table.object == ""
