"""The Search tab served standalone (its Viewer in `pn.serve`) and driven in headless Chromium: start a
search, watch points appear in the Pareto scatter, click one for its curves, open it in the builder.
Every request that leaves localhost is aborted and must not happen."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from browser_support import ARGS, CHROMIUM, LOCAL, ROOT, free_port, served  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

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
server = pn.serve({"/": page}, port=port, address="localhost", show=False, start=False)
print(f"serving http://localhost:{port}/", flush=True)  # only now does the port answer
server.io_loop.start()
"""

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not found", allow_module_level=True)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    with served([sys.executable, "-c", SERVE, str(tmp_path_factory.mktemp("s") / "runs.sqlite3"), str(port)], env,
                ready="serving", timeout=120):
        yield f"http://localhost:{port}/"


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
