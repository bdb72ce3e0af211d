"""`gradient`: for one network (default: the standard workload), every gradient method on every target that
applies, at several qubit counts and batch sizes: time per step, peak memory and the error of the gradient
against the exact one (double-precision torch backprop); then a recommendation. `recommend(spec)` is the
same measurement for the GUI."""

from __future__ import annotations

from typing import Callable

import torch

from ..engine.plan import human_bytes
from . import common as C
from .engine import build, estimate_step_seconds, n_angles

# (target, gradient, precision)
CONFIGS = (
    ("torch", "backprop", "single"),
    ("torch", "adjoint", "single"),
    ("torch", "parameter_shift", "single"),
    ("torch", "finite_diff", "single"),
    ("torch", "adjoint", "double"),
    ("qpp-cpu", "adjoint", "single"),
    ("qpp-cpu", "parameter_shift", "single"),
    ("qpp-cpu", "finite_diff", "single"),
)
TOLERANCE = 1e-4  # relative gradient error a recommendation accepts


def _flat_grads(model) -> torch.Tensor:
    return torch.cat([p.grad.detach().double().reshape(-1) if p.grad is not None else torch.zeros(p.numel(),
                                                                                                    dtype=torch.float64)
                      for p in model.parameters()])


def exact_gradient(spec, X, y, reference: dict, device: str = "cpu") -> torch.Tensor:
    model = build(spec, "torch", "backprop", device=device, precision="double", reference=reference).double()
    loss = C.loss_for(spec)(model(X.double().to(device)), y.to(device))
    loss.backward()
    return _flat_grads(model)


def measure(spec, configs, *, batch: int, repeats: int, rounds: int, max_seconds: float, device: str = "cpu",
            progress: Callable[[str], None] | None = None) -> list[dict]:
    X, y = C.make_batch(spec, batch, seed=11)
    loss_fn = C.loss_for(spec)
    reference = build(spec, "torch", "backprop", device=device).state_dict()
    exact = exact_gradient(spec, X, y, reference, device)
    scale = exact.abs().max().item() or 1.0
    rows, steppers = [], {}
    for target, gradient, precision in configs:
        row = {"executor": target, "gradient": gradient, "precision": precision, "batch": batch, "status": "ok",
               "reason": ""}
        rows.append(row)
        if target not in ("torch", "torch-density"):
            reason = C.cudaq_available()
            if reason:
                row.update(status="skipped", reason=reason)
                continue
        try:
            model = build(spec, target, gradient, device=device, precision=precision, reference=reference)
        except Exception as err:
            row.update(status="skipped", reason=f"{type(err).__name__}: {err}")
            continue
        estimate = estimate_step_seconds(model, spec, target, gradient, batch, device)
        row["estimated_step_s"] = round(estimate, 4)
        row["angles"] = n_angles(model)
        if estimate > max_seconds:
            row.update(status="skipped", reason=f"estimated {estimate:.0f} s per step > {max_seconds:g} s cap")
            continue
        if progress:
            progress(f"gradient: {target}/{gradient}/{precision}, batch {batch}")
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(X.to(device)), y.to(device))
        loss.backward()
        grads = _flat_grads(model)
        row["grad_error_abs"] = (grads - exact).abs().max().item()
        row["grad_error_rel"] = row["grad_error_abs"] / scale
        stepper = C.Stepper(model, X, y, loss_fn, device=device)
        stepper.step(record=False)
        C.release_work_buffers(model)
        with C.PeakMemory(device) as peak:
            stepper.step(record=False)
        row["peak_bytes"] = peak.bytes
        row["memory_method"] = peak.method
        key = f"{target}/{gradient}/{precision}"
        steppers[key] = stepper
        row["_key"] = key
    if steppers:
        timings = C.alternate(steppers, repeats=repeats, rounds=rounds, budget_s=max_seconds * len(steppers),
                              per_step_cap_s=max_seconds / 4, warmup=0)
        for row in rows:
            key = row.pop("_key", None)
            if key:
                row.update(timings[key])
    for row in rows:
        row.pop("_key", None)
    return rows


