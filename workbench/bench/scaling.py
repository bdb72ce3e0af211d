"""`scaling`: time and peak memory per training step as the qubit count grows (from 4 until the time budget or
the memory runs out) and as the batch grows, per executor, each beside its physical limit: the time one
pass over the batch of statevectors takes at this machine's copy bandwidth, measured in the same run."""

from __future__ import annotations

from typing import Callable

from ..engine.plan import human_bytes
from . import common as C
from .engine import build, estimate_step_seconds

EXECUTORS = (("torch", "adjoint"), ("torch", "backprop"), ("qpp-cpu", "adjoint"))


def _torch_forward_passes(model) -> int | None:
    layers = list(model.quantum_layers.values())
    program = getattr(layers[0].executor, "program", None) if layers else None
    return getattr(program, "state_passes", None)


def _fits(spec, target: str, gradient: str, batch: int, device: str) -> str:
    """'' when a model of this size should fit in memory, else why not (before building it)."""
    import torch

    from ..engine.plan import ExecutionConfig, available_memory, resolve

    plan = resolve(ExecutionConfig(target=target, gradient=gradient, device=device), spec.quantum_blocks()[0])
    need = plan.memory_estimate(batch)
    have = available_memory(torch.device(device))
    if need > 0.5 * have:
        return f"needs about {human_bytes(need)}, {human_bytes(have)} free"
    return ""


def _measure_point(spec, executors, *, batch: int, repeats: int, rounds: int, max_seconds: float, device: str,
                   bandwidth: float, progress) -> list[dict]:
    n = C.quantum_qubits(spec)
    X, y = C.make_batch(spec, batch, seed=5)
    loss_fn = C.loss_for(spec)
    reference = None
    rows, steppers = [], {}
    for target, gradient in executors:
        row = {"n": n, "batch": batch, "executor": target, "gradient": gradient, "status": "ok", "reason": ""}
        rows.append(row)
        sweep = C.sweep_bytes(n, batch, 8 if target in ("torch", "torch-density") else 16)
        row["sweep_bytes"] = sweep
        row["sweep_ms"] = sweep / bandwidth * 1e3
        if target not in ("torch", "torch-density") and C.cudaq_available():
            row.update(status="skipped", reason=C.cudaq_available())
            continue
        why = _fits(spec, target, gradient, batch, device)
        if why:
            row.update(status="skipped", reason=why)
            continue
        try:
            if reference is None:
                reference = build(spec, "torch", "backprop", device=device).state_dict()
            model = build(spec, target, gradient, device=device, reference=reference)
        except Exception as err:
            row.update(status="skipped", reason=f"{type(err).__name__}: {err}")
            continue
        estimate = estimate_step_seconds(model, spec, target, gradient, batch, device)
        row["estimated_step_s"] = round(estimate, 4)
        if estimate > max_seconds * 2:
            row.update(status="skipped", reason=f"estimated {estimate:.0f} s per step > budget {max_seconds:g} s")
            continue
        if progress:
            progress(f"scaling: {target}/{gradient}, {n} qubits, batch {batch}")
        stepper = C.Stepper(model, X, y, loss_fn, device=device)
        stepper.step(record=False)
        C.release_work_buffers(model)
        with C.PeakMemory(device) as peak:
            stepper.step(record=False)
        row["peak_bytes"] = peak.bytes
        passes = _torch_forward_passes(model)
        if passes is not None:
            row["forward_passes"] = passes
        steppers[f"{target}/{gradient}"] = stepper
        row["_key"] = f"{target}/{gradient}"
    if steppers:
        timings = C.alternate(steppers, repeats=repeats, rounds=rounds, budget_s=max_seconds * len(steppers),
                              per_step_cap_s=max_seconds / 4, warmup=0)
        for row in rows:
            key = row.pop("_key", None)
            if key:
                row.update(timings[key])
                row["step_over_sweep"] = row["step_ms"] / row["sweep_ms"]
                if row.get("forward_passes") and row.get("forward_ms"):
                    moved = row["forward_passes"] * row["sweep_bytes"]
                    row["forward_bandwidth_fraction"] = moved / (row["forward_ms"] / 1e3) / bandwidth
    for row in rows:
        row.pop("_key", None)
    return rows


