"""GPU check: `python -m workbench.bench.gpu_check --out DIR`.

On a machine with CUDA, within --budget seconds (default 420: it ends inside 8 minutes) and writing
DIR/gpu_check.json after every phase, it measures the GPU's copy bandwidth and, for n >= 22 qubits, the fraction
of it the statevector sweep reaches (the forward pass and one dense-block pass); then whether CUDA-Q's states
reach torch without a host copy (`state_handoff`: nvidia-fp64, values against the torch engine) and a sampler
readout without shots computed from them on the GPU (`sampler_handoff`: nvidia); then the engine
suite with device='cuda' for the torch engine and CUDA-Q's 'nvidia' and 'nvidia-fp64' targets (when cudaq
imports and sees the GPU); then the GPU-capable peers installed in this interpreter (PennyLane
default.qubit, TorchQuantum, pyqtorch, TyxonQ, tensorcircuit-ng) on the same workload; then, if time is left,
the scaling suite. Without a GPU it says "no GPU", writes that to DIR/gpu_check.json and exits 0.
`--dry-run-cpu` runs the same flow on the CPU at small sizes, to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..engine.plan import human_bytes
from . import common as C


def _cudaq_gpu() -> str:
    """'' when CUDA-Q's nvidia target can run here, else the reason."""
    try:
        from ..engine.executors.cudaq_runtime import gpu_count
    except Exception as err:
        return f"cudaq does not import: {err}"
    if gpu_count() == 0:
        return "cudaq sees no GPU"
    return ""


def sweep_fraction(n: int, batch: int, device: str, bandwidth: float, repeats: int = 5) -> dict:
    """Time the torch engine's forward (no autograd) and one dense-block pass at n qubits; compare the bytes
    they must move with the copy bandwidth."""
    from ..engine.circuits import build_circuit
    from ..engine.executors.statevector import StatevectorProgram

    spec = C.standard_spec(n)
    block = spec.quantum_blocks()[0]
    circuit = build_circuit(block, n)
    program = StatevectorProgram(circuit, torch.complex64, device)
    generator = torch.Generator().manual_seed(n)
    angles = torch.rand(batch, len(circuit.rotation_gates), generator=generator).to(device)
    sweep = C.sweep_bytes(n, batch, 8)
    row = {"n": n, "batch": batch, "device": device, "sweep_bytes": sweep, "state_bytes": sweep // 2,
           "forward_passes": program.state_passes}
    with torch.no_grad():
        forward = C.median_time(lambda: program.run(angles), repeats=repeats, device=device)
        psi = program.run(angles)
        plan = None
        from ..engine.circuits import readout_plan

        plan = readout_plan(block)
        upstream = torch.ones(batch, n, device=device)
        lam = program.observable_action(psi, plan, upstream)
        backward = C.median_time(lambda: program.adjoint_vjp(psi, lam, angles), repeats=repeats, device=device)
        size = 1 << min(4, n)
        block_matrix = torch.randn(batch, size, size, dtype=torch.complex64, device=device)
        out = torch.empty_like(psi).view(batch, size, -1)
        one_pass = C.median_time(lambda: torch.bmm(block_matrix, psi.view(batch, -1, size).transpose(1, 2), out=out),
                                 repeats=repeats, device=device)
        copy = torch.empty_like(psi)
        copy_time = C.median_time(lambda: copy.copy_(psi), repeats=repeats, device=device)
    row.update({
        "forward_ms": forward * 1e3, "adjoint_backward_ms": backward * 1e3, "block_pass_ms": one_pass * 1e3,
        "state_copy_ms": copy_time * 1e3,
        "forward_bandwidth_fraction": program.state_passes * sweep / forward / bandwidth,
        "block_pass_bandwidth_fraction": sweep / one_pass / bandwidth,
        "state_copy_bandwidth_fraction": sweep / copy_time / bandwidth,
        "adjoint_backward_over_forward": backward / forward,
    })
    return row


