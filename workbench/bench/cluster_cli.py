"""`--cluster` on the `workbench bench` suites: run a suite here, or as a job on a Ray cluster whose result
comes back here (this process writes the JSON and HTML; the worker needs no shared disk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

CLUSTER = typer.Option(None, "--cluster", help="Run the suite as a job on a Ray cluster: ray://HOST:PORT or auto "
                                               "(local: here) [default: $WORKBENCH_CLUSTER, else here]. Progress "
                                               "and the result come back here.")


def run_suite_here_or_there(suite: str, arguments: dict[str, Any], *, cluster: Optional[str], console,
                            threads: int | None = None, spec_file: Optional[Path] = None) -> dict:
    """The suite's result, computed here or on the cluster `cluster` (the option or $WORKBENCH_CLUSTER).

    spec_file: the --spec file; on a cluster it is read here and sent as data (the worker cannot see it).
    Refusals and remote failures print one message and exit (2: bad input, 1: the job failed, 130: Ctrl-C).
    """
    from ..jobs.api import cluster_from
    from .suites import run_suite

    def progress(message: str) -> None:
        console.print(f"[dim]{message}[/dim]")

    try:
        address = cluster_from(cluster)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--cluster") from err
    if address is None:
        return run_suite(suite, arguments, progress=progress)
    from ..jobs.bench_suite import SuiteError, run_suite_job, suite_job
    from ..spec import load_spec
    from .common import resolve_spec

    try:
        suite_job(suite, arguments)  # a suite that needs this machine is refused before connecting
        resolve_spec(arguments.get("template"), None if spec_file is None else str(spec_file))  # as here: one of them
        if spec_file is not None:
            arguments = {**arguments, "spec": load_spec(str(spec_file)).to_dict()}
    except (SuiteError, ValueError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    console.print(f"[dim]running the {suite} suite as a job on the Ray cluster {address}[/dim]")
    try:
        return run_suite_job(suite, arguments, cluster=address, threads=threads, progress=progress)
    except (SuiteError, RuntimeError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: the suite's job on the cluster was cancelled[/yellow]")
        raise typer.Exit(130) from None
