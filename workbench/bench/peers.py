"""`peers`: the standard workload in every peer framework against the workbench, under one fair protocol.

Protocol (each point is what a reviewer rerunning it would check):
- every configuration runs the full batch; one whose warm-up step exceeds `max_seconds` is reported as
  "over budget" with its warm-up time (and not tried at larger n);
- warm-up steps are excluded; each round gives every configuration `repeats` timed steps (more for fast
  ones, up to `min_round_s`), the order rotating round by round; a row holds medians over all its steps;
- wall time and process CPU time of every step, and the machine's load average, are recorded;
- each framework runs in its own long-lived worker process under its own interpreter (`peer_env`), one
  thread each unless `threads` says otherwise;
- the result is rewritten to `out` after every measurement, so a killed run keeps what it measured;
- every framework, ours included, is checked against the independent float64 dense-matrix reference
  (`reference`) in double and single precision;
- the headline compares our fastest exact path with the fastest peer *within each round* and takes the
  median of those ratios, in CPU and in wall time.
"""

from __future__ import annotations

import json
import os
import queue
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import common as C
from . import peer_env
from .peer_models import FRAMEWORK_OF, OURS, VARIANTS
from .peer_worker import MARKER

# Speed-up targets: our fastest exact path vs the fastest peer, CPU time per training step.
SPEEDUP_TARGETS = {4: 3.0, 8: 3.0, 12: 10.0, 16: 10.0}
TOLERANCE = {"float64": 1e-12, "float32": 1e-6}
MIN_ROUND_S = 0.3


class PeerProcess:
    """One framework's worker under its interpreter: JSON requests in, marker-prefixed JSON answers out."""

    def __init__(self, framework: str, python: str, threads: int | None):
        self.framework = framework
        env = dict(os.environ)
        env["PYTHONWARNINGS"] = "ignore"
        env.pop("PYTHONPATH", None)
        if framework in peer_env.OWN_INTERPRETER:  # these import the workbench itself
            env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        if threads:
            env["WB_BENCH_THREADS"] = str(threads)
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[name] = str(threads)
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"wb-peer-{framework}-", suffix=".log", delete=False)
        worker = str(Path(__file__).resolve().parent / "peer_worker.py")
        self.proc = subprocess.Popen([python, worker, framework], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env=env, bufsize=1)
        self.hello: dict = {}
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARKER):
                self._lines.put(line[len(MARKER):])
        self._lines.put(None)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, payload: dict, timeout: float) -> dict:
        if not self.alive:
            return {"error": f"worker exited ({self.proc.returncode}): {self._log_tail()}"}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(payload) + "\n")
        self.proc.stdin.flush()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            return {"timeout": True, "error": f"no answer within {timeout:.0f} s (worker stopped)"}
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
        if self.alive:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        if self.alive:
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
    """Weights (workbench names without `blocks.`), inputs and labels for the reference check."""
    rng = np.random.default_rng(seed + n)
    state = {"fc_in.weight": rng.standard_normal((n, n)) / n ** 0.5, "fc_in.bias": 0.1 * rng.standard_normal(n),
             "q.weight": (rng.random(4 * n) - 0.5) * 3.0, "head.weight": rng.standard_normal((2, n)),
             "head.bias": 0.1 * rng.standard_normal(2)}
    return {"state": {k: v.tolist() for k, v in state.items()}, "x": rng.standard_normal((batch, n)).tolist(),
            "y": rng.integers(0, 2, batch).tolist()}


def _flatten(grads: dict[str, list]) -> np.ndarray:
    return np.concatenate([np.asarray(grads[k], dtype=float).reshape(-1) for k in sorted(grads)])


class _Stream:
    """Writes the result document after every measurement (atomically: a killed run leaves a whole file)."""

    def __init__(self, result: dict, out: Path | None):
        self.result, self.out = result, out

    def __call__(self) -> None:
        if self.out is None:
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(self.out.suffix + ".partial")
        tmp.write_text(json.dumps(self.result, indent=1, default=str))
        os.replace(tmp, self.out)