def run_scaling(qubits=None, batch: int = C.DEFAULT_BATCH, batches=(1, 4, 16, 64, 256), repeats: int = 2,
                rounds: int = 2, *, template: str | None = None, spec=None, max_seconds: float = 30.0,
                max_qubits: int = 30, batch_qubits: int | None = 12, executors=EXECUTORS, threads: int | None = 1,
                device: str = "cpu", progress: Callable[[str], None] | None = None) -> dict:
    C.set_threads(threads)
    given = C.resolve_spec(template, spec)
    sweep = list(qubits) if qubits else list(range(4, max_qubits + 1, 2))
    if given is not None:
        sweep = [C.quantum_qubits(given)]
    result = C.new_result("scaling", {"qubits": sweep, "batch": batch, "batches": list(batches) if batches else [],
                                      "repeats": repeats, "rounds": rounds, "template": template,
                                      "spec": str(spec) if spec else None, "max_seconds": max_seconds,
                                      "max_qubits": max_qubits, "batch_qubits": batch_qubits, "threads": threads,
                                      "device": device, "executors": [list(e) for e in executors]}, device)
    if progress:
        progress("scaling: measuring memory bandwidth")
    bandwidth = C.memory_bandwidth(device)
    result["bandwidth"] = bandwidth
    bw = bandwidth["gb_per_s"] * 1e9
    active = list(executors)
    last_step: dict[tuple, float] = {}
    for n in sweep:
        if not active:
            break
        spec_n = given if given is not None else C.standard_spec(n)
        runnable = []
        for executor in active:
            previous = last_step.get(executor)
            if previous is not None and previous[1] * 4 ** ((n - previous[0]) / 2) > max_seconds:
                predicted = previous[1] * 4 ** ((n - previous[0]) / 2)
                result["skipped"].append({"n": n, "executor": executor[0], "gradient": executor[1],
                                          "reason": f"predicted {predicted:.1f} s per step > budget "
                                                    f"{max_seconds:g} s (stopped here)"})
                continue
            runnable.append(executor)
        active = runnable
        if not active:
            break
        rows = _measure_point(spec_n, active, batch=batch, repeats=repeats, rounds=rounds, max_seconds=max_seconds,
                              device=device, bandwidth=bw, progress=progress)
        for row in rows:
            row["sweep"] = "qubits"
            result["rows"].append(row)
            executor = (row["executor"], row["gradient"])
            if row["status"] != "ok":
                result["skipped"].append({"n": n, "executor": row["executor"], "gradient": row["gradient"],
                                          "reason": row["reason"]})
                if executor in active:
                    active.remove(executor)
            else:
                last_step[executor] = (n, row["step_ms"] / 1e3)
    if batches and (batch_qubits or given is not None):
        spec_b = given if given is not None else C.standard_spec(batch_qubits)
        for b in batches:
            rows = _measure_point(spec_b, executors, batch=b, repeats=repeats, rounds=rounds,
                                  max_seconds=max_seconds, device=device, bandwidth=bw, progress=progress)
            for row in rows:
                row["sweep"] = "batch"
                result["rows"].append(row)
                if row["status"] != "ok":
                    result["skipped"].append({"n": row["n"], "batch": b, "executor": row["executor"],
                                              "gradient": row["gradient"], "reason": row["reason"]})
    ok = [r for r in result["rows"] if r["status"] == "ok" and r["sweep"] == "qubits"]
    for executor in executors:
        mine = [r for r in ok if (r["executor"], r["gradient"]) == tuple(executor)]
        if mine:
            top = max(mine, key=lambda r: r["n"])
            result["notes"].append(f"{executor[0]}/{executor[1]}: largest size measured {top['n']} qubits at batch "
                                   f"{top['batch']}: {top['step_ms']:.1f} ms per step, "
                                   f"{top['step_over_sweep']:.1f} sweep-times of the memory limit")
    bandwidth_end = C.memory_bandwidth(device)
    result["bandwidth_end"] = bandwidth_end
    return C.finish(result)
