"""The Search tab served standalone (its Viewer in `pn.serve`) and driven in headless Chromium: start a
search, watch points appear in the Pareto scatter, click one for its curves, open it in the builder.
Every request that leaves localhost is aborted and must not happen."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect, sync_playwright  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOCAL = ("http://localhost", "ws://localhost", "http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")
SERVE = """
import sys, panel as pn
from types import SimpleNamespace
from workbench.gui.state import BuilderState
from workbench.gui.tabs.search import SearchTab
from workbench.store import RunStore

STATE = SimpleNamespace(store=RunStore(sys.argv[1]), builder=BuilderState())

def page():
    tab = SearchTab(STATE)
    tab.space_select.value = "circles-vqc"
    tab.dataset_options.value = '{"n_samples": 60}'
    tab.budget.value, tab.epochs.value = 3, 1
    tab.builder_name = pn.widgets.StaticText(value="", css_classes=["builder-name"])
    STATE.builder.param.watch(lambda e: setattr(tab.builder_name, "value", STATE.builder.spec.get("name", "")),
                              "revision")
    return pn.Column(tab, tab.builder_name)

port = int(sys.argv[2])
print(f"serving http://localhost:{port}/", flush=True)
pn.serve({"/": page}, port=port, address="localhost", show=False)
"""

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not found", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(tmp_path_factory.mktemp("s") / "runs.sqlite3"),
                             str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + 120
    while not any("serving" in line for line in lines) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    try:
        yield f"http://localhost:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_search_tab_in_a_browser(url):
    aborted: list[str] = []
    expect.set_options(timeout=120_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def route(r):
            if r.request.url.startswith(LOCAL):
                r.continue_()
            else:
                aborted.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(url, timeout=120_000)
        page.locator(".wb-search-start button").dispatch_event("click")
        # points appear as candidates finish; the status says when all three are done
        expect(page.locator(".wb-search-status")).to_contain_text("3/3", timeout=300_000)  # three trainings on a busy machine
        expect(page.locator(".wb-search-status")).to_contain_text("completed")
        points = page.locator(".wb-search-scatter .scatterlayer .point")
        expect(points.first).to_be_visible()
        assert points.count() >= 3
        box = points.first.bounding_box()  # Plotly reads clicks from mouse events over its drag layer
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        expect(page.locator(".wb-search-curves .scatterlayer .trace")).to_have_count(2)
        page.locator(".wb-search-open button").dispatch_event("click")
        expect(page.locator(".wb-search-status")).to_contain_text("Opened candidate")
        expect(page.locator(".builder-name")).to_contain_text("circles-vqc-")
        browser.close()
    assert aborted == []
