"""Notebook 00 in real JupyterLab, driven by Chromium: it runs, draws the run to its last step, lays out at a
notebook's width and fetches nothing from outside localhost.

JupyterLab is started on a free local port with a token; every non-localhost request of the page is aborted
and recorded, and the test asserts there were none.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab")
pytest.importorskip("playwright.sync_api")
from playwright.sync_api import sync_playwright  # noqa: E402

from browser_support import ARGS, CHROMIUM, LOCAL, ROOT, SHOTS, free_port, served, wait_until  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]



if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "00_jupyter_workbench.ipynb", root)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_STORE": str(root / "runs.sqlite3"),
           "JUPYTER_CONFIG_DIR": str(root / ".jupyter"), "JUPYTERLAB_SETTINGS_DIR": str(root / ".lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".lab-workspaces")}
    env.pop("BOKEH_RESOURCES", None)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--allow-root"]
    with served(command, env, ready=f":{port}/", cwd=root):
        yield f"http://127.0.0.1:{port}/lab/tree/00_jupyter_workbench.ipynb?token={token}"


def test_notebook_00_in_jupyterlab(lab):
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(LOCAL):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.route("**/*", route)
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(lab)
        page.locator(".jp-Notebook").wait_for()
        # A notebook without kernel metadata asks which kernel to use: the default Python 3 one.
        # (JupyterLab queues the cells until the kernel is up.)
        try:
            page.locator(".jp-Dialog .jp-mod-accept").click(timeout=30_000)
        except Exception:  # no dialog: the kernel starts by itself
            pass
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        SHOTS.mkdir(parents=True, exist_ok=True)
        try:
            output = wait_until(lambda: re.search(r"last step (\d+);", page.locator(".jp-Notebook").inner_text()),
                                300, "the notebook's last cell")
        except AssertionError:
            page.screenshot(path=str(SHOTS / "11_jupyterlab_failed.png"), full_page=True)
            raise AssertionError("notebook 00 did not finish in JupyterLab; its text ends with:\n"
                                 + page.locator(".jp-Notebook").inner_text()[-1500:]) from None
        last_step = int(output.group(1))
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        assert not [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
        # The rendered live chart (what the reader sees) ends at the run's last step, every curve of it.
        loss = page.locator(".wb-chart-loss .js-plotly-plot").last
        ends = wait_until(lambda: (lambda e: e if e and set(e) == {last_step} else None)(loss.evaluate(
            "el => (el.data || []).map(t => t.x[t.x.length - 1])")), 60, f"the loss chart to end at {last_step}")
        assert ends
        # The cell that adds a dropout block and undoes it leaves the template's blocks and no selection: the
        # settings form shows no fields (the dropout and its fields used to stay on screen).
        wait_until(lambda: page.locator(".wb-block").evaluate_all("els => els.map(e => e.dataset.id)")[:3]
                   == ["fc_in", "to_angles", "vqc"], 60, "the canvas to show the template without the dropout")
        settings = page.locator(".wb-settings").first  # (its text is in shadow roots: read it through locators)
        wait_until(lambda: settings.locator(".wb-section-title").all_inner_texts() == ["Block settings"], 60,
                   "the settings form to show that no block is selected")
        fields = settings.locator("label").all_inner_texts()
        assert settings.locator("input, select, textarea").count() == 0, f"the form still shows {fields}"
        # A readable layout at the notebook's width: the builder's canvas gets most of the cell.
        page.locator(".wb-drop-end").first.scroll_into_view_if_needed()
        canvas = page.locator(".wb-canvas-component").first.bounding_box()
        cell = page.locator(".jp-OutputArea-output").nth(1).bounding_box()
        assert canvas["width"] > 0.6 * cell["width"], (canvas, cell)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "11_jupyterlab_builder.png"))
        loss.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "12_jupyterlab_live.png"))
        browser.close()
    assert outside == [], outside
