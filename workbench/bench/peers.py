"""`peers`: the benchmark workload in PennyLane, TorchQuantum, Qiskit Machine Learning and hand-written
CUDA-Q parameter shift against the workbench, each framework in its own long-lived subprocess, with the
timing requests alternating between them round by round; plus a gradient-agreement check of every peer
against the workbench's exact gradient on the same weights and inputs."""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import torch

from . import common as C
from .peer_models import FRAMEWORK_OF, OURS, VARIANTS
from .peer_worker import MARKER

PEER_SPEEDUP_TARGET = 2.0
CUDAQ_SHIFT_TARGET = 20.0
CUDAQ_SHIFT_QUBITS = 12
GRAD_TOLERANCE = 1e-5
_FRAMEWORK_MODULES = {"workbench": "workbench", "pennylane": "pennylane", "qiskit": "qiskit_machine_learning",
                      "torchquantum": "torchquantum", "cudaq": "cudaq"}
_VARIANT_MODULES = {"pennylane-lightning-adjoint": "pennylane_lightning"}


def installed(variant: str) -> str:
    """'' when the variant's framework is installed, else the reason."""
    framework = FRAMEWORK_OF[variant]
    for module in {_FRAMEWORK_MODULES[framework], _VARIANT_MODULES.get(variant, _FRAMEWORK_MODULES[framework])}:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    if variant == "workbench-qpp-adjoint" and importlib.util.find_spec("cudaq") is None:
        return "cudaq is not installed"
    return ""


class PeerProcess:
    """One framework's worker: JSON requests in, marker-prefixed JSON answers out."""

    def __init__(self, framework: str, threads: int | None):
        self.framework = framework
        env = dict(os.environ)
        env["PYTHONWARNINGS"] = "ignore"
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        if threads:
            env["WB_BENCH_THREADS"] = str(threads)
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[name] = str(threads)
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"wb-peer-{framework}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-m", "workbench.bench.peer_worker", framework],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=env, bufsize=1)
        self.hello: dict = {}
        self._lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARKER):
                self._lines.put(line[len(MARKER):])
        self._lines.put(None)

    def request(self, payload: dict, timeout: float) -> dict:
        if self.proc.poll() is not None:
            return {"error": f"worker exited ({self.proc.returncode}): {self._log_tail()}"}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(payload) + "\n")
        self.proc.stdin.flush()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            return {"error": f"no answer within {timeout:.0f} s (worker stopped)"}
        if line is None:
            return {"error": f"worker exited: {self._log_tail()}"}
        return json.loads(line)

    def _log_tail(self) -> str:
        try:
            self.log.flush()
            text = Path(self.log.name).read_text()
        except OSError:
            return ""
        return text.strip().splitlines()[-1] if text.strip() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except Exception:
                self.kill()
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


def reference_inputs(n: int, batch: int = 4, seed: int = 1234) -> dict:
    """Weights (workbench names without `blocks.`), inputs and labels for the gradient-agreement check."""
    generator = torch.Generator().manual_seed(seed + n)
    state = {
        "fc_in.weight": torch.randn(n, n, generator=generator, dtype=torch.float64) / n ** 0.5,
        "fc_in.bias": 0.1 * torch.randn(n, generator=generator, dtype=torch.float64),
        "q.weight": (torch.rand(4 * n, generator=generator, dtype=torch.float64) - 0.5) * 3.0,
        "head.weight": torch.randn(2, n, generator=generator, dtype=torch.float64),
        "head.bias": 0.1 * torch.randn(2, generator=generator, dtype=torch.float64),
    }
    x = torch.randn(batch, n, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 2, (batch,), generator=generator)
    return {"state": {k: v.tolist() for k, v in state.items()}, "x": x.tolist(), "y": y.tolist()}


def _flatten(grads: dict[str, list]) -> torch.Tensor:
    return torch.cat([torch.tensor(grads[k], dtype=torch.float64).reshape(-1) for k in sorted(grads)])


