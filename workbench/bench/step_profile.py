"""Where a full training step's time goes: `python -m workbench.bench.step_profile [--qubits 4,8]`.

It runs the trainer's own step (`Trainer._step`: forward, loss, backward, optimiser, then the metric event:
accuracy, gradient norms, per-layer gradient variance, emission to the metric stream) on the standard
workload under cProfile, and splits the step's time into those phases by the profiler's cumulative times.
The phases are what a fixed per-step overhead hides in at small n.

Example:
    >>> from workbench.bench.step_profile import profile_steps
    >>> profile_steps(4, steps=50)["phases_ms"]        # {"forward": ..., "backward": ..., ...}
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path

import torch

from . import common as C

# phase: (file suffix, function name) of the profiler entries whose cumulative time it is
PHASES = {
    "forward": [("workbench/compiler.py", "forward")],
    "loss": [("torch/nn/modules/loss.py", "forward")],
    "backward": [("torch/_tensor.py", "backward")],
    "optimizer": [("torch/optim/adam.py", "step"), ("torch/optim/optimizer.py", "zero_grad")],
    "metric": [("training/trainer.py", "task_metric")],
    "grad_norms": [("training/trainer.py", "_grad_norms")],
    "emit": [("training/trainer.py", "_emit")],
    "step": [("training/trainer.py", "_step")],
}


def _trainer(n: int, batch: int):
    from ..data import Dataset
    from ..training.trainer import TrainConfig, Trainer

    generator = torch.Generator().manual_seed(n)
    X = torch.randn(4 * batch, n, generator=generator)
    y = (X.sum(1) > 0).long()
    dataset = Dataset(name="profile", task="classification", X_train=X, y_train=y, X_test=X[:batch],
                      y_test=y[:batch], input_shape=(n,), n_classes=2, class_names=None, feature_names=None,
                      description={"name": "profile"})
    config = TrainConfig(epochs=1, batch_size=batch, lr=1e-3, val_fraction=0.0, gradient="adjoint")
    return Trainer(C.standard_spec(n), dataset, config), X[:batch], y[:batch]


def profile_steps(n: int, batch: int = C.DEFAULT_BATCH, steps: int = 200, warmup: int = 20) -> dict:
    """Median wall time of `steps` trainer steps, then the same steps under cProfile split into phases.

    Returns: {"n", "batch", "step_ms" and "step_cpu_ms" (medians, unprofiled), "phases_ms" (CPU ms per step,
    profiled),
    "top" (the 12 functions with the most own time, ms per step)}."""
    trainer, xb, yb = _trainer(n, batch)
    for _ in range(warmup):
        trainer._step(xb, yb)
    times, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        trainer._step(xb, yb)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    times.sort()
    cpu.sort()
    # Process CPU time as the profiler's clock: on a shared machine, wall time mostly measures the neighbours.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(steps):
        trainer._step(xb, yb)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    phases = {}
    for phase, keys in PHASES.items():
        total = sum(cum for (path, _, name), (_, _, _, cum, _) in stats.items()
                    for suffix, fn in keys if path.endswith(suffix) and name == fn)
        phases[phase] = total / steps * 1e3
    phases["other"] = phases["step"] - sum(v for k, v in phases.items() if k != "step")
    top = sorted(stats.items(), key=lambda item: -item[1][2])[:12]
    return {"n": n, "batch": batch, "steps": steps, "step_ms": times[len(times) // 2] * 1e3,
            "step_cpu_ms": cpu[len(cpu) // 2] * 1e3, "clock": "process CPU time",
            "phases_ms": phases,
            "top": [{"function": f"{Path(path).name}:{line}({name})", "own_ms": own / steps * 1e3,
                     "calls_per_step": calls / steps}
                    for (path, line, name), (calls, _, own, _, _) in top]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", default="4,8")
    parser.add_argument("--batch", type=int, default=C.DEFAULT_BATCH)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="Also write the result as JSON here.")
    args = parser.parse_args(argv)
    C.set_threads(args.threads)
    result = {"machine": C.machine_info(), "rows": []}
    for n in C.parse_ints(args.qubits, ()):
        row = profile_steps(n, args.batch, args.steps)
        result["rows"].append(row)
        phases = "  ".join(f"{k} {v:.2f}" for k, v in row["phases_ms"].items())
        print(f"n={n} batch={row['batch']}: step {row['step_cpu_ms']:.2f} ms CPU, {row['step_ms']:.2f} ms wall "
              f"(medians, unprofiled); profiled CPU ms/step: "
              f"{phases}")
        for entry in row["top"]:
            print(f"    {entry['own_ms']:7.3f} ms  x{entry['calls_per_step']:.0f}  {entry['function']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