def _dtoh_copies(fn) -> int:
    """Device-to-host copies CUPTI sees while fn() runs (any library's in this process, CUDA-Q's included)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if "dtoh" in e.name.lower().replace(" ", "").replace("_", ""))


def state_handoff(target: str, device: str, n: int = 10, batch: int = 4) -> dict:
    """CUDA-Q's final states handed to torch (the adjoint method's input): which path they take, whether the
    device path copies through the host, and their values against the torch engine's to 1e-12.

    On a GPU target with device='cuda' the path must be 'device': a view's data pointer is the cudaq.State's own
    device pointer (zero copy), and states() makes no device-to-host copy while the host path, profiled the same
    way as a control, does. On the CPU (the dry run) the same code takes the host path.
    """
    from ..engine.circuits import build_circuit, readout_plan
    from ..engine.executors.cudaq import CudaqExecutor
    from ..engine.executors.cudaq_device import device_view
    from ..engine.executors.cudaq_runtime import call
    from ..engine.executors.statevector import StatevectorProgram
    from ..engine.plan import ExecutionConfig, resolve

    block = C.standard_spec(n).quantum_blocks()[0]
    circuit = build_circuit(block, n)
    executor = CudaqExecutor(circuit, readout_plan(block),
                             resolve(ExecutionConfig(target=target, device=device), block, circuit))
    generator = torch.Generator().manual_seed(n)
    angles = torch.rand(batch, len(circuit.rotation_gates), generator=generator, dtype=torch.float64) * 3
    row = {"target": target, "device": device, "n": n, "batch": batch,
           "path": "device" if executor.states_on_device else "host"}
    states = executor.states(angles, None)
    oracle = StatevectorProgram(circuit, torch.complex128, device).run(angles.to(device))
    row.update(states_device=str(states.device), states_dtype=str(states.dtype),
               max_abs_diff_vs_torch_engine=float((states - oracle).abs().max()))
    values_ok = row["max_abs_diff_vs_torch_engine"] <= 1e-12 and states.dtype == torch.complex128
    if row["path"] == "device":
        args = executor._args(angles[:1], None)[0]

        def pointers(cudaq):  # only numbers leave the CUDA-Q thread: the state and its view end there
            state = cudaq.get_state(executor.kernel, *args)
            view = device_view(state, n)
            return {"state_on_gpu": bool(state.is_on_gpu()), "state_pointer": int(state.getTensors()[0].data()),
                    "view_pointer": int(view.data_ptr()), "view_device": str(view.device)}

        row.update(call(executor.target, pointers))
        row["device_path_dtoh_copies"] = _dtoh_copies(lambda: executor.states(angles, None))
        # The control: the host copy the CPU path makes (np.array of a state) must show up in the same profiler.
        host_copy = lambda cudaq: np.array(cudaq.get_state(executor.kernel, *args), dtype=np.complex128)  # noqa: E731
        row["host_path_dtoh_copies"] = _dtoh_copies(lambda: call(executor.target, host_copy))
        row["no_host_copy"] = (row["state_pointer"] == row["view_pointer"] and row["device_path_dtoh_copies"] == 0
                               and row["host_path_dtoh_copies"] > 0 and states.device.type == "cuda")
        row["verified"] = row["no_host_copy"] and values_ok
    else:
        row["verified"] = values_ok and row["path"] == ("device" if device == "cuda" else "host")
    return row


def sampler_handoff(target: str, device: str, n: int = 10, batch: int = 4) -> dict:
    """A sampler readout without shots (probabilities computed from the final states) on a CUDA-Q target, against
    the torch engine's probabilities of the same circuit.

    On a statevector GPU target with device='cuda' the states stay on the GPU, so this checks that the readout
    is computed there (the marginal's index on the states' device) and comes back on the layer's device. On the
    CPU (the dry run) the same code takes the host path.
    """
    from ..engine.circuits import build_circuit, readout_plan
    from ..engine.executors.cudaq import CudaqExecutor
    from ..engine.executors.statevector import StatevectorProgram
    from ..engine.plan import ExecutionConfig, resolve
    from ..spec import load_spec

    spec = C.standard_spec_dict(n)
    marginal = [0, n // 2, n - 1]  # a proper subset of the qubits: the marginal's index is used
    spec["blocks"] = [{**b, "readout": {"mode": "sampler", "marginal": marginal}} if b["type"] == "quantum" else b
                      for b in spec["blocks"]]
    block = load_spec(spec).quantum_blocks()[0]
    circuit, plan = build_circuit(block, n), readout_plan(block)
    executor = CudaqExecutor(circuit, plan, resolve(ExecutionConfig(target=target, device=device), block, circuit))
    generator = torch.Generator().manual_seed(n)
    angles = torch.rand(batch, len(circuit.rotation_gates), generator=generator, dtype=torch.float64) * 3
    values = executor.readout(angles, None)
    oracle_program = StatevectorProgram(circuit, torch.complex128, device)
    oracle = oracle_program.readout(oracle_program.run(angles.to(device)), plan)
    tolerance = 1e-12 if executor.plan.target.dtype == "complex128" else 1e-5  # nvidia simulates in complex64
    row = {"target": target, "device": device, "n": n, "batch": batch, "marginal": marginal,
           "path": "device" if executor.states_on_device else "host", "values_device": str(values.device),
           "max_abs_diff_vs_torch_engine": float((values - oracle.to(values.dtype)).abs().max()),
           "tolerance": tolerance}
    row["verified"] = (row["max_abs_diff_vs_torch_engine"] <= tolerance and values.device.type == device
                       and row["path"] == ("device" if device == "cuda" else "host"))
    return row


GPU_PEERS = ("pennylane-default-backprop", "torchquantum", "pyqtorch-autograd", "tyxonq-vmap", "tensorcircuit-torch")


class _Deadline:
    """The whole check's time budget: each phase asks for what is left and is skipped, with the reason
    recorded, when too little remains."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def peer_rows(device: str, qubits, batch: int, repeats: int, deadline: _Deadline, progress) -> list[dict]:
    """The GPU-capable peers that import in this interpreter, on the same workload, full batch, on `device`."""
    import importlib.util

    from .peer_models import FRAMEWORK_OF, build, import_framework
    from .peer_env import FRAMEWORK_MODULES

    rows = []
    for variant in GPU_PEERS:
        module = FRAMEWORK_MODULES[FRAMEWORK_OF[variant]]
        if importlib.util.find_spec(module) is None:
            rows.append({"variant": variant, "status": "skipped", "reason": f"{module} is not installed here"})
            continue
        for n in qubits:
            if deadline.left() < 60:
                rows.append({"variant": variant, "n": n, "status": "skipped", "reason": "time budget spent"})
                continue
            progress(f"peer {variant} at {n} qubits on {device}")
            row = {"variant": variant, "n": n, "batch": batch, "device": device}
            try:
                import_framework(FRAMEWORK_OF[variant])
                model = build(variant, n).to(device)
                generator = torch.Generator().manual_seed(n)
                X = torch.randn(batch, n, generator=generator)
                y = torch.randint(0, 2, (batch,), generator=generator)
                stepper = C.Stepper(model, X, y, torch.nn.CrossEntropyLoss(), device=device)
                warm = stepper.step(record=False)
                row["warmup_s"] = warm
                if warm * repeats > min(30.0, deadline.left() / 4):
                    row.update(status="over budget", reason=f"warm-up step {warm:.1f} s")
                else:
                    for _ in range(repeats):
                        stepper.step()
                    row.update(status="ok", **stepper.summary())
            except Exception as err:  # recorded against the peer: a framework without GPU support here
                row.update(status="error", reason=f"{type(err).__name__}: {err}"[:300])
            rows.append(row)
            if row["status"] != "ok":
                break
    return rows


