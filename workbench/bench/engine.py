"""`engine`: time per training step (forward / backward / optimiser) of the workload for every executor ×
gradient method, with the adjoint backward/forward ratio and CUDA-Q adjoint vs CUDA-Q parameter shift."""

from __future__ import annotations

import time
from typing import Callable

import torch

from . import common as C

CONFIGS = (("torch", "backprop"), ("torch", "adjoint"), ("qpp-cpu", "adjoint"), ("qpp-cpu", "parameter_shift"))
ADJOINT_RATIO_TARGET = 3.0
SHIFT_RATIO_TARGET = 20.0


def _is_cudaq(target: str) -> bool:
    from ..engine.targets import get_target

    return get_target(target).is_cudaq


def build(spec, target: str, gradient: str, *, device: str = "cpu", precision: str = "single", reference=None):
    from .. import compile as wb_compile

    model = wb_compile(spec, target=target, gradient=gradient, device=device, precision=precision, seed=0)
    if reference is not None:
        model.load_state_dict(reference)
    return model


def n_angles(model) -> int:
    return sum(len(layer.circuit.rotation_gates) for layer in model.quantum_layers.values())


def n_weights(model) -> int:
    return sum(layer.circuit.n_weights for layer in model.quantum_layers.values())


def estimate_step_seconds(model, spec, target: str, gradient: str, batch: int, device: str = "cpu") -> float:
    """A cheap forecast of one step: CUDA-Q evaluates samples one by one, so one sample's forward times the
    batch (times 1 + 2·angles for parameter shift, the shifted circuits of the backward)."""
    X, _ = C.make_batch(spec, 1, seed=1)
    X = X.to(device)
    with torch.no_grad():
        model(X)
        t0 = time.perf_counter()
        model(X)
        one = time.perf_counter() - t0
    if not _is_cudaq(target):
        return one * batch * 3
    factor = {"adjoint": 1.1, "parameter_shift": 1 + 2 * n_angles(model),
              "finite_diff": 1 + 2 * n_angles(model)}.get(gradient, 2.0)
    return one * batch * factor


def time_configs(spec, configs, *, batch: int, repeats: int, rounds: int, max_seconds: float, device: str = "cpu",
                 precision: str = "single", progress: Callable[[str], None] | None = None,
                 allow_extrapolation: bool = False) -> list[dict]:
    """Rows of step timings for (target, gradient) pairs on one spec, alternating rounds between them."""
    X, y = C.make_batch(spec, batch, seed=7)
    loss_fn = C.loss_for(spec)
    reference = build(spec, "torch", "backprop", device=device).state_dict()
    steppers: dict[str, C.Stepper] = {}
    rows: dict[str, dict] = {}
    scale: dict[str, float] = {}
    for target, gradient in configs:
        key = f"{target}/{gradient}"
        row = {"executor": target, "gradient": gradient, "batch": batch, "status": "ok", "reason": ""}
        rows[key] = row
        if _is_cudaq(target):
            reason = C.cudaq_available()
            if reason:
                row.update(status="skipped", reason=reason)
                continue
        try:
            model = build(spec, target, gradient, device=device, precision=precision, reference=reference)
        except Exception as err:  # a target that does not apply here
            row.update(status="skipped", reason=f"{type(err).__name__}: {err}")
            continue
        row["gradient_method"] = next(iter(model.gradient_info().values()), {}).get("method", gradient)
        row["angles"] = n_angles(model)
        row["weights"] = n_weights(model)
        estimate = estimate_step_seconds(model, spec, target, gradient, batch, device)
        row["estimated_step_s"] = round(estimate, 4)
        measured_batch = batch
        if estimate > max_seconds:
            if allow_extrapolation and _is_cudaq(target):
                # CUDA-Q's broadcast is a loop over samples: time a smaller batch and scale linearly.
                measured_batch = max(1, int(batch * max_seconds / (2 * estimate)))
                if estimate * measured_batch / batch > max_seconds:
                    row.update(status="skipped", reason=f"estimated {estimate:.0f} s per step; even one sample "
                                                        f"exceeds the {max_seconds:g} s cap")
                    continue
            else:
                row.update(status="skipped", reason=f"estimated {estimate:.0f} s per step > {max_seconds:g} s cap")
                continue
        if progress:
            progress(f"{key}: estimated {estimate:.2f} s/step")
        steppers[key] = C.Stepper(model, X[:measured_batch], y[:measured_batch], loss_fn, device=device)
        scale[key] = batch / measured_batch
        if measured_batch != batch:
            row["measured_batch"] = measured_batch
            row["extrapolated"] = True
    if steppers:
        budget = max_seconds * max(1, len(steppers))
        timings = C.alternate(steppers, repeats=repeats, rounds=rounds, budget_s=budget,
                              per_step_cap_s=max_seconds / 4, progress=progress)
        for key, summary in timings.items():
            factor = scale[key]
            if factor != 1:
                for name in ("forward_ms", "backward_ms", "warm_ms"):
                    if summary.get(name) is not None:
                        summary[name] *= factor
                summary["step_ms"] = summary["forward_ms"] + summary["backward_ms"] + summary["optimizer_ms"]
            rows[key].update(summary)
    return list(rows.values())


