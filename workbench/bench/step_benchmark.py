"""The step benchmark behind the GUI's Benchmark tab: time one training step of a network for every (target,
gradient method) that applies, each model built with workbench.compile. `BenchmarkRun` fills its rows in as
each combination finishes; the GUI runs it in a job (workbench.jobs.benchmark) and polls the rows.

Example:
    run = BenchmarkRun(spec, targets=[{"name": "torch", "kind": "simulator", "reason": ""}], batch=4)
    rows = run.run()    # [{"target", "gradient", "skip", "seconds", "executions", "status"}, ...]
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from .. import compile as wb_compile
from ..engine.gradients import method_names
from ..engine.plan import ExecutionConfig, resolve
from ..spec import ArchitectureSpec, load_spec


def plan(spec: ArchitectureSpec, *, targets: list[dict], noise: dict | None, shots: int | None,
         include_hardware: bool = False) -> list[dict]:
    """Every (target, gradient) pair with '' or the reason it does not apply here."""
    noisy = any(v > 0 for k, v in (noise or {}).items() if k != "readout")
    has_quantum = bool(spec.quantum_blocks())
    rows = []
    for choice in targets:
        name, kind = choice["name"], choice["kind"]
        if kind == "hardware" and not include_hardware:
            continue
        if kind in ("other",):
            continue
        if not has_quantum:
            if name == "torch":
                rows.append({"target": name, "gradient": "backprop", "skip": ""})
            continue
        for method in method_names()[1:]:
            row = {"target": name, "gradient": method, "skip": ""}
            if choice["reason"]:
                row["skip"] = choice["reason"]
            elif name == "density-matrix-cpu" and not noisy:
                row["skip"] = "noise-free network: density-matrix-cpu only adds cost (set a noise model to include it)"
            elif name == "torch-density" and not noisy:
                row["skip"] = "noise-free network: the statevector engine computes the same values"
            elif noisy and name not in ("torch", "torch-density", "density-matrix-cpu"):
                row["skip"] = f"{name} simulates pure states and cannot apply gate noise"
            elif noisy and name == "torch":
                row["skip"] = "with gate noise the torch engine runs as torch-density"
            else:
                config = ExecutionConfig(target=name, gradient=method, shots=shots, noise=noise)
                problems = [p.message for block in spec.quantum_blocks() for p in resolve(config, block).problems]
                row["skip"] = problems[0] if problems else ""
            rows.append(row)
    return rows


def benchmark_batch(spec: ArchitectureSpec, dataset, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `batch` training samples of `dataset` when they fit the network, else a seeded random batch."""
    if dataset is not None and tuple(dataset.input_shape) == tuple(spec.input_shape):
        return dataset.X_train[:batch], dataset.y_train[:batch]
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(batch, *spec.input_shape, generator=generator)
    width = spec.output_shape()[0]
    if spec.task == "classification":
        y = torch.randint(0, max(2, width) if width > 1 else 2, (batch,), generator=generator)
    elif spec.task == "regression":
        y = torch.randn(batch, generator=generator) if width == 1 else torch.randn(batch, width, generator=generator)
    else:
        y = torch.ones(batch, width)
    return X, y


def time_step(spec: ArchitectureSpec, target: str, gradient: str, X: torch.Tensor, y: torch.Tensor, *,
              noise: dict | None = None, shots: int | None = None, precision: str = "single", repeats: int = 2,
              budget_s: float = 20.0) -> dict[str, Any]:
    """Seconds for one optimiser step (forward, loss, backward, update), timed as `workbench bench` times it
    (common.alternate): a warm-up step, then at least `repeats` steps (fast ones: 0.25 s of steps), median.

    Two or three steps of a millisecond-scale configuration measured scheduler noise, not the step."""
    from .common import Stepper, alternate, loss_for

    model = wb_compile(spec, target=target, gradient=gradient, noise=noise, shots=shots, precision=precision, seed=0)
    stepper = Stepper(model, X, y, loss_for(spec))
    executions_before = model.circuit_executions()
    summary = alternate({"step": stepper}, repeats=repeats, rounds=1, budget_s=budget_s)["step"]
    steps = summary["steps_timed"] + 1  # every step, the warm-up included, runs the same circuits
    return {"seconds": summary["step_ms"] / 1e3, "executions": (model.circuit_executions() - executions_before) / steps,
            "methods": {k: v["method"] for k, v in model.gradient_info().items()}}


class BenchmarkRun:
    """One benchmark in a background thread; rows fill in as each combination finishes.

    threads: torch's thread count while it runs (as `workbench bench --threads`, default 1, so the figures
        compare with the suites'; None keeps the process's setting). Two threads on a busy two-core machine
        made millisecond steps 10-20x slower.
    """

    def __init__(self, spec: ArchitectureSpec | dict, *, targets: list[dict], dataset=None, batch: int = 16,
                 noise: dict | None = None, shots: int | None = None, precision: str = "single",
                 include_hardware: bool = False, repeats: int = 2, recommend: bool = True, threads: int | None = 1):
        self.spec = load_spec(spec)
        self.threads = threads
        self.rows = plan(self.spec, targets=targets, noise=noise, shots=shots, include_hardware=include_hardware)
        self.X, self.y = benchmark_batch(self.spec, dataset, batch)
        self.batch = len(self.X)
        self.noise, self.shots, self.precision, self.repeats = noise, shots, precision, repeats
        self.want_recommendation = recommend
        self.recommendation: dict | None = None  # workbench.bench.recommend's answer once it has run
        self.done = 0
        self.finished = False
        self.version = 0
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def total(self) -> int:
        return sum(1 for r in self.rows if not r["skip"])

    def start(self) -> "BenchmarkRun":
        self._thread = threading.Thread(target=self.run, name="workbench-benchmark", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> list[dict]:
        from .common import set_threads

        set_threads(self.threads)
        for row in self.rows:
            if self._cancel.is_set():
                break
            if row["skip"]:
                continue
            with self._lock:
                row["status"] = "running"
                self.version += 1
            try:
                result = time_step(self.spec, row["target"], row["gradient"], self.X, self.y, noise=self.noise,
                                   shots=self.shots, precision=self.precision, repeats=self.repeats)
                update = {"seconds": result["seconds"], "executions": result["executions"], "status": "done"}
            except Exception as err:  # a combination that fails here is reported, not fatal
                update = {"seconds": None, "status": "failed", "skip": f"{err.__class__.__name__}: {err}"}
            with self._lock:
                row.update(update)
                self.done += 1
                self.version += 1
        if self.want_recommendation and not self._cancel.is_set():
            self._recommend()
        with self._lock:
            self.finished = True
            self.version += 1
        return self.rows

    def _recommend(self) -> None:
        """The benchmark suite's verdict (which target and gradient to use, and why) over the targets timed here;
        it also checks each gradient against the exact one, which the timing rows above do not."""
        from .gradient import recommend

        timed = sorted({r["target"] for r in self.rows if r.get("status") == "done"})
        with self._lock:
            self.recommendation = {"sentence": "", "status": "running"}
            self.version += 1
        try:
            answer = recommend(self.spec, batch=self.batch, repeats=self.repeats, targets=timed or None,
                               max_seconds=10.0, threads=self.threads)
            answer = {**answer, "status": "done"}
        except Exception as err:  # the verdict is extra: its failure is shown, the timings stay
            answer = {"sentence": f"no recommendation: {err.__class__.__name__}: {err}", "status": "failed"}
        with self._lock:
            self.recommendation = answer
            self.version += 1

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self.rows]
