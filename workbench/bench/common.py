"""Shared pieces of the benchmark suites: the standard workload, data, step timing with a
forward/backward/optimiser split, alternating rounds, peak memory, memory bandwidth, machine facts,
and the result document every suite returns."""

from __future__ import annotations

import datetime as _dt
import gc
import math
import os
import platform
import re
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

RESULT_VERSION = 1
DEFAULT_QUBITS = (4, 8, 12, 16)
DEFAULT_BATCH = 32


# ---------------------------------------------------------------------------------------------
# The workload


def standard_spec_dict(n: int) -> dict:
    """Linear(n→n) → π·tanh → n-qubit layer (RY(x) encoding, 2 × [RY, RZ on every qubit, CNOT ring], ⟨Z_i⟩)
    → Linear(n→2): the network every suite and every peer runs."""
    return {
        "name": f"standard-{n}q",
        "description": f"Benchmark workload: Linear({n}->{n}), scaled tanh, {n}-qubit angle-encoded hardware-efficient "
                       "layer (2 x RY/RZ + CNOT ring, <Z> on every qubit), Linear(->2).",
        "task": "classification",
        "input_shape": [n],
        "blocks": [
            {"type": "linear", "id": "fc_in", "out_features": n},
            {"type": "activation", "id": "to_angles", "fn": "scaled_tanh", "scale": math.pi},
            {"type": "quantum", "id": "q", "qubits": n, "encoding": "angle", "rotation": "ry",
             "ansatz": "hardware_efficient", "depth": 2, "rotations": ["ry", "rz"], "entanglement": "ring"},
            {"type": "linear", "id": "head", "out_features": 2},
        ],
    }


def standard_spec(n: int):
    from .. import load_spec

    return load_spec(standard_spec_dict(n))


def resolve_spec(template: str | None = None, spec: str | Path | dict | None = None):
    """The network a suite runs: a template, a spec file/dict, or None (the standard workload, sized by --qubits)."""
    from .. import load_spec, templates

    if template and spec:
        raise ValueError("give --template or --spec, not both")
    if template:
        return templates.get(template)
    if spec is not None:
        return load_spec(spec)
    return None


def quantum_qubits(spec) -> int:
    blocks = spec.quantum_blocks()
    return max((b.qubits for b in blocks), default=0)


