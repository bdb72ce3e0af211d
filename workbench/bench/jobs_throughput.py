"""Jobs vs threads: throughput of N concurrent circles trainings (worker processes against today's
training threads in one process), and the time from Train to the first chart point (the first step event
in the session's stream) before (thread) and after (job).

    python -m workbench.bench.jobs_throughput --n 1 2 4 --targets torch qpp-cpu --out results/jobs.json

Configurations alternate within one run (threads, jobs, threads, ...), so machine load hits both alike;
wall time and CPU time (this process's, plus the workers' own) are reported side by side.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .. import templates
from ..data import load_dataset
from ..jobs.job import LocalJob
from ..jobs.queue import JobManager
from ..jobs.spec import JobSpec
from ..training import TrainConfig, Trainer

DATA = {"n_samples": 200, "noise": 0.05, "standardize": True}


def _config(target: str, epochs: int, seed: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=16, seed=seed, target=target, boundary_every=0)


def run_threads(n: int, target: str, epochs: int) -> dict:
    data = load_dataset("circles", **DATA)
    cpu, wall = time.process_time(), time.perf_counter()
    trainers = [Trainer(templates.get("vqc-circles"), data, _config(target, epochs, s)) for s in range(n)]
    for trainer in trainers:
        trainer.start()
    for trainer in trainers:
        trainer.join()
    assert all(t.status == "completed" for t in trainers), [t.error for t in trainers]
    steps = sum(len(t.stream.events("step")) for t in trainers)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "steps": steps}


def run_jobs(n: int, target: str, epochs: int) -> dict:
    data = load_dataset("circles", **DATA)
    manager = JobManager(max_concurrent=n)
    cpu, wall = time.process_time(), time.perf_counter()
    jobs = [LocalJob(JobSpec.training(templates.get("vqc-circles"), data, _config(target, epochs, s)),
                     manager=manager).start() for s in range(n)]
    for job in jobs:
        job.join()
    assert all(j.status == "completed" for j in jobs), [j.error for j in jobs]
    steps = sum(len(j.stream.events("step")) for j in jobs)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu + sum(j.cpu_s for j in jobs),
            "steps": steps}


def first_point(kind: str, target: str) -> float:
    """Seconds from Train (building the run) to its first step event in the stream."""
    data = load_dataset("circles", **DATA)
    start = time.perf_counter()
    if kind == "thread":
        runner = Trainer(templates.get("vqc-circles"), data, _config(target, 1, 0))
        runner.start()
    else:
        runner = LocalJob(JobSpec.training(templates.get("vqc-circles"), data, _config(target, 1, 0))).start()
    runner.stream.wait_for(lambda events: any(e["kind"] == "step" for e in events), 300)
    elapsed = time.perf_counter() - start
    runner.cancel()
    runner.join(60)
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--targets", nargs="+", default=["torch", "qpp-cpu"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = []
    first_point("job", "torch")  # start the forkserver once, as a running server has
    for target in args.targets:
        for n in args.n:
            for repeat in range(args.repeats):
                for mode, fn in (("threads", run_threads), ("jobs", run_jobs)):
                    result = fn(n, target, args.epochs)
                    rows.append({"target": target, "n": n, "mode": mode, "repeat": repeat, **result,
                                 "steps_per_s": result["steps"] / result["wall_s"]})
                    print(f"{target:8} n={n} {mode:7} wall {result['wall_s']:6.2f} s  cpu {result['cpu_s']:6.2f} s  "
                          f"{rows[-1]['steps_per_s']:6.1f} steps/s", flush=True)
    latency = []
    for target in args.targets:
        for repeat in range(args.repeats):
            for kind in ("thread", "job"):
                seconds = first_point(kind, target)
                latency.append({"target": target, "kind": kind, "repeat": repeat, "seconds": seconds})
                print(f"first chart point {target:8} {kind:6} {seconds:6.2f} s", flush=True)
    print("\nmedian steps/s (jobs / threads):")
    for target in args.targets:
        for n in args.n:
            by_mode = {m: sorted(r["steps_per_s"] for r in rows if (r["target"], r["n"], r["mode"]) == (target, n, m))
                       for m in ("threads", "jobs")}
            med = {m: v[len(v) // 2] for m, v in by_mode.items()}
            print(f"  {target:8} n={n}: threads {med['threads']:6.1f}  jobs {med['jobs']:6.1f}  "
                  f"ratio {med['jobs'] / med['threads']:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"throughput": rows, "first_point": latency, "epochs": args.epochs,
                                        "data": DATA}, indent=2))


if __name__ == "__main__":
    main()
