"""The GUI in a real headless Chromium, against `workbench serve` on a free localhost port.

Every request that leaves localhost is aborted and recorded; the last test asserts there were none
(no CDN, no web fonts). Screenshots of the main screens go to artifacts/screenshots/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect, sync_playwright  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
LOCAL = ("http://localhost", "ws://localhost", "http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")
ABORTED: list[str] = []
TIMEOUT_MS = 60_000

expect.set_options(timeout=TIMEOUT_MS)  # a loaded 2-core machine: generous, still polling (never a sleep)

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until it is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as err:  # an element that is re-rendering: try again
            last_error, value = err, None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}" +
                         (f" (last error: {last_error})" if last_error else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Fixtures: the served app, a browser, offline pages


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("gui-store") / "runs.sqlite3"
    port = free_port()
    env = {**os.environ, "WORKBENCH_STORE": str(store), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    env.pop("BOKEH_RESOURCES", None)
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True)
    reader.start()
    url = f"http://localhost:{port}/"
    try:
        wait_until(lambda: any(url in line for line in lines) or proc.poll() is not None, timeout=180,
                   message="`workbench serve` to print its address")
        assert proc.poll() is None, "server exited:\n" + "".join(lines)
        yield SimpleNamespace(url=url, store=store, log=lines, port=port)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


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
    # Fixing it in the form enables Train.
    page.locator(".wb-field-encoding select").select_option("amplitude")
    expect(page.locator(".wb-block[data-id=q1] .wb-error")).to_have_count(0)
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


def test_run_setup_shows_targets_and_gradient_choice(pages):
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
    set_number(page, ".wb-shots", 0)
    expect(page.locator(".wb-gradient-explanation")).to_contain_text("vqc → adjoint")
    expect(page.locator(".wb-gradient-explanation")).not_to_contain_text("shots")
    shot(page, "04_run_setup.png")


def test_train_circles_live_then_stop_compare_and_benchmark(pages, server):
    from workbench.store import RunStore

    page = pages.open()
    template(page, "vqc-circles")
    tab(page, "Run setup")
    set_number(page, ".wb-epochs", 300)
    expect(page.locator(".wb-epochs input")).to_have_value("300")
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
    shot(page, "05_live_dashboard.png")

    page.locator(".wb-stop button").click()
    expect(page.locator(".wb-run-status")).to_contain_text("Stopped", timeout=TIMEOUT_MS)
    stopped_at = trace_points(page, ".wb-chart-loss")
    store = RunStore(server.store)
    runs = [r for r in store.list_runs() if r.status == "cancelled"]
    assert runs, [(r.id, r.status) for r in store.list_runs()]
    run_id = runs[0].id
    expect(page.locator(".wb-train button")).to_be_enabled()
    assert trace_points(page, ".wb-chart-loss") == stopped_at  # nothing arrives after stop
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
    wait_until(lambda: bars.evaluate("el => el.data[0].type === 'bar' && el.data[0].x.length") == 4,
               message="four benchmark bars")
    labels = bars.evaluate("el => el.data[0].y")
    assert sorted(labels) == sorted(f"torch · {m}" for m in ("adjoint", "parameter_shift", "finite_diff",
                                                               "backprop"))
    expect(page.locator(".wb-bench-table")).to_contain_text("ms / step")
    assert page.locator(".wb-bench-table .wb-ok-pill").count() == 4
    shot(page, "07_benchmark.png")


def test_reloading_the_url_restores_the_same_network_and_settings(pages):
    page = pages.open()
    template(page, "quantum-output")
    page.locator(".wb-palette-item[data-key=dropout] .wb-palette-add").click()
    wait_until(lambda: block_ids(page)[-1] == "drop1", message="appended dropout")
    page.locator(".wb-block[data-id=drop1] [data-action=up]").click()
    wait_until(lambda: block_ids(page) == ["fc_in", "to_angles", "drop1", "qout"], message="moved dropout up")
    tab(page, "Run setup")
    set_number(page, ".wb-epochs", 7)
    expected_ids = block_ids(page)

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
    assert block_ids(page) == ["fc_in", "to_angles", "vqc"]
    good = tmp_path / "digits.json"
    good.write_text(workbench.templates.get("hybrid-digits").to_json())
    page.locator(".wb-upload input[type=file]").set_input_files(str(good))
    expect(page.locator(".wb-upload-message")).to_contain_text("Loaded digits.json")
    expect(page.locator(".wb-upload-message")).to_contain_text("Dataset set to digits")  # the template's data
    expect(page.locator(".wb-train button")).to_be_enabled()
    wait_until(lambda: block_ids(page) == ["flat", "fc_in", "to_angles", "qlayer", "head"], message="upload")
    shot(page, "08_export.png")


def test_two_sessions_are_isolated_and_closing_a_tab_stops_its_run(pages, server):
    from workbench.store import RunStore

    store = RunStore(server.store)
    before = {r.id for r in store.list_runs()}
    a = pages.open()
    b = pages.open()  # its own browser context: another user
    tab(a, "Run setup")
    set_number(a, ".wb-epochs", 300)
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
    assert block_ids(a) == ["fc_in", "to_angles", "vqc"]
    expect(a.locator(".wb-stop button")).to_be_enabled()
    # Closing A's tab ends its session, which stops its training.
    a.context.close()
    wait_until(lambda: store.get_run(run_id).status == "cancelled", timeout=90,
               message="the closed tab's run to be cancelled")
    expect(b.locator(".wb-run-status")).to_contain_text("No run yet")


def test_zz_nothing_was_requested_from_outside(server):
    assert ABORTED == [], ABORTED