def choose(rows: list[dict], tolerance: float = TOLERANCE) -> dict | None:
    """The recommendation over measured rows: the fastest whose gradient error is within tolerance."""
    ok = [r for r in rows if r["status"] == "ok" and r.get("step_ms") is not None]
    good = [r for r in ok if r.get("grad_error_rel") is not None and r["grad_error_rel"] <= tolerance]
    pool = good or ok
    if not pool:
        return None
    pool = sorted(pool, key=lambda r: r["step_ms"])
    best = pool[0]
    runner_up = pool[1] if len(pool) > 1 else None
    what = f"target '{best['executor']}' with {best['gradient']} gradients ({best['precision']} precision)"
    because = [f"it is the fastest {'accurate ' if good else ''}method measured: {best['step_ms']:.1f} ms per "
               f"training step at batch {best['batch']}"]
    if runner_up is not None:
        ratio = runner_up["step_ms"] / best["step_ms"]
        other = f"{runner_up['executor']}/{runner_up['gradient']}/{runner_up['precision']}, {runner_up['step_ms']:.1f} ms"
        because.append(f"{ratio:.1f}x faster than the next ({other})" if ratio >= 1.1
                       else f"level with the next ({other}) within this machine's noise")
    if best.get("grad_error_rel") is not None:
        because.append(f"gradient error {best['grad_error_rel']:.1e} relative to the exact gradient")
    if best.get("peak_bytes") is not None:
        because.append(f"peak memory {human_bytes(best['peak_bytes'])} per step")
    if not good:
        because.append(f"no method reached the {tolerance:g} error tolerance")
    sentence = f"for this network on this machine use {what} because " + ", ".join(because) + "."
    return {"target": best["executor"], "gradient": best["gradient"], "precision": best["precision"],
            "batch": best["batch"], "step_ms": best["step_ms"], "grad_error_rel": best.get("grad_error_rel"),
            "peak_bytes": best.get("peak_bytes"), "sentence": sentence}


def run_gradient(qubits=(4, 8), batches=(8, 32), repeats: int = 3, rounds: int = 2, *, template: str | None = None,
                 spec=None, max_seconds: float = 30.0, threads: int | None = 1, device: str = "cpu",
                 configs=CONFIGS, tolerance: float = TOLERANCE,
                 progress: Callable[[str], None] | None = None) -> dict:
    C.set_threads(threads)
    given = C.resolve_spec(template, spec)
    qubits = [C.quantum_qubits(given)] if given is not None else list(qubits)
    result = C.new_result("gradient", {"qubits": qubits, "batches": list(batches), "repeats": repeats,
                                       "rounds": rounds, "template": template, "spec": str(spec) if spec else None,
                                       "max_seconds": max_seconds, "threads": threads, "device": device,
                                       "tolerance": tolerance, "configs": [list(c) for c in configs],
                                       "reference": "torch backprop, double precision"}, device)
    result["recommendations"] = []
    for n in qubits:
        spec_n = given if given is not None else C.standard_spec(n)
        for batch in batches:
            if progress:
                progress(f"gradient: {n} qubits, batch {batch}")
            rows = measure(spec_n, configs, batch=batch, repeats=repeats, rounds=rounds, max_seconds=max_seconds,
                           device=device, progress=progress)
            for row in rows:
                row["n"] = n
                result["rows"].append(row)
                if row["status"] != "ok":
                    result["skipped"].append({"n": n, "batch": batch, "executor": row["executor"],
                                              "gradient": row["gradient"], "precision": row["precision"],
                                              "reason": row["reason"]})
            choice = choose(rows, tolerance)
            if choice:
                choice["n"] = n
                result["recommendations"].append(choice)
    if result["recommendations"]:
        # The headline: the largest network at the largest batch measured.
        headline = max(result["recommendations"], key=lambda c: (c["n"], c["batch"]))
        result["recommendation"] = headline
        result["notes"].append(headline["sentence"])
    return C.finish(result)


def recommend(spec, *, batch: int = 32, repeats: int = 2, rounds: int = 1, max_seconds: float = 20.0,
              targets: list[str] | None = None, tolerance: float = TOLERANCE, device: str = "cpu",
              threads: int | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Measure every (target, gradient) that applies to `spec` at `batch` and say which to use and why.

    Returns {"target", "gradient", "precision", "sentence", "rows", ...}; "target" is None when nothing ran.
    """
    from .. import load_spec

    spec = load_spec(spec)
    configs = [c for c in CONFIGS if targets is None or c[0] in targets]
    result = run_gradient(batches=[batch], repeats=repeats, rounds=rounds, spec=spec, max_seconds=max_seconds,
                          threads=threads, device=device, configs=configs, tolerance=tolerance, progress=progress)
    choice = result.get("recommendation") or {"target": None, "gradient": None, "precision": None,
                                              "sentence": "no method finished within the time cap on this machine"}
    return {**choice, "rows": result["rows"], "machine": result["machine"], "tolerance": tolerance}