def run(out: Path, *, device: str, engine_qubits, scaling_max: int, large_qubits, batch: int, large_batch: int,
        repeats: int, max_seconds: float, progress, budget_s: float = 450.0) -> dict:
    """Every phase writes gpu_check.json when it ends, so a run cut short keeps what it measured."""
    from .engine import run_engine
    from .report import write_html, write_json
    from .scaling import run_scaling

    deadline = _Deadline(budget_s)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"gpu": device == "cuda", "device": device, "machine": C.machine_info(device),
                     "budget_s": budget_s, "phases": {}}

    def save(phase: str, started: float) -> None:
        summary["phases"][phase] = round(time.perf_counter() - started, 1)
        (out / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str))

    reason = _cudaq_gpu() if device == "cuda" else "dry run on the CPU"
    gpu_targets = ["nvidia", "nvidia-fp64"] if not reason else []
    summary["cudaq_targets"] = gpu_targets
    summary["cudaq_reason"] = reason
    t0 = time.perf_counter()
    progress(f"copy bandwidth on {device}")
    bandwidth = C.memory_bandwidth(device, megabytes=1024 if device == "cuda" else 128)
    summary["bandwidth"] = bandwidth
    bw = bandwidth["gb_per_s"] * 1e9
    rows = []
    for n in large_qubits:  # the bandwidth fraction first: it is the question this check must answer
        state = large_batch * (2**n) * 8
        free = torch.cuda.mem_get_info()[0] if device == "cuda" else C.machine_info()["memory_available_bytes"]
        if state * 8 > free or deadline.left() < 30:
            why = (f"needs about {human_bytes(state * 8)}, {human_bytes(free)} free" if state * 8 > free
                   else "time budget spent")
            rows.append({"n": n, "batch": large_batch, "status": "skipped", "reason": why})
            continue
        progress(f"sweep fraction at {n} qubits, batch {large_batch}")
        row = sweep_fraction(n, large_batch, device, bw, repeats=repeats)
        row["status"] = "ok"
        rows.append(row)
        summary["sweep"] = rows
        save("bandwidth", t0)
    summary["sweep"] = rows
    ok = [r for r in rows if r["status"] == "ok"]
    if ok:
        summary["forward_bandwidth_fraction_median"] = statistics.median(r["forward_bandwidth_fraction"] for r in ok)
        summary["block_pass_bandwidth_fraction_median"] = statistics.median(
            r["block_pass_bandwidth_fraction"] for r in ok)
    save("bandwidth", t0)

    t0 = time.perf_counter()
    cpu_target = "qpp-cpu" if device == "cpu" else ""
    # The adjoint's input on nvidia-fp64 (complex128 states: values to 1e-12), then a sampler readout without
    # shots on nvidia, the readout computed from the states where they were handed over.
    handoffs = (("cudaq_state_handoff", state_handoff, gpu_targets[-1] if gpu_targets else cpu_target),
                ("cudaq_sampler_handoff", sampler_handoff, gpu_targets[0] if gpu_targets else cpu_target))
    for key, check, handoff_target in handoffs:
        if not handoff_target:
            summary[key] = {"verified": False, "skipped": reason}
            continue
        progress(f"CUDA-Q {key.removeprefix('cudaq_').replace('_', ' ')} on {handoff_target}")
        try:
            summary[key] = check(handoff_target, device)
        except Exception as err:  # recorded, not fatal: the other phases still measure
            summary[key] = {"target": handoff_target, "verified": False, "error": f"{type(err).__name__}: {err}"[:500]}
    save("state_handoff", t0)

    t0 = time.perf_counter()
    configs = [("torch", "backprop"), ("torch", "adjoint")]
    configs += [(target, "adjoint") for target in gpu_targets]
    if device == "cpu":
        configs += [("qpp-cpu", "adjoint")]
    engine = run_engine(engine_qubits, batch, repeats, 2, max_seconds=min(max_seconds, deadline.left() / 20),
                        device=device, configs=configs, shift_qubits=None, threads=None, progress=progress)
    write_json(engine, out / "engine.json")
    summary["engine_checks"] = engine["checks"]
    summary["engine_rows"] = [{k: r.get(k) for k in ("n", "executor", "gradient", "step_ms", "status", "reason")}
                              for r in engine["rows"]]
    save("engine", t0)

    t0 = time.perf_counter()
    summary["peers"] = peer_rows(device, engine_qubits, batch, repeats, deadline, progress)
    save("peers", t0)

    results = [engine]
    if deadline.left() > 120:
        t0 = time.perf_counter()
        executors = [("torch", "adjoint"), ("torch", "backprop")] + [(t, "adjoint") for t in gpu_targets[:1]]
        scaling = run_scaling(None, batch, (1, 16, 64, 256) if device == "cuda" else (1, 8), repeats, 1,
                              max_seconds=min(max_seconds, deadline.left() / 30), max_qubits=scaling_max,
                              batch_qubits=16 if device == "cuda" else 6, executors=executors, threads=None,
                              device=device, progress=progress)
        write_json(scaling, out / "scaling.json")
        results.append(scaling)
        save("scaling", t0)
    else:
        summary["phases"]["scaling"] = "skipped: time budget spent"
    write_html(results, out / "gpu_check.html")
    summary["elapsed_s"] = round(budget_s - deadline.left(), 1)
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.bench.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="Directory for the results.")
    parser.add_argument("--large-qubits", default="22,24,26", help="Qubit counts of the bandwidth check (>= 22).")
    parser.add_argument("--large-batch", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--scaling-max", type=int, default=28, help="Largest qubit count of the scaling sweep.")
    parser.add_argument("--budget", type=float, default=420.0, help="Seconds for the whole check (it stops "
                                                                      "starting phases when they run out).")
    parser.add_argument("--dry-run-cpu", action="store_true", help="Run the same flow on the CPU at small sizes.")
    args = parser.parse_args(argv)
    progress = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    if args.dry_run_cpu:
        summary = run(args.out, device="cpu", engine_qubits=[4], scaling_max=6, large_qubits=[10], batch=4,
                      large_batch=2, repeats=1, max_seconds=min(args.max_seconds, 10.0), progress=progress,
                      budget_s=args.budget)
        keys = ("device", "bandwidth", "sweep", "cudaq_state_handoff", "cudaq_sampler_handoff")
        print(json.dumps({k: summary[k] for k in keys}, indent=1, default=str))
        return 0
    if not torch.cuda.is_available():
        message = "no GPU: torch sees no CUDA device, so there is nothing to measure here (run this on a GPU machine)"
        print(message)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps({"gpu": False, "message": "no GPU", "detail": message,
                                                             "machine": C.machine_info()}, indent=1))
        return 0
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    started = time.perf_counter()
    summary = run(args.out, device="cuda", engine_qubits=[4, 8, 12, 16, 20], scaling_max=args.scaling_max,
                  large_qubits=C.parse_ints(args.large_qubits, (22, 24, 26)), batch=args.batch,
                  large_batch=args.large_batch, repeats=args.repeats, max_seconds=args.max_seconds, progress=progress,
                  budget_s=args.budget)
    print(f"GPU: {summary['machine'].get('gpu')}; copy bandwidth {summary['bandwidth']['gb_per_s']:.0f} GB/s")
    for row in summary["sweep"]:
        if row["status"] == "ok":
            print(f"n={row['n']} batch={row['batch']}: forward {row['forward_ms']:.2f} ms reaches "
                  f"{100 * row['forward_bandwidth_fraction']:.0f}% of copy bandwidth "
                  f"({row['forward_passes']} passes); one block pass {100 * row['block_pass_bandwidth_fraction']:.0f}%;"
                  f" adjoint backward / forward {row['adjoint_backward_over_forward']:.2f}")
        else:
            print(f"n={row['n']}: skipped ({row['reason']})")
    print(f"CUDA-Q GPU targets: {', '.join(summary['cudaq_targets']) or 'none (' + summary['cudaq_reason'] + ')'}")
    for key, title in (("cudaq_state_handoff", "state hand-off"), ("cudaq_sampler_handoff", "sampler readout")):
        handoff = summary.get(key, {})
        print(f"CUDA-Q {title}: {'verified' if handoff.get('verified') else 'NOT verified'} "
              f"({json.dumps({k: v for k, v in handoff.items() if k != 'verified'}, default=str)})")
    for row in summary.get("peers", []):
        print(f"peer {row['variant']} n={row.get('n', '-')}: {row['status']} "
              + (f"{row['step_ms']:.1f} ms/step" if row["status"] == "ok" else row.get("reason", "")))
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
