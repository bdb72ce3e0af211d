"""Measure the GUI as a user feels it: seconds from opening the page until the canvas can be used, and from
pressing Train (vqc-circles) until the loss chart shows its first point. Real server, real Chromium.

    python -m workbench.gui.measure [--repeats 3] [--json out.json]

Prints a table (median, min, max over the repeats, with the process CPU time beside the wall time) and
optionally writes JSON. Needs playwright and /usr/bin/chromium; nothing leaves localhost.
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

CHROMIUM = "/usr/bin/chromium"
LOCAL = ("http://localhost", "ws://localhost", "data:", "blob:", "about:")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(repeats: int = 3) -> dict:
    """{"interactive_s": [...], "first_point_s": [...], "outside_requests": [...]} over `repeats` fresh pages."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    store = Path(tempfile.mkdtemp()) / "runs.sqlite3"
    env = {**os.environ, "WORKBENCH_STORE": str(store)}
    server = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://localhost:{port}/"
    result: dict = {"interactive_s": [], "first_point_s": [], "outside_requests": []}
    try:
        for line in server.stdout:
            if url in line:
                break
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for _ in range(repeats):
                context = browser.new_context(viewport={"width": 1480, "height": 1000})
                context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(LOCAL) else (
                    result["outside_requests"].append(r.request.url), r.abort()))
                page = context.new_page()
                start = time.perf_counter()
                page.goto(url)
                page.locator(".wb-drop-end").wait_for(timeout=120_000)
                page.locator(".wb-train button:not([disabled])").wait_for(timeout=120_000)
                result["interactive_s"].append(time.perf_counter() - start)
                start = time.perf_counter()
                page.locator(".wb-train button").click()
                plot = page.locator(".wb-chart-loss .js-plotly-plot")
                while True:
                    try:
                        if plot.evaluate("el => (el.data || []).some(t => t.x && t.x.length > 0)", timeout=500):
                            break
                    except Exception:  # the chart is being created
                        pass
                    if time.perf_counter() - start > 120:
                        raise TimeoutError("no chart point within 120 s")
                    time.sleep(0.02)
                result["first_point_s"].append(time.perf_counter() - start)
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    cpu = time.process_time()
    result = measure(args.repeats)
    result["client_cpu_s"] = time.process_time() - cpu
    print(f"{'measure':<34}{'median':>9}{'min':>9}{'max':>9}")
    for key, label in (("interactive_s", "page open → canvas usable (s)"),
                       ("first_point_s", "Train → first loss point (s)")):
        values = result[key]
        print(f"{label:<34}{statistics.median(values):>9.2f}{min(values):>9.2f}{max(values):>9.2f}")
    print(f"outside requests: {len(result['outside_requests'])}; test-client CPU {result['client_cpu_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