def installed(variant: str) -> str:
    """'' when the variant's framework can run here (its own environment or this interpreter), else why not."""
    python, reason = peer_env.interpreter(FRAMEWORK_OF[variant])
    return "" if python else reason


def _is_ours(variant: str) -> bool:
    """Every workbench path (torch engine or CUDA-Q) counts as ours in the headline; all others are peers."""
    return variant in OURS or variant.startswith("workbench-")


def _row(result: dict, variant: str, n: int, batch: int) -> dict:
    for row in result["rows"]:
        if row["variant"] == variant and row["n"] == n:
            return row
    row = {"variant": variant, "framework": FRAMEWORK_OF[variant], "n": n, "batch": batch, "ours": _is_ours(variant),
           "threads": result["config"]["threads"], "status": "pending"}
    result["rows"].append(row)
    return row


def _absorb(row: dict, resp: dict, round_index: int) -> None:
    """Fold one timing answer into its row: all steps so far, medians, and this round's own medians."""
    samples = row.setdefault("samples", {"forward_ms": [], "backward_ms": [], "optimizer_ms": [], "step_ms": [],
                                         "cpu_ms": []})
    for key in samples:
        samples[key].extend(resp[key])
    for key, values in samples.items():
        row[key] = statistics.median(values)
    row["steps_timed"] = len(samples["step_ms"])
    row.setdefault("rounds", []).append({"round": round_index, "step_ms": statistics.median(resp["step_ms"]),
                                         "cpu_ms": statistics.median(resp["cpu_ms"]), "steps": len(resp["step_ms"]),
                                         "load_average": [round(v, 2) for v in resp["load_average"]]})
    loads = [r["load_average"][0] for r in row["rounds"]]
    row["load_average_1min"] = [min(loads), max(loads)]
    if "warmup_s" in resp:
        row["warmup_s"] = resp["warmup_s"]
        row["build_s"] = resp.get("build_s")
    row["status"] = "ok"