def run_engine(qubits=C.DEFAULT_QUBITS, batch: int = C.DEFAULT_BATCH, repeats: int = 3, rounds: int = 3, *,
               template: str | None = None, spec=None, max_seconds: float = 60.0, shift_qubits: int | None = 10,
               threads: int | None = 1, device: str = "cpu", configs=CONFIGS, shift_target: str = "qpp-cpu",
               progress: Callable[[str], None] | None = None) -> dict:
    C.set_threads(threads)
    given = C.resolve_spec(template, spec)
    qubits = [C.quantum_qubits(given)] if given is not None else list(qubits)
    result = C.new_result("engine", {"qubits": qubits, "batch": batch, "repeats": repeats, "rounds": rounds,
                                     "template": template, "spec": str(spec) if spec else None,
                                     "max_seconds": max_seconds, "shift_qubits": shift_qubits, "threads": threads,
                                     "device": device, "configs": [list(c) for c in configs]}, device)
    for n in qubits:
        spec_n = given if given is not None else C.standard_spec(n)
        if progress:
            progress(f"engine: {n} qubits")
        for row in time_configs(spec_n, configs, batch=batch, repeats=repeats, rounds=rounds,
                                max_seconds=max_seconds, device=device, progress=progress):
            row["n"] = n
            result["rows"].append(row)
            if row["status"] != "ok":
                result["skipped"].append({"n": n, "executor": row["executor"], "gradient": row["gradient"],
                                          "reason": row["reason"]})
    for row in result["rows"]:
        if row["status"] == "ok" and row["gradient"] == "adjoint" and row.get("forward_ms"):
            ratio = row["backward_ms"] / row["forward_ms"]
            row["backward_over_forward"] = ratio
            C.check(result, "adjoint backward / forward", ratio, f"<= {ADJOINT_RATIO_TARGET:g}",
                    met=ratio <= ADJOINT_RATIO_TARGET, n=row["n"], executor=row["executor"])
    if shift_qubits:
        _shift_ratio(result, given, shift_qubits, batch, repeats, max_seconds, device, progress, shift_target)
    return C.finish(result)


def _shift_ratio(result: dict, given, n: int, batch: int, repeats: int, max_seconds: float, device: str,
                 progress, target: str = "qpp-cpu") -> None:
    """CUDA-Q adjoint against CUDA-Q parameter shift on one network (the shifted circuits timed on a smaller
    batch and scaled linearly when a full step would exceed the cap)."""
    reason = C.cudaq_available()
    spec_n = given if given is not None else C.standard_spec(n)
    n = C.quantum_qubits(spec_n)
    if reason:
        result["skipped"].append({"n": n, "name": "CUDA-Q adjoint vs parameter shift", "reason": reason})
        C.check(result, "CUDA-Q adjoint speed-up over parameter shift", None, f">= {SHIFT_RATIO_TARGET:g}",
                        met=None, n=n, reason=reason)
        return
    if progress:
        progress(f"engine: CUDA-Q adjoint vs parameter shift at {n} qubits")
    rows = time_configs(spec_n, ((target, "adjoint"), (target, "parameter_shift")), batch=batch,
                        repeats=max(1, min(repeats, 2)), rounds=1, max_seconds=max_seconds, device=device,
                        progress=progress, allow_extrapolation=True)
    adjoint, shift = rows
    for row in rows:
        row["n"] = n
        row["purpose"] = "shift-ratio"
    result["shift_ratio_rows"] = rows
    result["config"]["shift_target"] = target
    if adjoint["status"] != "ok" or shift["status"] != "ok":
        why = adjoint["reason"] or shift["reason"]
        C.check(result, "CUDA-Q adjoint speed-up over parameter shift", None, f">= {SHIFT_RATIO_TARGET:g}",
                met=None, n=n, reason=why)
        return
    ratio = shift["step_ms"] / adjoint["step_ms"]
    C.check(result, "CUDA-Q adjoint speed-up over parameter shift", ratio, f">= {SHIFT_RATIO_TARGET:g}",
            met=ratio >= SHIFT_RATIO_TARGET, n=n, parameters=adjoint.get("weights"), angles=adjoint.get("angles"),
            shift_measured_batch=shift.get("measured_batch", batch), batch=batch)


def fastest_exact(rows: list[dict], n: int) -> dict | None:
    exact = [r for r in rows if r.get("n") == n and r["status"] == "ok" and r["gradient"] in ("adjoint", "backprop")
             and r.get("step_ms") and r.get("purpose") is None]
    return min(exact, key=lambda r: r["step_ms"]) if exact else None
