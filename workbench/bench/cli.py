"""`workbench bench ...` (also `python -m workbench.bench ...`): the benchmark suites on the command line.

Every command prints its table, writes the JSON result (--out) and optionally a self-contained HTML report
(--html). Without --template/--spec a suite runs the standard workload at each of --qubits.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from .cluster_cli import CLUSTER, run_suite_here_or_there
from .surrogate_cli import surrogate_command

bench_app = typer.Typer(help="Benchmarks: engine speed, gradient methods, scaling, peer frameworks, classical "
                             "baseline.", no_args_is_help=True, add_completion=False)

_TEMPLATE = typer.Option(None, "--template", help="A starter template by name (see `workbench templates`).")
_SPEC = typer.Option(None, "--spec", help="A spec JSON file.", exists=False, dir_okay=False)
_OUT = typer.Option(None, "--out", help="Where to write the JSON result [default: bench-<suite>.json].")
_HTML = typer.Option(None, "--html", help="Also write a self-contained HTML report (charts work offline).")
_THREADS = typer.Option(1, "--threads", help="Threads for torch, OpenMP and BLAS in every framework (0: library "
                                             "defaults). One per framework keeps a shared machine's numbers stable.")


def _threads(threads: int) -> int | None:
    """Thread settings must be in the environment before CUDA-Q's OpenMP starts."""
    from .common import thread_environment

    variables = thread_environment(threads)
    os.environ.update(variables)
    return threads if variables else None


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _qubits(text: str) -> list[int]:
    from .common import parse_ints

    try:
        return parse_ints(text, ())
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err


def _finish(result: dict, suite: str, out: Optional[Path], html: Optional[Path]) -> None:
    from rich.console import Console

    from .report import print_result, write_html, write_json

    print_result(result, Console(width=None if sys.stdout.isatty() else 160))
    path = write_json(result, out or Path(f"bench-{suite}.json"))
    console = _console()
    console.print(f"wrote {path}")
    if html:
        console.print(f"wrote {write_html(result, html)}")
    failed = [c for c in result.get("checks", []) if c.get("met") is False]
    if failed:
        console.print(f"[yellow]{len(failed)} target(s) not met on this run (see the targets table)[/yellow]")


def _spec_arg(spec: Optional[Path]) -> Optional[str]:
    return str(spec) if spec else None


@bench_app.command()
def engine(template: Optional[str] = _TEMPLATE, spec: Optional[Path] = _SPEC,
           qubits: str = typer.Option("4,8,12,16", "--qubits", help="Qubit counts of the standard workload."),
           batch: int = typer.Option(32, "--batch", min=1), repeats: int = typer.Option(3, "--repeats", min=1),
           rounds: int = typer.Option(3, "--rounds", min=1, help="Alternating rounds over the configurations."),
           max_seconds: float = typer.Option(60.0, "--max-seconds", help="Skip a configuration whose step is "
                                                                         "forecast above this."),
           shift_qubits: int = typer.Option(10, "--shift-qubits", help="Qubits for CUDA-Q adjoint vs parameter shift "
                                                                       "(0: skip)."),
           threads: int = _THREADS, out: Optional[Path] = _OUT, html: Optional[Path] = _HTML,
           cluster: Optional[str] = CLUSTER) -> None:
    """Time per training step (forward / backward split) for every executor x gradient method."""
    threads_ = _threads(threads)
    arguments = {"qubits": _qubits(qubits), "batch": batch, "repeats": repeats, "rounds": rounds,
                 "template": template, "spec": _spec_arg(spec), "max_seconds": max_seconds,
                 "shift_qubits": shift_qubits or None, "threads": threads_}
    result = run_suite_here_or_there("engine", arguments, cluster=cluster, console=_console(), threads=threads_,
                                     spec_file=spec)
    _finish(result, "engine", out, html)