def make_batch(spec, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(batch, *spec.input_shape, generator=generator)
    width = spec.output_shape()[0]
    if spec.task == "classification":
        y = torch.randint(0, max(2, width), (batch,), generator=generator)
    elif spec.task == "regression":
        y = torch.randn(batch, generator=generator) if width == 1 else torch.randn(batch, width, generator=generator)
    else:
        y = torch.ones(batch, width)
    return X, y


def loss_for(spec):
    """The training loss of the spec's task (the trainer's own, so timings measure what training runs)."""
    from ..training.trainer import loss_function

    return loss_function(spec.task, spec.output_shape()[0])


# ---------------------------------------------------------------------------------------------
# Timing


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class Stepper:
    """One model's training step on a fixed batch, timed as forward (incl. loss), backward and optimiser step."""

    def __init__(self, model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn, *, lr: float = 1e-3,
                 device: str | torch.device = "cpu"):
        self.model = model
        self.device = torch.device(device)
        self.X, self.y = X.to(self.device), y.to(self.device)
        self.loss_fn = loss_fn
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.samples: dict[str, list[float]] = {"forward": [], "backward": [], "optimizer": [], "step": []}

    def step(self, record: bool = True) -> float:
        _sync(self.device)
        t0 = time.perf_counter()
        loss = self.loss_fn(self.model(self.X), self.y)
        _sync(self.device)
        t1 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        _sync(self.device)
        t2 = time.perf_counter()
        self.optimizer.step()
        _sync(self.device)
        t3 = time.perf_counter()
        if record:
            for key, value in (("forward", t1 - t0), ("backward", t2 - t1), ("optimizer", t3 - t2),
                               ("step", t3 - t0)):
                self.samples[key].append(value)
        return t3 - t0

    def summary(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {}
        for key, values in self.samples.items():
            out[f"{key}_ms"] = statistics.median(values) * 1e3 if values else None
        out["steps_timed"] = len(self.samples["step"])
        return out


def alternate(steppers: dict[str, Stepper], *, repeats: int, rounds: int, budget_s: float | None = None,
              per_step_cap_s: float | None = None, warmup: int = 1, min_round_s: float = 0.25,
              progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Warm every stepper up, then time them in rounds, rotating the order each round, so drift on a
    shared machine falls on all configurations alike. Each round gives each stepper `repeats` steps
    (more for fast ones, up to `min_round_s` of steps, so their medians shrug off scheduler spikes),
    fewer when its steps would overrun the budget."""
    warm: dict[str, float] = {}
    for name, stepper in steppers.items():
        if progress:
            progress(f"warming {name}")
        t = 0.0
        for _ in range(warmup):
            t = stepper.step(record=False)
        warm[name] = t
    names = list(steppers)
    total_budget = budget_s if budget_s is not None else math.inf
    spent = 0.0
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for name in order:
            stepper = steppers[name]
            estimate = min(stepper.samples["step"]) if stepper.samples["step"] else warm[name]
            if per_step_cap_s is not None and estimate > per_step_cap_s and stepper.samples["step"]:
                continue  # one timed step of a very slow configuration is enough
            count = max(repeats, min(50, int(min_round_s / max(estimate, 1e-6))))
            share = total_budget / max(1, len(names) * rounds)
            if estimate * count > share:
                count = max(1, int(share / max(estimate, 1e-9)))
            if stepper.samples["step"] and spent > total_budget:
                continue
            for _ in range(count):
                spent += stepper.step()
    results = {}
    for name, stepper in steppers.items():
        results[name] = stepper.summary()
        if warmup:
            results[name]["warm_ms"] = warm[name] * 1e3
    return results


def median_time(fn: Callable[[], Any], repeats: int = 5, device: str | torch.device | None = None) -> float:
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# Memory


_HWM = re.compile(r"VmHWM:\s+(\d+)\s+kB")
_RSS = re.compile(r"VmRSS:\s+(\d+)\s+kB")


def _status_kb(pattern: re.Pattern) -> int | None:
    try:
        match = pattern.search(Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def release_work_buffers(model) -> None:
    """Let a measured step allocate the engine's reusable work buffers, so peaks include them."""
    for layer in getattr(model, "quantum_layers", {}).values():
        program = getattr(layer, "program", None)
        if program is not None and hasattr(program, "release_buffers"):
            program.release_buffers()


def _malloc_trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class PeakMemory:
    """Peak memory of a block of code above what was resident when it started.

    CPU: freed heap is handed back first (glibc malloc_trim), then the kernel's resident high-water
    mark is reset (Linux /proc/self/clear_refs) and read after the block; elsewhere a sampling thread
    over psutil's RSS. CUDA: torch.cuda.max_memory_allocated."""

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.bytes: int | None = None
        self.method = ""

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated"
            return self
        self._sampler = None
        _malloc_trim()  # hand freed heap back to the kernel, so the step's own allocations show in the peak
        self._start = _status_kb(_RSS)
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM (reset)"
        except OSError:
            import psutil

            self.method = "psutil RSS sampling"
            process = psutil.Process()
            self._start = process.memory_info().rss
            self._peak = self._start
            self._stop = threading.Event()

            def sample() -> None:
                while not self._stop.is_set():
                    self._peak = max(self._peak, process.memory_info().rss)
                    time.sleep(0.001)

            self._sampler = threading.Thread(target=sample, daemon=True)
            self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.bytes = max(0, torch.cuda.max_memory_allocated(self.device) - self._start)
            return
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            self.bytes = max(0, self._peak - self._start)
            return
        peak = _status_kb(_HWM)
        self.bytes = max(0, peak - self._start) if peak is not None and self._start is not None else None


def memory_bandwidth(device: str | torch.device = "cpu", megabytes: int = 256, repeats: int = 5) -> dict:
    """Copy bandwidth of one large tensor (read + write counted), the yardstick for a statevector sweep."""
    device = torch.device(device)
    numel = megabytes * 2**20 // 4
    src = torch.ones(numel, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    seconds = median_time(lambda: dst.copy_(src), repeats=repeats, device=device)
    moved = 2 * numel * 4
    del src, dst
    return {"device": str(device), "bytes": moved, "seconds": seconds, "gb_per_s": moved / seconds / 1e9,
            "threads": torch.get_num_threads()}


def sweep_bytes(n_qubits: int, batch: int, itemsize: int = 8) -> int:
    """Bytes one pass over a batch of statevectors moves: every amplitude read once and written once."""
    return 2 * batch * (2**n_qubits) * itemsize


# ---------------------------------------------------------------------------------------------
# Machine facts and result documents


def machine_info(device: str | torch.device = "cpu") -> dict:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cpu": platform.processor() or _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import psutil

        info["memory_bytes"] = psutil.virtual_memory().total
        info["memory_available_bytes"] = psutil.virtual_memory().available
    except ImportError:
        pass
    try:
        from importlib.metadata import version

        info["cudaq"] = version("cudaq")
    except Exception:
        info["cudaq"] = None
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def new_result(suite: str, config: dict, device: str | torch.device = "cpu") -> dict:
    return {
        "suite": suite,
        "version": RESULT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(device),
        "config": config,
        "rows": [],
        "checks": [],
        "skipped": [],
        "notes": [],
    }


def finish(result: dict) -> dict:
    try:
        result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return result


def check(result: dict, name: str, value: float | None, target: str, *, met: bool | None, **extra) -> dict:
    row = {"name": name, "value": value, "target": target, "met": met, **extra}
    result["checks"].append(row)
    return row


def parse_ints(text: str | Iterable[int] | None, default: Iterable[int]) -> list[int]:
    if text is None or text == "":
        return list(default)
    if isinstance(text, str):
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    else:
        values = [int(v) for v in text]
    if not values or any(v < 1 for v in values):
        raise ValueError(f"expected positive integers separated by commas, got {text!r}")
    return values


def cudaq_available() -> str:
    """'' when CUDA-Q's CPU simulator can run here, otherwise the reason."""
    try:
        from ..engine.executors import cudaq_runtime  # noqa: F401
    except Exception as err:  # pragma: no cover - depends on the installation
        return f"CUDA-Q does not import: {err}"
    return ""


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def thread_environment(threads: int | None) -> dict[str, str]:
    """The variables that hold OpenMP and BLAS (CUDA-Q's simulators included) to `threads`; they must be in a
    process's environment before CUDA-Q loads. Empty for None or 0 (library defaults)."""
    if not threads or threads < 1:
        return {}
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
