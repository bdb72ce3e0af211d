"""GPU check: `python -m workbench.bench.gpu_check --out DIR`.

On a machine with CUDA it runs the engine and scaling suites with device='cuda' for the torch engine (and
CUDA-Q's 'nvidia' target when cudaq imports there and sees the GPU), measures the GPU's copy bandwidth, and
reports, for n >= 22 qubits, the fraction of that bandwidth the statevector sweep reaches: the forward pass
(every stage one pass over the batch of states) and one dense-block pass on its own. Without a GPU it says
"no GPU" and exits 0 (writing that to DIR/gpu_check.json). `--dry-run-cpu` runs the same flow on the CPU at
small sizes, to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

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


def run(out: Path, *, device: str, engine_qubits, scaling_max: int, large_qubits, batch: int, large_batch: int,
        repeats: int, max_seconds: float, progress) -> dict:
    from .engine import run_engine
    from .report import write_html, write_json
    from .scaling import run_scaling

    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"gpu": device == "cuda", "device": device, "machine": C.machine_info(device)}
    reason = _cudaq_gpu() if device == "cuda" else "dry run on the CPU"
    gpu_target = "nvidia" if not reason else None
    summary["cudaq_nvidia"] = gpu_target is not None
    summary["cudaq_reason"] = reason
    progress(f"copy bandwidth on {device}")
    bandwidth = C.memory_bandwidth(device, megabytes=1024 if device == "cuda" else 128)
    summary["bandwidth"] = bandwidth
    bw = bandwidth["gb_per_s"] * 1e9

    configs = [("torch", "backprop"), ("torch", "adjoint")]
    if gpu_target:
        configs += [(gpu_target, "adjoint"), (gpu_target, "parameter_shift")]
    elif device == "cpu":
        configs += [("qpp-cpu", "adjoint")]
    engine = run_engine(engine_qubits, batch, repeats, 2, max_seconds=max_seconds, device=device, configs=configs,
                        shift_qubits=10 if gpu_target else None, shift_target=gpu_target or "qpp-cpu", threads=None,
                        progress=progress)
    write_json(engine, out / "engine.json")
    executors = [("torch", "adjoint"), ("torch", "backprop")] + ([(gpu_target, "adjoint")] if gpu_target else [])
    scaling = run_scaling(None, batch, (1, 16, 64, 256) if device == "cuda" else (1, 8), repeats, 1,
                          max_seconds=max_seconds, max_qubits=scaling_max, batch_qubits=16 if device == "cuda" else 6,
                          executors=executors, threads=None, device=device, progress=progress)
    write_json(scaling, out / "scaling.json")

    rows = []
    for n in large_qubits:
        state = large_batch * (2**n) * 8
        free = torch.cuda.mem_get_info()[0] if device == "cuda" else C.machine_info()["memory_available_bytes"]
        if state * 8 > free:
            rows.append({"n": n, "batch": large_batch, "status": "skipped",
                         "reason": f"needs about {C.human_bytes(state * 8)}, {C.human_bytes(free)} free"})
            continue
        progress(f"sweep fraction at {n} qubits, batch {large_batch}")
        row = sweep_fraction(n, large_batch, device, bw, repeats=repeats)
        row["status"] = "ok"
        rows.append(row)
    summary["sweep"] = rows
    ok = [r for r in rows if r["status"] == "ok"]
    if ok:
        summary["forward_bandwidth_fraction_median"] = statistics.median(r["forward_bandwidth_fraction"] for r in ok)
        summary["block_pass_bandwidth_fraction_median"] = statistics.median(
            r["block_pass_bandwidth_fraction"] for r in ok)
    summary["engine_checks"] = engine["checks"]
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str))
    write_html([engine, scaling], out / "gpu_check.html")
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
    parser.add_argument("--dry-run-cpu", action="store_true", help="Run the same flow on the CPU at small sizes.")
    args = parser.parse_args(argv)
    progress = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    if args.dry_run_cpu:
        summary = run(args.out, device="cpu", engine_qubits=[4], scaling_max=6, large_qubits=[10], batch=4,
                      large_batch=2, repeats=1, max_seconds=min(args.max_seconds, 10.0), progress=progress)
        print(json.dumps({k: summary[k] for k in ("device", "bandwidth", "sweep")}, indent=1, default=str))
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
                  large_batch=args.large_batch, repeats=args.repeats, max_seconds=args.max_seconds, progress=progress)
    print(f"GPU: {summary['machine'].get('gpu')}; copy bandwidth {summary['bandwidth']['gb_per_s']:.0f} GB/s")
    for row in summary["sweep"]:
        if row["status"] == "ok":
            print(f"n={row['n']} batch={row['batch']}: forward {row['forward_ms']:.2f} ms reaches "
                  f"{100 * row['forward_bandwidth_fraction']:.0f}% of copy bandwidth "
                  f"({row['forward_passes']} passes); one block pass {100 * row['block_pass_bandwidth_fraction']:.0f}%;"
                  f" adjoint backward / forward {row['adjoint_backward_over_forward']:.2f}")
        else:
            print(f"n={row['n']}: skipped ({row['reason']})")
    print(f"CUDA-Q nvidia target: {'yes' if summary['cudaq_nvidia'] else 'no (' + summary['cudaq_reason'] + ')'}")
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
