"""Five browser sessions train at once against `workbench serve`, one on the emulated quantinuum target:
every page keeps answering (each interaction's time is measured and printed, not asserted as a speed), the
server process itself runs no training, and closing the hardware session's tab ends its job process."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from browser_support import ARGS, CHROMIUM, ROOT, free_port, served, wait_until  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 90_000

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)


@pytest.fixture()
def server(tmp_path):
    port = free_port()
    env = {**os.environ, "WORKBENCH_STORE": str(tmp_path / "runs.sqlite3"), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(ROOT)}
    url, process = f"http://localhost:{port}/", []
    with served([sys.executable, "-m", "workbench.cli", "serve", "--port", str(port), "--max-jobs", "5"], env,
                ready=url, process=process) as lines:
        yield process[0], url, tmp_path / "runs.sqlite3", lines


def _workers(server_pid: int) -> list[psutil.Process]:
    """The job worker processes: children of the server's forkserver."""
    servers = [p for p in psutil.Process(server_pid).children() if "forkserver" in " ".join(p.cmdline())]
    return [child for server in servers for child in server.children() if child.is_running()]


def _timed(label: str, timings: list, action) -> None:
    start = time.perf_counter()
    action()
    timings.append((label, time.perf_counter() - start))


def test_five_sessions_train_at_once_and_closing_the_hardware_tab_ends_its_job(server):
    from workbench.store import RunStore

    proc, url, store_path, log = server
    timings: list[tuple[str, float]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        contexts = [browser.new_context(viewport={"width": 1400, "height": 1100}) for _ in range(5)]
        pages = []
        for i, context in enumerate(contexts):
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            _timed(f"session {i}: open page", timings, lambda: (page.goto(url), page.locator(".wb-drop-end").wait_for()))
            pages.append(page)
        for i, page in enumerate(pages):
            page.locator(".bk-tab", has_text="Run setup").click()
            if i == 0:  # emulated hardware only measures: it is offered once Shots is above 0
                shots = page.locator(".wb-shots input")
                shots.fill("100")
                shots.press("Enter")
                option = page.locator(".wb-target select option", has_text="quantinuum")
                page.locator(".wb-target select").select_option(option.get_attribute("value"))
            epochs = page.locator(".wb-epochs input")
            # Far more epochs than the test outlasts: a run that completed would take its worker away and the
            # count of workers below would no longer tell which one ended.
            epochs.fill("100000")
            epochs.press("Enter")
            expect(epochs).to_have_value("100000")
        for i, page in enumerate(pages):
            def train(page=page):
                page.locator(".wb-train button").click()
                expect(page.locator(".wb-run-status")).to_contain_text("Training", timeout=TIMEOUT_MS)
            _timed(f"session {i}: Train answered", timings, train)
        store = RunStore(store_path)
        wait_until(lambda: len([r for r in store.list_runs() if r.status == "running"]) == 5, 180, "five runs")
        hardware = [r for r in store.list_runs() if r.config["target"] == "quantinuum"][0]
        wait_until(lambda: len(_workers(proc.pid)) == 5, 120, "five job processes")
        # While five jobs run, every page still answers: switch tabs and back.
        for i, page in enumerate(pages):
            def switch(page=page):
                page.locator(".bk-tab", has_text="Circuit").click()
                expect(page.locator(".bk-tab.bk-active", has_text="Circuit")).to_have_count(1)
                page.locator(".bk-tab", has_text="Train").click()
                expect(page.locator(".bk-tab.bk-active", has_text="Train")).to_have_count(1)
            _timed(f"session {i}: switch tabs while 5 jobs run", timings, switch)
        # The hardware session shows circuit-batch progress from its job.
        expect(pages[0].locator(".wb-run-status")).to_contain_text("circuits", timeout=240_000)
        # The server itself trains nothing: its CPU time stays small next to its workers'.
        server_cpu = sum(psutil.Process(proc.pid).cpu_times()[:2])
        workers_before = {w.pid for w in _workers(proc.pid)}
        contexts[0].close()
        wait_until(lambda: store.get_run(hardware.id).status == "cancelled", 120, "the hardware run cancelled")
        wait_until(lambda: len(_workers(proc.pid)) == 4, 60, "the hardware job's process to end")
        ended = workers_before - {w.pid for w in _workers(proc.pid)}
        assert len(ended) == 1
        for context in contexts[1:]:
            context.close()
        browser.close()
    print("\ninteraction times (s) with five sessions training, one on emulated quantinuum:")
    for label, seconds in timings:
        print(f"  {label:48} {seconds:6.2f}")
    print(f"  server process CPU time so far: {server_cpu:.1f} s")
    assert not any("named measurement" in line for line in log)  # CUDA-Q's warnings never reach the server log