def run_peers(qubits=(4, 8, 12, 16), batch: int = C.DEFAULT_BATCH, repeats: int = 3, rounds: int = 3, *,
              max_seconds: float = 60.0, threads: int | None = 1, grad_qubits=(4, 8), variants=None,
              grad_batch: int = 3, out: str | Path | None = None, template: str | None = None, spec=None,
              progress: Callable[[str], None] | None = None) -> dict:
    """Time every peer variant on the standard workload, check all against the reference, compute the headline.

    Args:
        qubits: sizes of the workload. batch: samples per step, the same for every configuration.
        repeats: minimum timed steps per configuration per round. rounds: alternating rounds.
        max_seconds: a configuration whose warm-up step takes longer is "over budget".
        threads: torch/OpenMP/BLAS threads per worker (None: library defaults).
        grad_qubits, grad_batch: sizes of the reference check. out: JSON file rewritten as results come.
    Returns:
        The result document (also in `out`): rows, headline, reference_agreement, checks, skipped, peers.
    """
    if template or spec:
        raise ValueError("peers runs the standard workload (the same network written in every framework): "
                         "drop --template/--spec and size it with --qubits")
    variants = list(variants or VARIANTS)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise KeyError(f"unknown peer variant(s) {', '.join(unknown)}: choose from {', '.join(VARIANTS)}")
    result = C.new_result("peers", {"qubits": list(qubits), "batch": batch, "repeats": repeats, "rounds": rounds,
                                    "max_seconds": max_seconds, "threads": threads, "grad_qubits": list(grad_qubits),
                                    "grad_batch": grad_batch, "variants": variants, "min_round_s": MIN_ROUND_S})
    result["peers"], result["headline"], result["reference_agreement"] = {}, [], []
    stream = _Stream(result, Path(out) if out else None)
    say = progress or (lambda message: None)
    processes: dict[str, PeerProcess] = {}
    pythons: dict[str, str] = {}
    timeout = 2 * max_seconds + 90  # a warm-up step over budget, plus building the model and importing

    def worker(framework: str) -> PeerProcess:
        if framework not in processes or not processes[framework].alive:
            processes[framework] = PeerProcess(framework, pythons[framework], threads)
        return processes[framework]

    try:
        active = _start_workers(result, variants, qubits, batch, threads, pythons, worker, timeout, say)
        stream()
        stopped: dict[str, str] = {}  # variant -> why it is not tried at larger n
        for n in qubits:
            for r in range(rounds):
                order = active[r % len(active):] + active[:r % len(active)] if active else []
                for variant in order:
                    row = _row(result, variant, n, batch)
                    if variant in stopped and row["status"] == "pending":
                        row.update(status="over budget", reason=stopped[variant])
                    if row["status"] not in ("pending", "ok"):
                        continue
                    say(f"peers: {n} qubits, round {r + 1}/{rounds}: {variant}")
                    resp = worker(FRAMEWORK_OF[variant]).request(
                        {"cmd": "time", "variant": variant, "n": n, "batch": batch, "repeats": repeats, "warmup": 2,
                         "max_seconds": max_seconds, "min_round_s": MIN_ROUND_S, "seed": n}, timeout=timeout)
                    if resp.get("over_budget") or resp.get("timeout"):
                        warm = resp.get("warmup_s") or []
                        row["warmup_s"] = warm
                        took = f"{warm[-1]:.1f} s" if warm else f"more than {timeout:.0f} s (worker stopped)"
                        row.update(status="over budget",
                                   reason=f"warm-up step took {took} > budget {max_seconds:g} s at batch {batch}")
                        stopped[variant] = f"over budget at n={n} (warm-up step {took})"
                    elif "error" in resp:
                        row.update(status="error", reason=resp["error"])
                    else:
                        _absorb(row, resp, r)
                    stream()
        _headline(result, qubits)
        stream()
        _reference_checks(result, active, grad_qubits, grad_batch, worker, timeout, say, stream)
    finally:
        for process in processes.values():
            process.close()
    for row in result["rows"]:
        if row["status"] == "pending":
            row.update(status="error", reason="not measured")
    C.finish(result)
    stream()
    return result


def _start_workers(result, variants, qubits, batch, threads, pythons, worker, timeout, say) -> list[str]:
    """Start one worker per framework (they import side by side), greet them, and list the runnable variants."""
    frameworks = list(dict.fromkeys(FRAMEWORK_OF[v] for v in variants))
    reasons: dict[str, str] = {}
    for framework in frameworks:
        python, where = peer_env.interpreter(framework)
        if python is None:
            reasons[framework] = where
            continue
        pythons[framework] = python
        say(f"peers: starting the {framework} worker ({where})")
        worker(framework).hello = {"where": where}
    for framework in pythons:
        process = worker(framework)
        hello = process.request({"cmd": "hello"}, timeout=timeout)
        if "error" in hello:
            reasons[framework] = f"{framework} does not import cleanly: {hello['error']}"
        else:
            process.hello.update(hello)
    active = []
    for variant in variants:
        framework = FRAMEWORK_OF[variant]
        info = {"variant": variant, "description": VARIANTS[variant], "framework": framework}
        result["peers"][variant] = info
        if framework in reasons:
            info.update(status="skipped", reason=reasons[framework])
            result["skipped"].append({"variant": variant, "reason": reasons[framework]})
            for n in qubits:
                _row(result, variant, n, batch).update(status="skipped", reason=reasons[framework])
            continue
        hello = worker(framework).hello
        info.update(status="ok", versions=hello.get("versions"), interpreter=hello.get("where"),
                    import_s=hello.get("import_s"), threads=hello.get("threads"))
        active.append(variant)
    return active


