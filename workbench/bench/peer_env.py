"""One virtual environment per peer framework, under the user cache directory, pinned to our torch.

`workbench bench peers --setup` calls `setup_all`; the peers suite calls `interpreter(framework)` to find
the Python that runs a framework's worker. A framework's environment is reused when its marker file says it
was built for the same torch; otherwise it is (re)built. Every pip call gets a constraints file that pins
the installed torch (any other torch spec can pull gigabytes of CUDA wheels) plus the framework's own pins.

Example:
    >>> from workbench.bench.peer_env import setup_all
    >>> report = setup_all(progress=print)   # {"pennylane": {"status": "ready", "python": ...}, ...}
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import platformdirs

MARKER_FILE = "workbench-peer.json"
INSTALL_TIMEOUT_S = 1800

# framework: (pip requirements, extra constraints, why the constraints)
PEER_PACKAGES: dict[str, tuple[list[str], list[str]]] = {
    "pennylane": (["pennylane", "pennylane-lightning"], []),
    # TorchQuantum 0.1.8 imports qiskit<1 APIs and pkg_resources (setuptools<81).
    "torchquantum": (["torchquantum", "qiskit-ibm-runtime", "qiskit-aer"],
                     ["qiskit<1.0", "qiskit-ibm-runtime<0.21", "qiskit-aer<0.14", "setuptools<81"]),
    "tyxonq": (["tyxonq"], []),
    "pyqtorch": (["pyqtorch"], []),
    "tensorcircuit": (["tensorcircuit-ng"], []),
    "qiskit": (["qiskit-machine-learning", "qiskit-aer"], []),
}
# Frameworks that run in the workbench's own interpreter (CUDA-Q is one of our dependencies).
OWN_INTERPRETER = ("workbench", "cudaq")


def root() -> Path:
    """Where the peer environments live: $WORKBENCH_PEER_ENVS, else <user cache dir>/workbench/peer-envs."""
    override = os.environ.get("WORKBENCH_PEER_ENVS")
    return Path(override) if override else Path(platformdirs.user_cache_dir("workbench")) / "peer-envs"


def torch_pin() -> str:
    """`torch==<installed version>` (local label included, so the same CPU/CUDA build is chosen)."""
    import torch

    return f"torch=={torch.__version__}"


def _python_of(env: Path) -> Path:
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def status(framework: str) -> dict:
    """{"status": "ready", "python": path} for a usable environment, else {"status": "missing", "reason"}."""
    if framework in OWN_INTERPRETER:
        return {"status": "ready", "python": sys.executable}
    env = root() / framework
    marker = env / MARKER_FILE
    if not marker.exists():
        return {"status": "missing", "reason": f"no environment yet: run `workbench bench peers --setup` "
                                               f"(it would live in {env})"}
    info = json.loads(marker.read_text())
    if info.get("status") != "ready":
        return {"status": "failed", "reason": info.get("reason", "install failed"), "log": info.get("log")}
    if info.get("torch") != torch_pin():
        return {"status": "stale", "reason": f"built for {info.get('torch')}, this interpreter has {torch_pin()}: "
                                             "rerun `workbench bench peers --setup`"}
    return {"status": "ready", "python": str(_python_of(env)), "packages": info.get("packages")}


# The module that proves a framework importable in the workbench's own interpreter (CI installs PennyLane
# and Qiskit ML there through the `peers` extra).
FRAMEWORK_MODULES = {"pennylane": "pennylane", "torchquantum": "torchquantum", "tyxonq": "tyxonq",
                     "pyqtorch": "pyqtorch", "tensorcircuit": "tensorcircuit", "qiskit": "qiskit_machine_learning"}


def interpreter(framework: str) -> tuple[str | None, str]:
    """(Python that runs this framework's worker, where it comes from), or (None, why not).

    Its own environment when `--setup` built one; else the workbench's interpreter when the framework is
    installed there; else None."""
    info = status(framework)
    if info["status"] == "ready":
        return info["python"], "workbench interpreter" if framework in OWN_INTERPRETER else f"venv {root() / framework}"
    import importlib.util

    module = FRAMEWORK_MODULES.get(framework)
    if module and importlib.util.find_spec(module) is not None:
        return sys.executable, "workbench interpreter"
    return None, info["reason"]


def _run(cmd: list[str], log: Path) -> None:
    with log.open("a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=True, timeout=INSTALL_TIMEOUT_S)


def _last_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["(no output)"])[-1][:400]


def setup(framework: str, *, force: bool = False) -> dict:
    """Build (or reuse) one framework's environment; returns its `status` plus "seconds" and "reused"."""
    if framework in OWN_INTERPRETER:
        return {**status(framework), "reused": True, "seconds": 0.0}
    if framework not in PEER_PACKAGES:
        raise KeyError(f"unknown peer framework {framework!r}: choose one of {', '.join(PEER_PACKAGES)}")
    current = status(framework)
    if current["status"] == "ready" and not force:
        return {**current, "reused": True, "seconds": 0.0}
    env = root() / framework
    if env.exists():
        shutil.rmtree(env)
    env.mkdir(parents=True)
    requirements, pins = PEER_PACKAGES[framework]
    constraints = env / "constraints.txt"
    constraints.write_text("\n".join([torch_pin(), *pins]) + "\n")
    log = env / "install.log"
    python = str(_python_of(env))
    t0 = time.perf_counter()
    info = {"framework": framework, "torch": torch_pin(), "requirements": requirements, "constraints": pins,
            "log": str(log)}
    try:
        _run([sys.executable, "-m", "venv", str(env)], log)
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c", str(constraints)]
        _run(pip + [torch_pin()], log)
        _run(pip + requirements, log)
        frozen = subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True, timeout=120)
        info.update(status="ready", packages=frozen.stdout.split())
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
        info.update(status="failed", reason=f"pip failed ({type(err).__name__}): {_last_error(log)}")
    info["seconds"] = time.perf_counter() - t0
    (env / MARKER_FILE).write_text(json.dumps(info, indent=1))
    return {**status(framework), "reused": False, "seconds": info["seconds"]}


def setup_all(frameworks: list[str] | None = None, *, force: bool = False,
              progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """`setup` every peer framework in turn; a failure is recorded with its reason and the others go on."""
    report = {}
    for framework in frameworks or list(PEER_PACKAGES):
        if progress:
            progress(f"peers --setup: {framework} in {root() / framework}")
        report[framework] = setup(framework, force=force)
        if progress:
            state = report[framework]
            note = "reused" if state.get("reused") else f"{state['seconds']:.0f} s"
            progress(f"peers --setup: {framework}: {state['status']} ({note})"
                     + (f": {state['reason']}" if state.get("reason") else ""))
    return report