def run_peers(qubits=(4, 8, 12), batch: int = C.DEFAULT_BATCH, repeats: int = 3, rounds: int = 3, *,
              max_seconds: float = 60.0, threads: int | None = 1, grad_qubits=(4, 8), variants=None,
              grad_batch: int = 4, grad_tolerance: float = GRAD_TOLERANCE, template: str | None = None, spec=None,
              progress: Callable[[str], None] | None = None) -> dict:
    """Time every installed peer on the standard workload; check their gradients against ours."""
    if template or spec:
        raise ValueError("peers runs the standard workload (the same network written in every framework): "
                         "drop --template/--spec and size it with --qubits")
    variants = list(variants or VARIANTS)
    result = C.new_result("peers", {"qubits": list(qubits), "batch": batch, "repeats": repeats, "rounds": rounds,
                                    "max_seconds": max_seconds, "threads": threads, "grad_qubits": list(grad_qubits),
                                    "grad_batch": grad_batch, "grad_tolerance": grad_tolerance,
                                    "variants": variants})
    result["peers"] = {}
    processes: dict[str, PeerProcess] = {}
    active: list[str] = []
    timeout = max(600.0, 12 * max_seconds)
    try:
        for variant in variants:  # start every worker first: they import their frameworks side by side
            framework = FRAMEWORK_OF[variant]
            if not installed(variant) and framework not in processes:
                if progress:
                    progress(f"peers: starting the {framework} worker")
                processes[framework] = PeerProcess(framework, threads)
        for variant in variants:
            info = {"variant": variant, "description": VARIANTS[variant][1], "framework": FRAMEWORK_OF[variant]}
            result["peers"][variant] = info
            reason = installed(variant)
            if not reason:
                framework = FRAMEWORK_OF[variant]
                if not processes[framework].hello:
                    processes[framework].hello = processes[framework].request({"cmd": "hello"}, timeout=timeout)
                hello = processes[framework].hello
                if "error" in hello:
                    reason = f"{framework} does not import cleanly: {hello['error']}"
                else:
                    info["versions"] = hello.get("versions")
            if reason:
                info["status"] = "skipped"
                info["reason"] = reason
                result["skipped"].append({"variant": variant, "reason": reason})
                continue
            info["status"] = "ok"
            active.append(variant)

        samples: dict[tuple[str, int], dict] = {}
        for n in qubits:
            for r in range(rounds):
                order = active[r % len(active):] + active[:r % len(active)] if active else []
                for variant in order:
                    key = (variant, n)
                    entry = samples.setdefault(key, {"forward_ms": [], "backward_ms": [], "optimizer_ms": [],
                                                     "step_ms": [], "measured_batch": batch, "error": None})
                    if entry["error"]:
                        continue
                    if progress:
                        progress(f"peers: {n} qubits, round {r + 1}/{rounds}: {variant}")
                    resp = processes[FRAMEWORK_OF[variant]].request(
                        {"cmd": "time", "variant": variant, "n": n, "batch": batch, "repeats": repeats,
                         "max_seconds": max_seconds, "seed": n}, timeout=timeout)
                    if "error" in resp:
                        entry["error"] = resp["error"]
                        continue
                    for name in ("forward_ms", "backward_ms", "optimizer_ms", "step_ms"):
                        entry[name].extend(resp[name])
                    entry["measured_batch"] = resp["measured_batch"]
                    entry["estimate_s"] = resp.get("estimate_s")
        for (variant, n), entry in samples.items():
            row = {"variant": variant, "framework": FRAMEWORK_OF[variant], "n": n, "batch": batch,
                   "ours": variant in OURS, "status": "error" if entry["error"] else "ok"}
            if entry["error"]:
                row["reason"] = entry["error"]
            else:
                for name in ("forward_ms", "backward_ms", "optimizer_ms", "step_ms"):
                    row[name] = statistics.median(entry[name]) if entry[name] else None
                row["steps_timed"] = len(entry["step_ms"])
                if entry["measured_batch"] != batch:
                    row["measured_batch"] = entry["measured_batch"]
                    row["extrapolated"] = True
            result["rows"].append(row)
        for variant in variants:
            if variant not in active:
                for n in qubits:
                    result["rows"].append({"variant": variant, "framework": FRAMEWORK_OF[variant], "n": n,
                                           "batch": batch, "ours": variant in OURS, "status": "skipped",
                                           "reason": result["peers"][variant]["reason"]})
        _speed_checks(result, qubits)
        _gradient_checks(result, processes, active, grad_qubits, grad_batch, grad_tolerance, timeout, progress)
    finally:
        for process in processes.values():
            process.close()
    return C.finish(result)


