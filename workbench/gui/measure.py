"""Measure the GUI as a user feels it, with a real `workbench serve` and a real Chromium (1480×1000).

    python -m workbench.gui.measure [--repeats 3] [--json out.json] [--root CHECKOUT]

Each repeat opens two fresh pages (no browser cache):
- page 1: seconds from opening the page until the server's HTML arrives, until the first paint (the loading
  spinner), until the canvas can be used and Train is enabled, and until the page has settled (every tab's
  content is in the page and plotly.js is loaded); then from pressing Train (vqc-circles) until the loss
  chart shows its first point;
- page 2: as soon as it is usable, each other tab is opened once, in order, and timed until its content is
  drawn (its charts have Plotly's SVG): the cost of a tab the page has not shown yet.
Beside the wall times it records the browser's main-thread busy time (CDP Performance TaskDuration) and the
server process's CPU time, both for opening the page until usable, and the load average, because the same
page takes twice as long on a busy machine. `--root` serves another checkout (e.g. a worktree of main) with
this same procedure, so two versions can be compared run by run.

Prints a table (median, min, max over the repeats) and optionally writes all values as JSON. Needs
playwright and /usr/bin/chromium; every request that would leave localhost is aborted and listed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

CHROMIUM = "/usr/bin/chromium"
LOCAL = ("http://localhost", "ws://localhost", "data:", "blob:", "about:")
TIMEOUT_MS = 120_000
# What shows that a tab's content is on screen: every selector has a visible match. Chart tabs wait for
# Plotly's SVG, i.e. the chart has been drawn, not just its box.
TAB_CONTENT = {
    "Circuit": (".wb-circuit-block select", ".wb-circuit-view"),
    "Run setup": (".wb-dataset", ".wb-preview .main-svg"),
    "Train": (".wb-chart-loss .main-svg", ".wb-chart-boundary .main-svg"),
    "Quantum state": (".wb-state-picker .main-svg", ".wb-state-probs .main-svg"),
    "Compare": (".wb-compare-metric", ),
    "Search": (".wb-search-start", ".wb-search-scatter .main-svg", ".wb-search-curves .main-svg"),
    "Benchmark": (".wb-bench-run", ),
    "Export & share": (".wb-share-url", ".wb-download-spec"),
}
ROWS = (("html_s", "page open → server's HTML (s)"), ("first_paint_s", "page open → first paint (s)"),
        ("interactive_s", "page open → canvas usable, Train on (s)"),
        ("browser_busy_s", "  browser main thread busy (s)"), ("server_cpu_s", "  server CPU (s)"),
        ("settled_s", "page open → all tabs in page, Plotly (s)"),
        ("first_point_s", "Train → first loss point (s)"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _busy(cdp) -> float:
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics.get("TaskDuration", 0.0)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _open(context, url: str, server: psutil.Process, settle: bool = True) -> tuple:
    """Open a usable (and, if `settle`, settled) page; (page, timings), HTML and first paint by the page's clock."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    busy, cpu, start = _busy(cdp), _cpu(server), time.perf_counter()
    page.goto(url)
    page.locator(".wb-drop-end").wait_for(timeout=TIMEOUT_MS)
    page.locator(".wb-train button:not([disabled])").wait_for(timeout=TIMEOUT_MS)
    timings = {"interactive_s": time.perf_counter() - start, "browser_busy_s": _busy(cdp) - busy,
               "server_cpu_s": _cpu(server) - cpu}
    marks = page.evaluate("""() => ({
        html: performance.getEntriesByType("navigation")[0].responseStart,
        paint: (performance.getEntriesByName("first-contentful-paint")[0] || {}).startTime})""")
    timings["html_s"] = marks["html"] / 1000
    timings["first_paint_s"] = (marks["paint"] or float("nan")) / 1000
    if not settle:
        return page, timings
    # Settled: every tab's content is in the page (hidden or not) and plotly.js has been evaluated.
    for selectors in TAB_CONTENT.values():
        page.locator(selectors[0]).first.wait_for(state="attached", timeout=TIMEOUT_MS)
    page.wait_for_function("() => !!window.Plotly", timeout=TIMEOUT_MS)
    timings["settled_s"] = time.perf_counter() - start
    return page, timings


def _first_point(page) -> float:
    start = time.perf_counter()
    page.locator(".wb-train button").click()
    plot = page.locator(".wb-chart-loss .js-plotly-plot")
    while True:
        try:
            if plot.evaluate("el => (el.data || []).some(t => t.x && t.x.length > 0)", timeout=500):
                return time.perf_counter() - start
        except Exception:  # the chart is being created
            pass
        if time.perf_counter() - start > TIMEOUT_MS / 1000:
            raise TimeoutError("no chart point within 120 s")
        time.sleep(0.02)


def _switch(page, name: str) -> float:
    start = time.perf_counter()
    page.locator(".bk-tab", has_text=name).first.click()
    for css in TAB_CONTENT[name]:
        page.locator(f"{css} >> visible=true").first.wait_for(timeout=TIMEOUT_MS)
    return time.perf_counter() - start


def measure(repeats: int = 3, root: Path | None = None) -> dict:
    """All timings over `repeats` rounds of fresh pages (see the module doc); lists of floats per measure."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    store = Path(tempfile.mkdtemp()) / "runs.sqlite3"
    env = {**os.environ, "WORKBENCH_STORE": str(store)}
    if root is not None:
        env["PYTHONPATH"] = str(root)
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", "--port", str(port)], env=env,
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://localhost:{port}/"
    result: dict = {key: [] for key, _ in ROWS}
    result.update(switch_s={name: [] for name in TAB_CONTENT}, outside_requests=[], load_average=[os.getloadavg()])
    try:
        for line in proc.stdout:
            if url in line:
                break
        server = psutil.Process(proc.pid)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])

            def context():
                ctx = browser.new_context(viewport={"width": 1480, "height": 1000})
                ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(LOCAL) else (
                    result["outside_requests"].append(r.request.url), r.abort()))
                return ctx

            for _ in range(repeats):
                ctx = context()
                page, timings = _open(ctx, url, server)
                for key, value in timings.items():
                    result[key].append(value)
                result["first_point_s"].append(_first_point(page))
                ctx.close()
                ctx = context()
                page, _ = _open(ctx, url, server, settle=False)
                for name in TAB_CONTENT:
                    result["switch_s"][name].append(_switch(page, name))
                ctx.close()
                result["load_average"].append(os.getloadavg())
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
    return result


def _row(label: str, values: list[float]) -> str:
    return f"{label:<44}{statistics.median(values):>8.2f}{min(values):>8.2f}{max(values):>8.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--root", type=Path, default=None, help="Serve this checkout instead of the installed one.")
    args = parser.parse_args(argv)
    cpu = time.process_time()
    result = measure(args.repeats, args.root)
    result["client_cpu_s"] = time.process_time() - cpu
    print(f"{'measure':<44}{'median':>8}{'min':>8}{'max':>8}")
    for key, label in ROWS:
        print(_row(label, result[key]))
    print("first opening of each tab, right after the page is usable (s):")
    for name, values in result["switch_s"].items():
        print(_row(f"  {name}", values))
    loads = " → ".join(f"{one:.1f}" for one, _, _ in result["load_average"])
    print(f"load average (1 min) {loads}; outside requests: {len(result['outside_requests'])}; "
          f"measuring client CPU {result['client_cpu_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
