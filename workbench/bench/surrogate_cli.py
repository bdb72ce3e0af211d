"""`workbench bench surrogate`: the command line of the surrogate-vs-parameter-shift suite (bench/surrogate.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .cluster_cli import CLUSTER, run_suite_here_or_there


def surrogate_command(
        template: Optional[str] = typer.Option(None, "--template", help="A starter template by name."),
        spec: Optional[Path] = typer.Option(None, "--spec", help="A spec JSON file [default: a 2-qubit circles "
                                                                 "classifier]."),
        dataset: str = typer.Option("circles", "--dataset"),
        target: str = typer.Option("torch", "--target", help="torch, qpp-cpu, or an emulated hardware target "
                                                             "(quantinuum, ionq, ...)."),
        shots: int = typer.Option(100, "--shots", min=1, help="Shots per circuit."),
        shot_budget: int = typer.Option(400_000, "--shot-budget", min=1, help="Training shots per method."),
        seconds: float = typer.Option(20.0, "--seconds", min=0.1, help="Training wall-clock seconds per method."),
        batch: int = typer.Option(16, "--batch", min=1), lr: float = typer.Option(0.05, "--lr"),
        seed: int = typer.Option(0, "--seed"),
        eval_target: Optional[str] = typer.Option(None, "--eval-target", help="Evaluate test accuracy on this "
                                                                               "target (e.g. torch: exact, free)."),
        gradient_option: list[str] = typer.Option([], "--gradient-option", help="Surrogate setting key=value "
                                                                                "(repeatable), e.g. refit_steps=20."),
        out: Optional[Path] = typer.Option(None, "--out", help="JSON result [default: bench-surrogate.json]."),
        html: Optional[Path] = typer.Option(None, "--html", help="Also write a self-contained HTML report."),
        cluster: Optional[str] = CLUSTER) -> None:
    """Parameter shift vs the surrogate gradient under the same shot budget and the same time budget."""
    from rich.console import Console

    from ..cli_errors import parse_key_values
    from .report import print_result, write_json
    from .surrogate import write_surrogate_html

    console = Console(stderr=True)
    options = parse_key_values(gradient_option, "--gradient-option", "refit_steps=20")  # checked by the method
    try:
        arguments = {"template": template, "spec": str(spec) if spec else None, "dataset": dataset, "target": target,
                     "shots": shots, "shot_budget": shot_budget, "seconds": seconds, "batch": batch, "lr": lr,
                     "seed": seed, "gradient_options": options or None, "eval_target": eval_target}
        result = run_suite_here_or_there("surrogate", arguments, cluster=cluster, console=console, spec_file=spec)
    except (ValueError, KeyError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    print_result(result, Console(width=None if sys.stdout.isatty() else 160))
    console.print(f"wrote {write_json(result, out or Path('bench-surrogate.json'))}")
    if html:
        console.print(f"wrote {write_surrogate_html(result, html)}")