def _speed_checks(result: dict, qubits) -> None:
    rows = [r for r in result["rows"] if r["status"] == "ok" and r.get("step_ms")]
    for n in qubits:
        at_n = [r for r in rows if r["n"] == n]
        ours = [r for r in at_n if r["ours"]]
        peers = [r for r in at_n if not r["variant"].startswith("workbench-")]
        if ours and peers:
            best = min(ours, key=lambda r: r["step_ms"])
            rival = min(peers, key=lambda r: r["step_ms"])
            ratio = rival["step_ms"] / best["step_ms"]
            C.check(result, "our fastest exact path vs the fastest peer", ratio, f">= {PEER_SPEEDUP_TARGET:g}",
                    met=ratio >= PEER_SPEEDUP_TARGET, n=n, ours=best["variant"], ours_ms=best["step_ms"],
                    peer=rival["variant"], peer_ms=rival["step_ms"])
        adjoint = next((r for r in at_n if r["variant"] == "workbench-qpp-adjoint"), None)
        shift = next((r for r in at_n if r["variant"] == "cudaq-parameter-shift"), None)
        if adjoint and shift:
            # The target is set at 12 qubits; elsewhere the ratio is reported for information.
            ratio = shift["step_ms"] / adjoint["step_ms"]
            at_target = n == CUDAQ_SHIFT_QUBITS
            C.check(result, "CUDA-Q adjoint (workbench) vs hand-written CUDA-Q parameter shift", ratio,
                    f">= {CUDAQ_SHIFT_TARGET:g}" + ("" if at_target else f" (at {CUDAQ_SHIFT_QUBITS} qubits)"),
                    met=ratio >= CUDAQ_SHIFT_TARGET if at_target else None, n=n,
                    shift_measured_batch=shift.get("measured_batch", shift["batch"]))


def _gradient_checks(result: dict, processes, active, grad_qubits, grad_batch, tolerance, timeout, progress) -> None:
    result["gradient_agreement"] = []
    reference_variant = "workbench-torch-backprop"
    if reference_variant not in active:
        return
    for n in grad_qubits:
        inputs = reference_inputs(n, grad_batch)
        if progress:
            progress(f"peers: gradient agreement at {n} qubits")
        ref = processes["workbench"].request({"cmd": "grad", "variant": reference_variant, "n": n, **inputs},
                                             timeout=timeout)
        if "error" in ref:
            result["gradient_agreement"].append({"n": n, "variant": reference_variant, "status": "error",
                                                 "reason": ref["error"]})
            continue
        ref_flat = _flatten(ref["grads"])
        ref_out = torch.tensor(ref["output"], dtype=torch.float64)
        for variant in active:
            if variant == reference_variant:
                continue
            t0 = time.perf_counter()
            resp = processes[FRAMEWORK_OF[variant]].request({"cmd": "grad", "variant": variant, "n": n, **inputs},
                                                            timeout=timeout)
            row = {"n": n, "variant": variant, "batch": grad_batch, "seconds": time.perf_counter() - t0}
            if "error" in resp:
                row.update(status="error", reason=resp["error"])
                C.check(result, "gradient agrees with the workbench", None, f"<= {tolerance:g}", met=False,
                        n=n, variant=variant, reason=resp["error"])
            else:
                diff = (_flatten(resp["grads"]) - ref_flat).abs().max().item()
                out_diff = (torch.tensor(resp["output"], dtype=torch.float64) - ref_out).abs().max().item()
                row.update(status="ok", max_abs_grad_diff=diff, max_abs_output_diff=out_diff,
                           reference_grad_scale=ref_flat.abs().max().item())
                C.check(result, "gradient agrees with the workbench", diff, f"<= {tolerance:g}",
                        met=diff <= tolerance, n=n, variant=variant)
            result["gradient_agreement"].append(row)
