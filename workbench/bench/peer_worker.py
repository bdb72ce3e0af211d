"""A long-lived benchmark worker for one framework: `PYTHON peer_worker.py FRAMEWORK`.

It runs under the framework's own interpreter (its virtual environment, see `peer_env`), so it imports
nothing from the workbench package: its sibling modules `peer_models` and `common` are loaded by file path.
It reads one JSON request per line on stdin and answers with one line starting with MARKER on stdout
(anything else a framework prints is ignored by the reader). Requests:

  {"cmd": "hello"}                                  -> versions, or the import error
  {"cmd": "time", "variant", "n", "batch", "repeats", "warmup", "max_seconds", "min_round_s", "seed"}
        -> per-step forward/backward/optimizer/step wall ms and step CPU ms (process time), the load
           average; the first request for a (variant, n) also runs the warm-up steps and reports their time,
           or {"over_budget": true, "warmup_s"} when a warm-up step exceeds max_seconds
  {"cmd": "grad", "variant", "n", "state", "x", "y", "dtype"}
        -> outputs and gradients of the mean cross-entropy loss
  {"cmd": "quit"}
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

MARKER = "@@WB-PEER@@"
HERE = Path(__file__).resolve().parent

warnings.filterwarnings("ignore")


def _load(name: str, path: Path):
    """Import a sibling file as a top-level module (the worker's interpreter may not have the workbench)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _versions(framework: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    models = _load("wb_peer_models", HERE / "peer_models.py")
    out = {"python": sys.version.split()[0]}
    for name in ["torch", *models.VERSION_PACKAGES[framework]]:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


class Worker:
    def __init__(self, framework: str):
        self.framework = framework
        self.models = _load("wb_peer_models", HERE / "peer_models.py")
        self.common = _load("wb_bench_common", HERE / "common.py")
        self.steppers: dict = {}
        self.built: dict = {}

    def model(self, variant: str, n: int, dtype):
        key = (variant, n, dtype)
        if key not in self.built:
            self.built[key] = self.models.build(variant, n, dtype)
        return self.built[key]

    def time(self, req: dict) -> dict:
        import torch

        variant, n, batch = req["variant"], int(req["n"]), int(req["batch"])
        repeats, cap = int(req.get("repeats", 3)), float(req.get("max_seconds", 60.0))
        key = (variant, n, batch)
        out: dict = {"variant": variant, "n": n, "batch": batch}
        if key not in self.steppers:
            t0 = time.perf_counter()
            model = self.model(variant, n, torch.float32)
            out["build_s"] = time.perf_counter() - t0
            generator = torch.Generator().manual_seed(int(req.get("seed", 0)))
            X = torch.randn(batch, n, generator=generator)
            y = torch.randint(0, 2, (batch,), generator=generator)
            stepper = self.common.Stepper(model, X, y, torch.nn.CrossEntropyLoss())
            warm = []
            for _ in range(int(req.get("warmup", 2))):
                warm.append(stepper.step(record=False))
                if warm[-1] > cap:
                    out.update(over_budget=True, warmup_s=warm)
                    return out
            out["warmup_s"] = warm
            self.steppers[key] = stepper
        stepper = self.steppers[key]
        for name in stepper.samples:
            stepper.samples[name].clear()
        cpu = []
        min_round_s = float(req.get("min_round_s", 0.0))
        start = time.perf_counter()
        # At least `repeats` steps; fast configurations go on (up to 50) so their medians shrug off spikes.
        while len(cpu) < repeats or (time.perf_counter() - start < min_round_s and len(cpu) < 50):
            c0 = time.process_time()
            stepper.step()
            cpu.append(time.process_time() - c0)
        out.update({f"{name}_ms": [v * 1e3 for v in stepper.samples[name]]
                    for name in ("forward", "backward", "optimizer", "step")})
        out["cpu_ms"] = [v * 1e3 for v in cpu]
        out["load_average"] = list(os.getloadavg())
        return out

    def grad(self, req: dict) -> dict:
        import torch

        variant, n = req["variant"], int(req["n"])
        dtype = torch.float64 if req.get("dtype", "float64") == "float64" else torch.float32
        model = self.model(variant, n, dtype)
        model.load_common({k: torch.tensor(v, dtype=torch.float64) for k, v in req["state"].items()})
        X = torch.tensor(req["x"], dtype=dtype)
        y = torch.tensor(req["y"], dtype=torch.long)
        model.zero_grad(set_to_none=True)
        out = model(X)
        loss = torch.nn.functional.cross_entropy(out, y)
        loss.backward()
        return {"variant": variant, "n": n, "dtype": str(dtype), "output_dtype": str(out.dtype), "loss": float(loss),
                "output": out.detach().double().tolist(), "grads": model.common_grads()}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    framework = argv[0]
    threads = os.environ.get("WB_BENCH_THREADS")
    import torch

    if threads and int(threads) > 0:
        torch.set_num_threads(int(threads))
    out = sys.stdout
    t0 = time.perf_counter()
    try:  # import at once, so that workers started together import their frameworks side by side
        worker = Worker(framework)
        worker.models.import_framework(framework)
        import_error = None
    except Exception as err:  # reported on hello
        import_error = f"{type(err).__name__}: {err}"
    import_s = time.perf_counter() - t0
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            cmd = req.get("cmd")
            if cmd == "quit":
                break
            if cmd == "hello":
                resp = {"error": import_error} if import_error else {
                    "ok": True, "framework": framework, "versions": _versions(framework), "import_s": import_s,
                    "threads": torch.get_num_threads()}
            elif cmd == "time":
                resp = worker.time(req)
            elif cmd == "grad":
                resp = worker.grad(req)
            else:
                resp = {"error": f"unknown command {cmd!r}"}
        except Exception as err:  # reported to the suite, which records it against the peer
            resp = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(limit=8)}
        out.write(MARKER + json.dumps(resp) + "\n")
        out.flush()


if __name__ == "__main__":
    # Running as a script puts this folder first on sys.path; its module names (common, engine, report...)
    # must not shadow anything a framework imports.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    main()
