"""What the browser tests share: Chromium's path and flags, the addresses that count as local, polling, free
ports, and a served process (`workbench serve`, JupyterLab, a standalone Panel page) that is always ended.

Example:
    with served([sys.executable, "-m", "workbench.cli", "serve", "--port", str(port)], env, ready=url) as lines:
        page.goto(url)
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
LOCAL = ("http://localhost", "ws://localhost", "http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")


def wait_until(predicate: Callable[[], object], timeout: float = 60.0, message: str = "condition", *,
               interval: float = 0.1):
    """Poll `predicate` until it is truthy and return its value; fail with `message` after `timeout` seconds."""
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


@contextlib.contextmanager
def served(command: list[str], env: dict, *, ready: str, cwd: Path = ROOT, timeout: float = 180.0,
           process: list | None = None) -> Iterator[list[str]]:
    """Run `command` until the block ends, yielding its output lines (collected as they come).

    Args:
        ready: the text whose appearance in the output means the server answers (e.g. its address).
        process: if given, the Popen object is appended to it (for tests that watch the server's children).
    """
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if process is not None:
        process.append(proc)
    lines: list[str] = []
    threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True).start()
    try:
        wait_until(lambda: any(ready in line for line in lines) or proc.poll() is not None, timeout,
                   message=f"{Path(command[0]).name} to print {ready!r}")
        assert proc.poll() is None, "the server exited:\n" + "".join(lines)
        yield lines
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
