"""A long-lived benchmark worker for one framework: `python -m workbench.bench.peer_worker FRAMEWORK`.

It reads one JSON request per line on stdin and answers with one line starting with MARKER on stdout
(anything else a framework prints is ignored by the reader). Requests:

  {"cmd": "hello"}                                    -> versions, or the import error
  {"cmd": "time", "variant", "n", "batch", "repeats", "max_seconds", "seed"}
                                                      -> per-step forward/backward/optimizer/step ms
  {"cmd": "grad", "variant", "n", "state", "x", "y"}  -> gradients of the cross-entropy loss (float64)
  {"cmd": "quit"}
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings

MARKER = "@@WB-PEER@@"

warnings.filterwarnings("ignore")


def _versions(framework: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    names = {"workbench": ["torch", "cudaq"], "pennylane": ["pennylane", "pennylane_lightning"],
             "qiskit": ["qiskit", "qiskit-machine-learning"], "torchquantum": ["torchquantum"],
             "cudaq": ["cudaq"]}[framework]
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _import(framework: str) -> None:
    if framework == "workbench":
        import workbench  # noqa: F401
    elif framework == "pennylane":
        import pennylane  # noqa: F401
    elif framework == "qiskit":
        import qiskit_machine_learning  # noqa: F401
    elif framework == "torchquantum":
        import torchquantum  # noqa: F401
    elif framework == "cudaq":
        from . import peer_cudaq_kernel  # noqa: F401
    else:
        raise ValueError(f"unknown framework {framework!r}")


class Worker:
    def __init__(self, framework: str):
        self.framework = framework
        self.models: dict = {}
        self.forecasts: dict = {}

    def model(self, variant: str, n: int, dtype):
        from .peer_models import build

        key = (variant, n, dtype)
        if key not in self.models:
            self.models[key] = build(variant, n, dtype)
        return self.models[key]

    def time(self, req: dict) -> dict:
        import torch

        from .common import Stepper

        variant, n, batch = req["variant"], int(req["n"]), int(req["batch"])
        repeats, cap = int(req.get("repeats", 3)), float(req.get("max_seconds", 60.0))
        model = self.model(variant, n, torch.float32)
        generator = torch.Generator().manual_seed(int(req.get("seed", 0)))
        X = torch.randn(batch, n, generator=generator)
        y = torch.randint(0, 2, (batch,), generator=generator)
        loss_fn = torch.nn.CrossEntropyLoss()
        key = (variant, n, batch)
        if key not in self.forecasts:
            # One sample's step (after a warm-up) forecasts the batch for frameworks that loop over samples.
            probe = Stepper(model, X[:1], y[:1], loss_fn)
            probe.step(record=False)
            one = probe.step(record=False)
            full = Stepper(model, X, y, loss_fn)
            if one * batch <= cap:
                estimate = full.step(record=False)  # warm at full size and measure
            else:
                estimate = one * batch
            self.forecasts[key] = estimate
        estimate = self.forecasts[key]
        measured = batch
        if estimate > cap:
            measured = max(1, int(batch * cap / (2 * estimate)))
        stepper = Stepper(model, X[:measured], y[:measured], loss_fn)
        per_step = estimate * measured / batch
        count = 1 if per_step > cap / 4 else repeats
        start = time.perf_counter()
        for _ in range(count):
            stepper.step()
            if time.perf_counter() - start > cap:
                break
        scale = batch / measured
        out = {key_: [v * 1e3 * (scale if key_ in ("forward", "backward") else 1.0) for v in values]
               for key_, values in stepper.samples.items()}
        out["step"] = [f + b + o for f, b, o in zip(out["forward"], out["backward"], out["optimizer"])]
        return {"variant": variant, "n": n, "batch": batch, "measured_batch": measured, "estimate_s": estimate,
                "forward_ms": out["forward"], "backward_ms": out["backward"], "optimizer_ms": out["optimizer"],
                "step_ms": out["step"]}

    def grad(self, req: dict) -> dict:
        import torch

        variant, n = req["variant"], int(req["n"])
        model = self.model(variant, n, torch.float64)
        state = {k: torch.tensor(v, dtype=torch.float64) for k, v in req["state"].items()}
        model.load_common(state)
        X = torch.tensor(req["x"], dtype=torch.float64)
        y = torch.tensor(req["y"], dtype=torch.long)
        model.zero_grad(set_to_none=True)
        out = model(X)
        loss = torch.nn.functional.cross_entropy(out, y)
        loss.backward()
        return {"variant": variant, "n": n, "loss": float(loss), "output": out.detach().double().tolist(),
                "grads": model.common_grads()}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    framework = argv[0]
    threads = os.environ.get("WB_BENCH_THREADS")
    import torch

    if threads and int(threads) > 0:
        torch.set_num_threads(int(threads))
    worker = Worker(framework)
    out = sys.stdout
    # Import at once, so that workers started together import their frameworks in parallel.
    t0 = time.perf_counter()
    try:
        _import(framework)
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
                if import_error:
                    resp = {"error": import_error}
                else:
                    resp = {"ok": True, "framework": framework, "versions": _versions(framework),
                            "import_s": import_s, "threads": torch.get_num_threads()}
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
    main()