@bench_app.command()
def gradient(template: Optional[str] = _TEMPLATE, spec: Optional[Path] = _SPEC,
             qubits: str = typer.Option("4,8", "--qubits", help="Qubit counts of the standard workload."),
             batch: int = typer.Option(32, "--batch", min=1, help="Largest batch (the sweep also runs batch/4)."),
             batches: Optional[str] = typer.Option(None, "--batches", help="Batch sizes, e.g. 8,32 (overrides "
                                                                           "--batch)."),
             repeats: int = typer.Option(3, "--repeats", min=1), rounds: int = typer.Option(2, "--rounds", min=1),
             max_seconds: float = typer.Option(30.0, "--max-seconds"),
             tolerance: float = typer.Option(1e-4, "--tolerance", help="Relative gradient error a recommendation "
                                                                       "accepts."),
             threads: int = _THREADS, out: Optional[Path] = _OUT, html: Optional[Path] = _HTML,
             cluster: Optional[str] = CLUSTER) -> None:
    """Time, peak memory and gradient error of every method on every target; then a recommendation."""
    threads_ = _threads(threads)
    sizes = _qubits(batches) if batches else sorted({max(1, batch // 4), batch})
    arguments = {"qubits": _qubits(qubits), "batches": sizes, "repeats": repeats, "rounds": rounds,
                 "template": template, "spec": _spec_arg(spec), "max_seconds": max_seconds, "threads": threads_,
                 "tolerance": tolerance}
    result = run_suite_here_or_there("gradient", arguments, cluster=cluster, console=_console(), threads=threads_,
                                     spec_file=spec)
    _finish(result, "gradient", out, html)


@bench_app.command()
def scaling(template: Optional[str] = _TEMPLATE, spec: Optional[Path] = _SPEC,
            qubits: Optional[str] = typer.Option(None, "--qubits", help="Qubit counts [default: 4, 6, 8, ... until "
                                                                        "the budget or memory runs out]."),
            batch: int = typer.Option(32, "--batch", min=1),
            batches: str = typer.Option("1,4,16,64,256", "--batches", help="Batch sizes of the batch sweep."),
            batch_qubits: int = typer.Option(12, "--batch-qubits", help="Qubits of the batch sweep (0: skip)."),
            repeats: int = typer.Option(2, "--repeats", min=1), rounds: int = typer.Option(2, "--rounds", min=1),
            max_seconds: float = typer.Option(30.0, "--max-seconds", help="Time budget per step: an executor stops "
                                                                          "growing when its next size would exceed "
                                                                          "it."),
            max_qubits: int = typer.Option(30, "--max-qubits"),
            threads: int = _THREADS, out: Optional[Path] = _OUT, html: Optional[Path] = _HTML,
            cluster: Optional[str] = CLUSTER) -> None:
    """Time and peak memory per step as qubits and batch grow, beside the memory-bandwidth limit."""
    threads_ = _threads(threads)
    arguments = {"qubits": _qubits(qubits) if qubits else None, "batch": batch,
                 "batches": _qubits(batches) if batches else (), "repeats": repeats, "rounds": rounds,
                 "template": template, "spec": _spec_arg(spec), "max_seconds": max_seconds, "max_qubits": max_qubits,
                 "batch_qubits": batch_qubits or None, "threads": threads_}
    result = run_suite_here_or_there("scaling", arguments, cluster=cluster, console=_console(), threads=threads_,
                                     spec_file=spec)
    _finish(result, "scaling", out, html)


@bench_app.command()
def peers(template: Optional[str] = _TEMPLATE, spec: Optional[Path] = _SPEC,
          qubits: str = typer.Option("4,8,12,16", "--qubits"), batch: int = typer.Option(32, "--batch", min=1),
          repeats: int = typer.Option(3, "--repeats", min=1, help="Timed steps per configuration per round "
                                                                  "(at least; fast ones run for 0.3 s)."),
          rounds: int = typer.Option(3, "--rounds", min=1, help="Alternating rounds over the configurations."),
          max_seconds: float = typer.Option(60.0, "--max-seconds", help="Budget per training step: a configuration "
                                                                        "whose warm-up step takes longer is reported "
                                                                        "as over budget."),
          grad_qubits: str = typer.Option("4,8", "--grad-qubits", help="Qubit counts of the check against the "
                                                                       "float64 reference simulator."),
          grad_batch: int = typer.Option(3, "--grad-batch", min=1, help="Samples in the reference check."),
          only: Optional[str] = typer.Option(None, "--only", help="Comma-separated variants to run."),
          setup: bool = typer.Option(False, "--setup", help="Create (or reuse) one virtual environment per peer "
                                                            "framework under the user cache directory, pinned "
                                                            "to this torch, and exit."),
          threads: int = _THREADS, out: Optional[Path] = _OUT, html: Optional[Path] = _HTML,
          cluster: Optional[str] = CLUSTER) -> None:
    """The standard workload in PennyLane, TorchQuantum, TyxonQ, pyqtorch, tensorcircuit-ng, Qiskit ML and
    hand-written CUDA-Q vs the workbench, each in its own environment (see --setup)."""
    console = _console()
    if setup:
        from .peer_env import setup_all

        report_ = setup_all(progress=lambda message: console.print(f"[dim]{message}[/dim]"))
        for framework, state in report_.items():
            where = state.get("python") or state.get("reason", "")
            console.print(f"{framework:14s} {state['status']:8s} {where}")
        failed = [f for f, state in report_.items() if state["status"] != "ready"]
        if failed:
            console.print(f"[yellow]not installed: {', '.join(failed)} (the suite reports them as skipped)[/yellow]")
        return
    threads_ = _threads(threads)
    variants = [v.strip() for v in only.split(",")] if only else None
    path = out or Path("bench-peers.json")
    arguments = {"qubits": _qubits(qubits), "batch": batch, "repeats": repeats, "rounds": rounds,
                 "max_seconds": max_seconds, "threads": threads_, "grad_qubits": _qubits(grad_qubits),
                 "grad_batch": grad_batch, "variants": variants, "template": template, "spec": _spec_arg(spec),
                 "out": path}
    try:
        result = run_suite_here_or_there("peers", arguments, cluster=cluster, console=console, threads=threads_,
                                         spec_file=spec)
    except (ValueError, KeyError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    _finish(result, "peers", path, html)


@bench_app.command()
def baseline(template: Optional[str] = _TEMPLATE, spec: Optional[Path] = _SPEC,
             qubits: str = typer.Option("4", "--qubits", help="Qubits of the standard workload (first value)."),
             batch: int = typer.Option(32, "--batch", min=1),
             repeats: int = typer.Option(1, "--repeats", min=1, help="Training runs per model (seeds)."),
             dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name [default: the template's, "
                                                                           "else circles]."),
             epochs: int = typer.Option(30, "--epochs", min=1), lr: float = typer.Option(0.05, "--lr"),
             threads: int = _THREADS, out: Optional[Path] = _OUT, html: Optional[Path] = _HTML,
             cluster: Optional[str] = CLUSTER) -> None:
    """Hybrid vs matched classical model on a dataset: accuracy, parameters, time."""
    threads_ = _threads(threads)
    arguments = {"qubits": _qubits(qubits), "batch": batch, "repeats": repeats, "template": template,
                 "spec": _spec_arg(spec), "dataset": dataset, "epochs": epochs, "lr": lr, "threads": threads_}
    result = run_suite_here_or_there("baseline", arguments, cluster=cluster, console=_console(), threads=threads_,
                                     spec_file=spec)
    _finish(result, "baseline", out, html)


bench_app.command("surrogate")(surrogate_command)


@bench_app.command()
def report(results: list[Path] = typer.Argument(..., help="JSON results of any suites."),
           html: Path = typer.Option(Path("bench-report.html"), "--html")) -> None:
    """Combine JSON results into one self-contained HTML report."""
    import json

    from .report import write_html

    loaded = [json.loads(p.read_text()) for p in results]
    _console().print(f"wrote {write_html(loaded, html)}")


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    bench_app(prog_name="python -m workbench.bench" if sys.argv[0].endswith("__main__.py") else None)


if __name__ == "__main__":
    main()
