"""The GUI in a real headless Chromium, against `workbench serve` on a free localhost port.

Every request that leaves localhost is aborted and recorded; the last test asserts there were none
(no CDN, no web fonts). Screenshots of the main screens go to artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from browser_support import ARGS, CHROMIUM, LOCAL, ROOT, SHOTS, free_port, served, wait_until  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ABORTED: list[str] = []
TIMEOUT_MS = 60_000

expect.set_options(timeout=TIMEOUT_MS)  # a loaded 2-core machine: generous, still polling (never a sleep)

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)


# ---------------------------------------------------------------------------------------------
# Fixtures: the served app, a browser, offline pages


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("gui-store") / "runs.sqlite3"
    port = free_port()
    env = {**os.environ, "WORKBENCH_STORE": str(store), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    env.pop("BOKEH_RESOURCES", None)
    url = f"http://localhost:{port}/"
    with served([sys.executable, "-m", "workbench.cli", "serve", "--port", str(port)], env, ready=url) as lines:
        yield SimpleNamespace(url=url, store=store, log=lines, port=port)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


CURRENT_TEST = {"name": ""}


@pytest.fixture(autouse=True)
def _name_the_test(request):
    CURRENT_TEST["name"] = request.node.name
    yield


def _route(route):
    url = route.request.url
    if url.startswith(LOCAL):
        route.continue_()
    else:
        ABORTED.append(f"{url} (during {CURRENT_TEST['name']})")
        route.abort()


class Pages:
    """Offline browser contexts for one test; closed at the end."""

    def __init__(self, browser, server):
        self.browser, self.server, self.contexts = browser, server, []

    def context(self):
        ctx = self.browser.new_context(viewport={"width": 1480, "height": 1250})
        ctx.set_default_timeout(TIMEOUT_MS)
        ctx.route("**/*", _route)
        self.contexts.append(ctx)
        return ctx

    def open(self, url: str | None = None, context=None):
        page = (context or self.context()).new_page()
        page.goto(url or self.server.url)
        page.locator(".wb-drop-end").wait_for(timeout=TIMEOUT_MS)  # the canvas has rendered
        return page

    def close(self):
        for ctx in self.contexts:
            try:
                ctx.close()
            except Exception:
                pass


@pytest.fixture()
def pages(browser, server):
    holder = Pages(browser, server)
    yield holder
    holder.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


# ---------------------------------------------------------------------------------------------
# Page helpers


def block_ids(page) -> list[str]:
    return page.locator(".wb-block").evaluate_all("els => els.map(e => e.dataset.id)")


def tab(page, name: str) -> None:
    page.locator(".bk-tab", has_text=name).first.click()
    expect(page.locator(".bk-tab.bk-active", has_text=name)).to_have_count(1)


def drag(page, key: str, target: str = ".wb-drop-end") -> None:
    before = page.locator(".wb-block").count()
    page.locator(f".wb-palette-item[data-key={key}]").drag_to(page.locator(target).first)
    expect(page.locator(".wb-block")).to_have_count(before + 1)


def clear(page) -> None:
    page.locator(".wb-clear button").click()
    expect(page.locator(".wb-block")).to_have_count(0)


def set_number(page, css: str, value) -> None:
    field = page.locator(f"{css} input").first
    field.fill(str(value))
    field.press("Enter")


def trace_points(page, css: str) -> int:
    """Points drawn in a Plotly chart (sum over traces)."""
    plot = page.locator(f"{css} .js-plotly-plot").first
    return plot.evaluate("el => (el.data || []).reduce((n, t) => n + ((t.x || []).length), 0)")


def template(page, name: str) -> None:
    page.locator(f".wb-template-{name} button").click()
    expect(page.locator(".wb-node.wb-input .wb-node-sub")).to_contain_text(name)


# ---------------------------------------------------------------------------------------------
# Scenarios


def test_serve_prints_its_address(server):
    assert any(f"Hybrid Quantum Workbench: http://localhost:{server.port}/" in line for line in server.log)


def test_drag_blocks_from_the_palette_to_build_a_valid_network(pages):
    page = pages.open()
    clear(page)
    expect(page.locator(".wb-status")).to_contain_text("The network is empty")
    expect(page.locator(".wb-train button")).to_be_disabled()
    drag(page, "linear")
    drag(page, "scaled_tanh")
    drag(page, "r_logit")
    assert block_ids(page) == ["fc1", "act1", "q1"]
    expect(page.locator(".wb-status")).to_contain_text("Valid network · 3 blocks · output (1,)")
    assert page.locator(".wb-shape").all_inner_texts() == ["(2,)", "(4,)", "(4,)", "(1,)"]
    expect(page.locator(".wb-train button")).to_be_enabled()

    # Insert between blocks: a dropout dropped on the activation card lands before or after it.
    drag(page, "dropout", ".wb-block[data-id=act1]")
    assert block_ids(page)[0] == "fc1" and "drop1" in block_ids(page)
    # Reorder by dragging a card: the quantum output dropped on the input node becomes first -> invalid.
    page.locator(".wb-block[data-id=q1]").drag_to(page.locator(".wb-node.wb-input"))
    wait_until(lambda: block_ids(page)[0] == "q1", message="q1 moved to the top")
    expect(page.locator(".wb-block[data-id=q1] .wb-error")).to_contain_text("must be the last block")
    expect(page.locator(".wb-train button")).to_be_disabled()
    page.locator(".wb-undo button").click()
    wait_until(lambda: block_ids(page)[-1] == "q1", message="undo of the move")
    expect(page.locator(".wb-status")).to_contain_text("Valid network · 4 blocks")
    # Duplicate, delete, undo and redo from the card and toolbar buttons.
    page.locator(".wb-block[data-id=fc1] [data-action=duplicate]").click()
    wait_until(lambda: block_ids(page)[:2] == ["fc1", "fc2"], message="duplicate")
    page.locator(".wb-block[data-id=fc2] [data-action=delete]").click()
    wait_until(lambda: "fc2" not in block_ids(page), message="delete")
    page.locator(".wb-undo button").click()
    wait_until(lambda: "fc2" in block_ids(page), message="undo of the delete")
    page.locator(".wb-redo button").click()
    wait_until(lambda: "fc2" not in block_ids(page), message="redo of the delete")
    expect(page.locator(".wb-status")).to_contain_text("Valid network")
    # Select the quantum block: its settings form is generated from the schema.
    page.locator(".wb-block[data-id=q1]").click()
    expect(page.locator(".wb-settings")).to_contain_text("Readout")
    expect(page.locator(".wb-field-qubits input")).to_have_value("4")
    shot(page, "01_builder.png")


def test_an_invalid_network_is_rejected_with_its_message(pages):
    page = pages.open()
    clear(page)
    drag(page, "q_angle")
    error = page.locator(".wb-block[data-id=q1].wb-invalid .wb-error")
    expect(error).to_contain_text("angle encoding needs 4 features but the input gives 2: set input_shape=[4] "
                                  "or use amplitude encoding")
    expect(page.locator(".wb-network-status")).to_contain_text("needs 4 features")
    expect(page.locator(".wb-train button")).to_be_disabled()
    expect(page.locator(".wb-train-blocker")).to_contain_text("Fix the network")
    expect(page.locator(".wb-form-error")).to_contain_text("needs 4 features")
    shot(page, "02_builder_invalid.png")
    # Fixing it in the form makes a valid network…
    page.locator(".wb-field-encoding select").select_option("amplitude")
    expect(page.locator(".wb-block[data-id=q1] .wb-error")).to_have_count(0)
    expect(page.locator(".wb-network-status")).to_contain_text("✓")
    # …but four ⟨Z⟩ scores cannot classify the two classes of circles: Train says so until a 2-score head is added.
    expect(page.locator(".wb-train button")).to_be_disabled()
    expect(page.locator(".wb-train-blocker")).to_contain_text("2 classes but the network outputs 4 scores")
    page.locator(".wb-palette-item[data-key=linear] .wb-palette-add").click()
    wait_until(lambda: block_ids(page) == ["q1", "fc1"], message="the linear head")
    set_number(page, ".wb-field-out_features", 2)
    expect(page.locator(".wb-train button")).to_be_enabled()


def test_circuit_view_follows_the_block_settings(pages):
    page = pages.open()
    template(page, "vqc-circles")
    page.locator(".wb-block[data-id=vqc]").click()
    expect(page.locator(".wb-field-depth input")).to_have_value("3")
    tab(page, "Circuit")
    svg = page.locator(".wb-circuit-view svg.wb-circuit")
    expect(svg.locator("[data-gate=ry]")).to_have_count(24)
    expect(svg.locator("[data-gate=cx-target]")).to_have_count(12)
    expect(page.locator(".wb-circuit-stats")).to_contain_text("24")  # trainable parameters
    expect(page.locator(".wb-circuit-stats")).to_contain_text("16.0 KiB")  # memory for a batch of 32
    shot(page, "03_circuit.png")
    tab(page, "Build")
    set_number(page, ".wb-field-depth", 2)
    tab(page, "Circuit")
    expect(svg.locator("[data-gate=ry]")).to_have_count(16)
    expect(svg.locator("[data-gate=cx-target]")).to_have_count(8)


def test_run_setup_shows_targets_and_gradient_choice(pages, tmp_path):
    from workbench.engine.executors.cudaq_runtime import gpu_count

    page = pages.open()
    tab(page, "Run setup")
    expect(page.locator(".wb-gradient-explanation")).to_contain_text("vqc → adjoint")
    expect(page.locator(".wb-preview .js-plotly-plot")).to_have_count(1)
    wait_until(lambda: trace_points(page, ".wb-preview") > 100, message="the dataset preview")
    disabled = page.locator(".wb-target select option[disabled]")
    if gpu_count() == 0:
        assert "CUDA-Q · nvidia (GPU)" in disabled.evaluate_all("els => els.map(e => e.value)")
        assert page.locator(".wb-target select option:not([disabled])", has_text="qpp-cpu").count() == 1
        page.locator(".wb-target-reasons summary").click()
        expect(page.locator(".wb-target-reasons-box")).to_contain_text("needs an NVIDIA GPU")
    set_number(page, ".wb-shots", 200)
    expect(page.locator(".wb-gradient-explanation")).to_contain_text("parameter_shift")
    expect(page.locator(".wb-gradient-explanation")).to_contain_text("200 shots")
    # Hardware settings (Emulate, the iqm mapping upload) and the cost preview appear for hardware targets only.
    expect(page.locator(".wb-hardware")).to_be_hidden()
    page.locator(".wb-target select").select_option("CUDA-Q · iqm (emulated, shots)")
    expect(page.locator(".wb-mapping-file")).to_be_visible()
    expect(page.locator(".wb-gradient-explanation")).to_contain_text("upload the qubit mapping file")
    expect(page.locator(".wb-train button")).to_be_disabled()
    expect(page.locator(".wb-cost-preview")).to_contain_text("circuits per epoch")
    mapping = tmp_path / "line.txt"
    mapping.write_text("Number of nodes: 4\nNumber of edges: ?\n0 --> {1}\n1 --> {0, 2}\n2 --> {1, 3}\n3 --> {2}\n")
    page.locator(".wb-mapping-file input[type=file]").set_input_files(str(mapping))
    expect(page.locator(".wb-hardware-note")).to_contain_text("line.txt: 4 qubits")
    expect(page.locator(".wb-gradient-explanation")).to_contain_text("parameter_shift")
    expect(page.locator(".wb-train button")).to_be_enabled()  # the upload alone lifts the blocker
    shot(page, "04b_run_setup_iqm.png")
    page.locator(".wb-target select").select_option("Torch engine · statevector")
    expect(page.locator(".wb-hardware")).to_be_hidden()
    expect(page.locator(".wb-cost-preview")).to_be_hidden()
    set_number(page, ".wb-shots", 0)
    expect(page.locator(".wb-gradient-explanation")).to_contain_text("vqc → adjoint")
    expect(page.locator(".wb-gradient-explanation")).not_to_contain_text("shots")
    shot(page, "04_run_setup.png")


def test_train_circles_live_then_stop_compare_and_benchmark(pages, server):
    from workbench.store import RunStore

    page = pages.open()
    template(page, "vqc-circles")
    tab(page, "Run setup")
    # Far more epochs than the checks below take even on a quiet machine (300 have finished before Stop).
    set_number(page, ".wb-epochs", 100000)
    expect(page.locator(".wb-epochs input")).to_have_value("100000")
    page.locator(".wb-train button").click()
    expect(page.locator(".bk-tab.bk-active", has_text="Train")).to_have_count(1)
    first = wait_until(lambda: trace_points(page, ".wb-chart-loss"), message="loss points")
    wait_until(lambda: trace_points(page, ".wb-chart-loss") > first + 10, message="the loss chart to gain points")
    wait_until(lambda: trace_points(page, ".wb-chart-metric") > 0, message="accuracy points")
    wait_until(lambda: page.locator(".wb-chart-gradnorm .js-plotly-plot").evaluate(
        "el => el.data.length && el.data[0].type === 'heatmap' && el.data[0].z[0].length > 3"), message="heatmap")
    wait_until(lambda: page.locator(".wb-chart-boundary .js-plotly-plot").evaluate(
        "el => el.data.some(t => t.type === 'contour')"), timeout=120, message="the decision boundary")
    wait_until(lambda: trace_points(page, ".wb-chart-variance") > 0, message="gradient variance")
    expect(page.locator(".wb-plateau-hint")).to_contain_text("vqc")
    # The page stays responsive while training: tabs switch and the form reacts.
    tab(page, "Circuit")
    tab(page, "Train")
    expect(page.locator(".wb-stop button")).to_be_enabled()
    shot(page, "05b_live_while_training.png")

    page.locator(".wb-stop button").click()
    expect(page.locator(".wb-run-status")).to_contain_text("Stopped", timeout=TIMEOUT_MS)
    stopped_at = trace_points(page, ".wb-chart-loss")
    store = RunStore(server.store)
    runs = [r for r in store.list_runs() if r.status == "cancelled"]
    assert runs, [(r.id, r.status) for r in store.list_runs()]
    run_id = runs[0].id
    expect(page.locator(".wb-train button")).to_be_enabled()
    assert trace_points(page, ".wb-chart-loss") == stopped_at  # nothing arrives after stop
    tab(page, "Export")
    expect(page.locator(".wb-download-weights button")).to_be_enabled()

    # Compare: the stopped run is listed and drawn; the matched classical baseline joins it.
    tab(page, "Run setup")
    set_number(page, ".wb-epochs", 4)
    tab(page, "Compare")
    expect(page.locator(".wb-run-list")).to_contain_text(run_id[:6])
    wait_until(lambda: trace_points(page, ".wb-compare-chart") > 0, message="the run's curve")
    page.locator(".wb-baseline button").click()
    expect(page.locator(".wb-baseline-status")).to_contain_text("classical baseline done", timeout=120_000)
    wait_until(lambda: page.locator(".wb-baseline-chart .js-plotly-plot").evaluate(
        "el => el.data.filter(t => t.name.startsWith('classical') && t.x.length > 0).length") > 0,
        message="the baseline curve")
    expect(page.locator(".wb-run-list input")).to_have_count(2)
    # Runs are told apart by network *and* dataset; the table has the columns to compare them by.
    expect(page.locator(".wb-run-list")).to_contain_text("vqc-circles on circles")
    table = page.locator(".wb-compare-table table")
    for header in ("dataset", "target", "gradient", "epochs"):
        expect(table.locator("th", has_text=header)).to_have_count(1)
    expect(table).to_contain_text("circles")
    # A run's name is the user's: rename one, then delete the baseline.
    page.locator(".wb-run-edit select").select_option(label=page.locator(".wb-run-edit option").first.inner_text())
    edited = page.locator(".wb-run-edit select").input_value()
    name = page.locator(".wb-run-name input")
    name.fill("my first circles run")
    name.press("Enter")
    expect(page.locator(".wb-run-list")).to_contain_text("my first circles run")
    wait_until(lambda: any(r.name == "my first circles run" for r in store.list_runs()), message="renamed in store")
    baseline_id = next(r.id for r in store.list_runs() if r.parent_id)
    page.locator(".wb-run-edit select").select_option(
        label=page.locator(".wb-run-edit option", has_text=baseline_id[:6]).inner_text())
    page.locator(".wb-run-delete button").click()
    expect(page.locator(".wb-run-list input")).to_have_count(1)
    assert baseline_id not in {r.id for r in store.list_runs()} and edited
    shot(page, "06_compare.png")

    # Benchmark: one training step per gradient method on the torch engine.
    tab(page, "Benchmark")
    for name in ("torch-density", "qpp-cpu"):
        box = page.locator(".wb-bench-targets label", has_text=name).locator("input")
        if box.count() and box.is_checked():
            box.uncheck()
    set_number(page, ".wb-bench-batch", 4)
    set_number(page, ".wb-bench-repeats", 1)
    expect(page.locator(".wb-bench-targets input:checked")).to_have_count(1)
    page.locator(".wb-bench-run button").click()
    expect(page.locator(".wb-bench-status")).to_contain_text("Done", timeout=120_000)
    bars = page.locator(".wb-bench-chart .js-plotly-plot")
    wait_until(lambda: bars.evaluate("el => el.data[0].type === 'bar' && el.data[0].x.length") == 5,
               message="five benchmark bars")
    labels = bars.evaluate("el => el.data[0].y")
    assert sorted(labels) == sorted(f"torch · {m}" for m in ("adjoint", "parameter_shift", "finite_diff",
                                                               "backprop", "surrogate"))
    expect(page.locator(".wb-bench-table")).to_contain_text("ms / step")
    assert page.locator(".wb-bench-table .wb-ok-pill").count() == 5
    # The tab ends with the benchmark suite's verdict (workbench.bench.recommend).
    expect(page.locator(".wb-bench-recommendation")).to_contain_text("Recommendation:", timeout=180_000)
    expect(page.locator(".wb-bench-recommendation")).to_contain_text("use target 'torch'")
    page.locator(".wb-bench-peers input").check()  # the peer frameworks' rows (installed ones, peers suite)
    expect(page.locator(".wb-bench-peers-table")).to_contain_text("workbench-torch-adjoint")
    shot(page, "07_benchmark.png")


CHARTS = ("wb-chart-loss", "wb-chart-metric", "wb-chart-gradnorm", "wb-chart-variance", "wb-chart-throughput")


def chart_ends(page, css: str) -> list:
    """The x of the last point of every trace the browser drew in a chart."""
    return page.locator(f".{css} .js-plotly-plot").evaluate(
        "el => (el.data || []).map(t => (t.x && t.x.length) ? t.x[t.x.length - 1] : null)")


def test_default_run_every_chart_ends_at_the_runs_last_step(pages, server):
    from workbench.store import RunStore

    store = RunStore(server.store)
    before = {r.id for r in store.list_runs()}
    page = pages.open()
    expect(page.locator(".wb-pause button")).to_be_disabled()  # nothing runs yet: no control looks usable
    expect(page.locator(".wb-stop button")).to_be_disabled()
    colour = page.locator(".wb-stop button").evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour == "rgb(241, 245, 249)", colour  # the disabled grey, not a faded red
    page.locator(".wb-train button").click()  # the default template and settings (20 epochs)
    expect(page.locator(".wb-run-status")).to_contain_text("Completed", timeout=240_000)
    run = wait_until(lambda: [r for r in store.list_runs() if r.id not in before and r.status == "completed"],
                     message="the completed run in the store")[0]
    last_step = store.events(run.id, "step")[-1]["step"]  # the oracle: what the trainer recorded
    assert last_step == 119
    for css in CHARTS:
        wait_until(lambda css=css: chart_ends(page, css) and set(chart_ends(page, css)) == {last_step}, timeout=30,
                   message=f"{css} to end at step {last_step} (it ends at {chart_ends(page, css)})")
    title = page.locator(".wb-chart-boundary .js-plotly-plot").evaluate("el => el.layout.title.text")
    assert f"(step {last_step})" in title and "after epoch 20" in title
    loss_y = page.locator(".wb-chart-loss .js-plotly-plot").evaluate("el => el.data[0].y[el.data[0].y.length - 1]")
    assert loss_y == pytest.approx(store.events(run.id, "step")[-1]["loss"], rel=1e-6)
    # Switching tabs and back shows the same, complete charts.
    tab(page, "Build")
    tab(page, "Train")
    assert set(chart_ends(page, "wb-chart-loss")) == {last_step}
    shot(page, "05_live_dashboard.png")


def test_share_link_from_export_opens_the_same_network(pages):
    page = pages.open()
    template(page, "quantum-output")
    page.locator(".wb-palette-item[data-key=dropout] .wb-palette-add").click()
    # "+" puts the block before the quantum output layer, which must stay last: still a valid network.
    wait_until(lambda: block_ids(page) == ["fc_in", "to_angles", "drop1", "qout"], message="dropout before qout")
    expect(page.locator(".wb-network-status")).to_contain_text("✓")
    tab(page, "Run setup")
    set_number(page, ".wb-epochs", 9)
    tab(page, "Export")
    base = page.evaluate("() => window.location.origin + window.location.pathname")

    def link():
        from workbench.gui.share import decode_state

        value = page.locator(".wb-share-url input").input_value()
        if not value.startswith(base + "?s="):
            return None
        state = decode_state(value.split("?s=", 1)[1])
        ok = state["setup"]["epochs"] == 9 and [b["id"] for b in state["spec"]["blocks"]][2] == "drop1"
        return value if ok else None

    url = wait_until(link, message="the Export tab's link to hold the page address, network and settings")
    assert "/ws" not in url
    again = pages.open(url)  # a fresh browser context: another person opening the link
    assert block_ids(again) == ["fc_in", "to_angles", "drop1", "qout"]
    tab(again, "Run setup")
    expect(again.locator(".wb-epochs input")).to_have_value("9")


def click_sample(page, index: int) -> None:
    """Click the picker's point for sample `index` (its pixel position from Plotly's own axes)."""
    plot = page.locator(".wb-state-picker .js-plotly-plot")
    wait_until(lambda: plot.evaluate("el => (el.data || []).length > 0"), message="the sample picker")
    x, y = plot.evaluate("""(el, index) => {
        for (const t of el.data) {
            const k = (t.customdata || []).indexOf(index);
            if (k >= 0 && t.mode === "markers") {
                const L = el._fullLayout, box = el.getBoundingClientRect();
                return [box.left + L._size.l + L.xaxis.l2p(t.x[k]), box.top + L._size.t + L.yaxis.l2p(t.y[k])];
            }
        }
        return null; }""", index)
    page.mouse.click(x, y)


def test_quantum_state_of_a_clicked_sample_matches_the_dense_oracle(pages, server, ref):
    import io

    import numpy as np
    import torch

    import workbench as wb
    from workbench.data import load_dataset
    from workbench.store import RunStore

    store = RunStore(server.store)
    before = {r.id for r in store.list_runs()}
    page = pages.open()
    tab(page, "Run setup")
    set_number(page, ".wb-epochs", 8)  # 48 steps at 5 steps/s: time to watch it train
    page.locator(".wb-speed select").select_option(label="medium · 5 steps/s")
    page.locator(".wb-train button").click()
    expect(page.locator(".bk-tab.bk-active", has_text="Train")).to_have_count(1)  # Train opens the Train tab
    # While it trains, the tab follows the worker's weight snapshots, not only each epoch's checkpoint.
    tab(page, "Quantum state")
    table = page.locator(".wb-bloch-table div.wb-muted").first  # (inside a shadow root: located, not read)
    # The picker redraws when the run's data arrives; a click during that redraw is lost: click until it took.
    wait_until(lambda: click_sample(page, 7) or "sample #7" in table.inner_text(), interval=1.0,
               message="sample 7 to be chosen")
    weights = page.locator(".wb-bloch-table .wb-state-weights")
    live_steps: list[int] = []

    def follows_live() -> bool:
        if weights.get_attribute("data-source") == "live":
            step = int(weights.get_attribute("data-step"))
            live_steps.extend([step] if not live_steps or step > live_steps[-1] else [])
        return len(live_steps) >= 2

    wait_until(follows_live, timeout=120, message="the tab to follow the running job's weights")
    expect(page.locator(".wb-run-status")).to_contain_text("Completed", timeout=180_000)
    run = [r for r in store.list_runs() if r.id not in before and r.status == "completed"][0]
    per_epoch = sum(e["epoch"] == 0 for e in store.events(run.id, "step"))
    assert any((s + 1) % per_epoch for s in live_steps), (live_steps, per_epoch)  # between checkpoints
    cell = page.locator(".wb-bloch[data-qubit='2'][data-stage='layer 3']")
    expect(page.locator(".wb-bloch-table")).to_contain_text("sample #7")
    expect(weights).to_have_attribute("data-source", "final")
    shown = json.loads(cell.get_attribute("data-bloch"))
    # The oracle: the run's final weights from the store, the sample from the dataset, dense matrices.
    spec = wb.templates.get("vqc-circles")
    model = wb.compile(spec)
    model.load_state_dict(torch.load(io.BytesIO(store.latest_checkpoint(run.id)[2]), weights_only=True)["model"])
    name, options = wb.templates.DEFAULT_DATASETS["vqc-circles"]
    sample = load_dataset(name, **options).X_train[7:8]
    with torch.no_grad():
        features = model.blocks["to_angles"](model.blocks["fc_in"](sample))[0].double().numpy()
    block = spec.quantum_blocks()[0].model_dump()
    psi = ref.final_state(block, features, model.blocks["vqc"].weight.detach().double().numpy())
    n = block["qubits"]
    expected = [float(np.real(psi.conj() @ ref.on(n, {2: ref.PAULI[p]}) @ psi)) for p in "XYZ"]
    assert shown == pytest.approx(expected, abs=1e-5)
    expect(page.locator(".wb-state-probs .js-plotly-plot")).to_have_count(1)
    for chart in (".wb-state-probs", ".wb-state-entropy"):  # each title fits inside its chart (none clipped)
        plot = page.locator(f"{chart} .js-plotly-plot")
        wait_until(lambda: plot.evaluate("el => !!el.querySelector('.gtitle')"), message=f"{chart}'s title")
        assert plot.evaluate("el => el.querySelector('.gtitle').getBoundingClientRect().right <= "
                             "el.getBoundingClientRect().right"), chart
    shot(page, "09_quantum_state.png")


def test_playground_train_until_paused_step_reset_and_boundary_options(pages):
    page = pages.open()
    page.locator(".wb-until-paused input").check()
    page.locator(".wb-train button").click()
    wait_until(lambda: page.locator(".wb-chart-boundary .js-plotly-plot").evaluate(
        "el => el.data.some(t => t.type === 'contour')"), timeout=120, message="the decision boundary")
    expect(page.locator(".wb-live-status")).to_contain_text("until paused")
    # Boundary options: the test samples as hollow points, and the output discretised to the predicted class.
    page.locator(".wb-show-test input").check()
    page.locator(".wb-discretize input").check()
    boundary = page.locator(".wb-chart-boundary .js-plotly-plot")
    wait_until(lambda: boundary.evaluate("el => el.data.some(t => (t.name || '').startsWith('test'))"),
               message="test points on the boundary chart")
    wait_until(lambda: boundary.evaluate(
        "el => el.data[0].z.flat().every(v => v === 0 || v === 1)"), message="a discretised boundary")
    # Pause, then Step: exactly one more step arrives and the run waits again.
    page.locator(".wb-pause button").first.click()
    expect(page.locator(".wb-run-status")).to_contain_text("Paused")
    before = wait_until(lambda: (lambda e: e[0] if e and len(set(e)) == 1 else None)(
        chart_ends(page, "wb-chart-loss")[:1]), message="the loss chart")
    time.sleep(1.0)  # a step in flight when Pause was pressed lands; then nothing more may arrive
    before = chart_ends(page, "wb-chart-loss")[0]
    page.locator(".wb-step button").click()
    wait_until(lambda: chart_ends(page, "wb-chart-loss")[0] == before + 1, message="one more step")
    expect(page.locator(".wb-run-status")).to_contain_text("Paused")
    time.sleep(1.0)
    assert chart_ends(page, "wb-chart-loss")[0] == before + 1
    # Slow speed, resume: steps arrive about once a second.
    page.locator(".wb-speed select").select_option(label="slow · 1 step/s")
    page.locator(".wb-resume button").first.click()
    wait_until(lambda: chart_ends(page, "wb-chart-loss")[0] >= before + 2, message="steps after resume")
    shot(page, "10_playground.png")
    # Reset: the run stops, the charts empty, and new weights come with the next seed.
    page.locator(".wb-reset button").click()
    expect(page.locator(".wb-run-status")).to_contain_text("No run yet")
    wait_until(lambda: trace_points(page, ".wb-chart-loss") == 0, message="empty charts after reset")
    expect(page.locator(".wb-reset button")).to_be_disabled()
    # Circuit descriptors on demand.
    tab(page, "Circuit")
    page.locator(".wb-descriptors-run button").click()
    expect(page.locator(".wb-descriptors")).to_contain_text("entangling capability", timeout=120_000)
    expect(page.locator(".wb-descriptors")).to_contain_text("gradient variance")
    shot(page, "03b_circuit_descriptors.png")


def test_reloading_the_url_restores_the_same_network_and_settings(pages):
    page = pages.open()
    template(page, "quantum-output")
    page.locator(".wb-palette-item[data-key=dropout] .wb-palette-add").click()
    wait_until(lambda: block_ids(page) == ["fc_in", "to_angles", "drop1", "qout"], message="added dropout")
    page.locator(".wb-block[data-id=drop1] [data-action=up]").click()
    wait_until(lambda: block_ids(page) == ["fc_in", "drop1", "to_angles", "qout"], message="moved dropout up")
    expected_ids = block_ids(page)
    tab(page, "Run setup")
    set_number(page, ".wb-epochs", 7)

    def address() -> str:
        return page.evaluate("() => window.location.href")  # the address bar, now

    def url_has_state():
        from workbench.gui.share import decode_state

        state = decode_state(address().split("?s=", 1)[1])
        return state["setup"]["epochs"] == 7 and [b["id"] for b in state["spec"]["blocks"]] == expected_ids

    wait_until(lambda: "?s=" in address() and url_has_state(), message="the address to hold network and settings")
    url = address()
    again = pages.open(url)  # a fresh session from the link alone
    assert block_ids(again) == expected_ids
    tab(again, "Run setup")
    expect(again.locator(".wb-epochs input")).to_have_value("7")
    expect(again.locator(".wb-dataset select")).to_have_value("iris")
    tab(again, "Export")
    expect(again.locator(".wb-share-url input")).to_have_value(url)
    page.reload()
    page.locator(".wb-drop-end").wait_for()
    assert block_ids(page) == expected_ids


def test_export_upload_and_code(pages, tmp_path):
    page = pages.open()
    tab(page, "Export")
    expect(page.locator(".wb-code")).to_contain_text("workbench.compile(spec, **COMPILE)")
    with page.expect_download() as info:
        page.locator(".wb-download-spec button").click()
    saved = tmp_path / "spec.json"
    info.value.save_as(saved)
    import workbench

    assert workbench.load_spec(saved).name == "vqc-circles"
    bad = tmp_path / "broken.json"
    bad.write_text('{"input_shape": [2], "blocks": [')
    page.locator(".wb-upload input[type=file]").set_input_files(str(bad))
    expect(page.locator(".wb-upload-message")).to_contain_text("broken.json is not valid JSON")
    expect(page.locator(".wb-upload-message")).to_contain_text("Nothing was changed")
    tab(page, "Build")
    assert block_ids(page) == ["fc_in", "to_angles", "vqc"]
    tab(page, "Export")
    good = tmp_path / "digits.json"
    good.write_text(workbench.templates.get("hybrid-digits").to_json())
    page.locator(".wb-upload input[type=file]").set_input_files(str(good))
    expect(page.locator(".wb-upload-message")).to_contain_text("Loaded digits.json")
    expect(page.locator(".wb-upload-message")).to_contain_text("Dataset set to digits")  # the template's data
    expect(page.locator(".wb-train button")).to_be_enabled()
    shot(page, "08_export.png")
    tab(page, "Build")
    wait_until(lambda: block_ids(page) == ["flat", "fc_in", "to_angles", "qlayer", "head"], message="upload")


def test_two_sessions_are_isolated_and_closing_a_tab_stops_its_run(pages, server):
    from workbench.store import RunStore

    store = RunStore(server.store)
    before = {r.id for r in store.list_runs()}
    a = pages.open()
    b = pages.open()  # its own browser context: another user
    a.locator(".wb-until-paused input").check()  # A trains until its tab closes (a 20-epoch run ends in seconds)
    a.locator(".wb-train button").click()
    wait_until(lambda: trace_points(a, ".wb-chart-loss") > 3, message="session A training")
    new = wait_until(lambda: [r for r in store.list_runs() if r.id not in before and r.status == "running"],
                     message="A's run in the store")
    run_id = new[0].id
    # B: nothing of A's run or settings.
    expect(b.locator(".wb-run-status")).to_contain_text("No run yet")
    tab(b, "Train")
    expect(b.locator(".wb-live-status")).to_contain_text("No run yet")
    assert trace_points(b, ".wb-chart-loss") == 0
    tab(b, "Run setup")
    expect(b.locator(".wb-epochs input")).to_have_value("20")
    tab(b, "Compare")
    expect(b.locator(".wb-runs-empty")).to_contain_text("No runs yet")  # B's own history is empty
    # Even B's view of earlier sessions' runs leaves out A's run: A's session is open.
    b.locator(".wb-include-earlier input").check()
    b.locator(".wb-refresh-runs button").click()
    expect(b.locator(".wb-run-list")).not_to_contain_text(run_id[:6])
    # B's edits do not touch A.
    tab(b, "Build")
    clear(b)
    tab(a, "Build")
    assert block_ids(a) == ["fc_in", "to_angles", "vqc"]
    tab(a, "Train")
    expect(a.locator(".wb-stop button")).to_be_enabled()
    # Closing A's tab ends its session, which stops its training.
    a.context.close()
    wait_until(lambda: store.get_run(run_id).status == "cancelled", timeout=90,
               message="the closed tab's run to be cancelled")
    expect(b.locator(".wb-run-status")).to_contain_text("No run yet")


def drawn_points(page, css: str) -> int:
    """Points Plotly drew in the visible chart `css` (-1 while it is not drawn yet)."""
    chart = page.locator(f"{css} .wb-live-chart >> visible=true").first
    return chart.evaluate("el => el._fullLayout ? (el.data || []).reduce((n, t) => n + (t.x || []).length, 0) : -1")


def test_every_tab_shows_its_content_and_drawn_charts_after_load(pages):
    """Only the Build tab is in the page at first; the others arrive after it loads. Each one, when opened,
    must show its content, every chart on it drawn by Plotly (which also arrives after the page), and the
    charts that show data from the start must hold it: the deferral can never leave a tab empty."""
    from workbench.gui.app import TAB_NAMES
    from workbench.gui.measure import TAB_CONTENT

    page = pages.open()
    early = page.evaluate("""() => {
        const ready = performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd;
        return performance.getEntriesByType("resource").filter(e => e.startTime < ready).map(e => e.name)}""")
    assert not [url for url in early if "plotly" in url and ".js" in url], "plotly.js is fetched after the page"
    for number, name in enumerate(TAB_NAMES[1:] + TAB_NAMES[:1], start=1):
        tab(page, name)
        for css in TAB_CONTENT.get(name, (".wb-drop-end", ".wb-palette-item")):
            expect(page.locator(f"{css} >> visible=true").first).to_be_visible()
        charts = page.locator(".wb-live-chart >> visible=true")
        wait_until(lambda: charts.count() and all(charts.evaluate_all("els => els.map(el => !!el._fullLayout)"))
                   or (name in ("Build", "Circuit", "Export & share") and charts.count() == 0),
                   message=f"every chart of the {name} tab to be drawn")
        shot(page, f"13_tab_{number:02d}_{name.split()[0].lower()}.png")
    # The charts that show data before any training: the dataset preview and the sample picker.
    tab(page, "Run setup")
    info = page.locator(".wb-dataset-info").get_by_text(re.compile(r"\d+ train")).first.inner_text()
    train = int(re.search(r"(\d+) train", info).group(1))
    assert drawn_points(page, ".wb-preview") == train  # the preview plots every training sample it describes
    tab(page, "Quantum state")
    wait_until(lambda: drawn_points(page, ".wb-state-picker") > 0, message="the sample picker's points")


def test_zz_nothing_was_requested_from_outside(server):
    assert ABORTED == [], ABORTED