def _headline(result: dict, qubits) -> None:
    """Per n: in every round, our fastest exact path vs the fastest peer (CPU and wall); median over rounds."""
    for n in qubits:
        at_n = [r for r in result["rows"] if r["n"] == n and r["status"] == "ok"]
        ours = [r for r in at_n if r["ours"]]
        peers = [r for r in at_n if not r["ours"]]
        if not ours or not peers:
            continue
        per_round = []
        for round_index in sorted({x["round"] for r in at_n for x in r["rounds"]}):
            def best(rows, key):
                timed = [(x[key], r["variant"]) for r in rows for x in r["rounds"] if x["round"] == round_index]
                return min(timed) if timed else None

            entry = {"round": round_index}
            for key in ("cpu_ms", "step_ms"):
                mine, theirs = best(ours, key), best(peers, key)
                if mine and theirs:
                    entry[key] = {"ours": mine[1], "ours_ms": mine[0], "peer": theirs[1], "peer_ms": theirs[0],
                                  "ratio": theirs[0] / mine[0]}
            if "cpu_ms" in entry:
                per_round.append(entry)
        if not per_round:
            continue
        line = {"n": n, "rounds": per_round}
        for key, label in (("cpu_ms", "cpu"), ("step_ms", "wall")):
            ratios = [e[key]["ratio"] for e in per_round if key in e]
            line[f"{label}_ratio"] = statistics.median(ratios)
            line[f"{label}_ratio_range"] = [min(ratios), max(ratios)]
            line[f"{label}_ours"] = statistics.mode(e[key]["ours"] for e in per_round if key in e)
            line[f"{label}_peer"] = statistics.mode(e[key]["peer"] for e in per_round if key in e)
        over = [r["variant"] for r in result["rows"] if r["n"] == n and r["status"] == "over budget"]
        line["peers_over_budget"] = over
        result["headline"].append(line)
        target = SPEEDUP_TARGETS.get(n)
        C.check(result, "our fastest exact path vs the fastest peer (CPU time, same round)", line["cpu_ratio"],
                f">= {target:g}" if target else "report", met=(line["cpu_ratio"] >= target) if target else None,
                n=n, ours=line["cpu_ours"], peer=line["cpu_peer"], wall_ratio=line["wall_ratio"])


def _reference_checks(result, active, grad_qubits, grad_batch, worker, timeout, say, stream) -> None:
    """Outputs and gradients of every active variant, double and single precision, against the reference."""
    from .reference import network

    for n in grad_qubits:
        inputs = reference_inputs(n, grad_batch)
        say(f"peers: reference (float64 dense matrices) at {n} qubits")
        t0 = time.perf_counter()
        ref = network(n, inputs["state"], inputs["x"], inputs["y"])
        result.setdefault("reference_seconds", {})[str(n)] = time.perf_counter() - t0
        ref_grads, ref_out = _flatten(ref["grads"]), np.asarray(ref["output"])
        for variant in active:
            for dtype, tolerance in TOLERANCE.items():
                say(f"peers: {variant} vs the reference at {n} qubits, {dtype}")
                resp = worker(FRAMEWORK_OF[variant]).request(
                    {"cmd": "grad", "variant": variant, "n": n, "dtype": dtype, **inputs}, timeout=timeout)
                row = {"n": n, "variant": variant, "dtype": dtype, "batch": grad_batch, "tolerance": tolerance}
                if "error" in resp:
                    row.update(status="error", reason=resp["error"])
                    value = None
                else:
                    value = float(np.abs(_flatten(resp["grads"]) - ref_grads).max())
                    row.update(status="ok", max_abs_grad_diff=value,
                               max_abs_output_diff=float(np.abs(np.asarray(resp["output"]) - ref_out).max()),
                               reference_grad_scale=float(np.abs(ref_grads).max()),
                               output_dtype=resp.get("output_dtype"))
                result["reference_agreement"].append(row)
                C.check(result, f"gradient vs the float64 reference ({dtype})", value, f"<= {tolerance:g}",
                        met=value is not None and value <= tolerance, n=n, variant=variant,
                        **({"reason": row["reason"]} if "reason" in row else {}))
                stream()
