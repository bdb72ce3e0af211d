"""`workbench rl ...`: train a hybrid (or classical) TD3 agent on a gymnasium environment, resume it.

Runs go to the same run store as supervised training (`workbench runs list/show/export`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

rl_app = typer.Typer(help="Reinforcement learning: hybrid TD3 (quantum block in the actor) and its classical twin.",
                     no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _store(path: Optional[Path]):
    from ..store import RunStore, StoreError

    try:
        return RunStore(path)
    except StoreError as err:
        _fail(str(err))


def _status(event: dict) -> str:
    from ..engine.gradients.surrogate import describe_accounting

    parts = [f"critic {event['critic_loss']:.3f}"]
    if "actor_grad_norm" in event:
        parts.append(f"|∇actor| {event['actor_grad_norm']:.3f}")
    if "quantum_grad_variance" in event:
        parts.append(f"var ∇q {event['quantum_grad_variance']:.1e}")
    if event.get("circuit_executions"):
        parts.append(f"{event['circuit_executions']} circuits")
    return " ".join(parts) + describe_accounting(event.get("quantum", {}))


def run_with_progress(run, label: str) -> dict:
    """Run a TD3Run with a live bar: environment steps, last episode return, critic loss, gradient stats."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[episode]}"), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task(label, total=run.config.steps, completed=run.position["step"], episode="",
                                 status="")

        def on_event(event: dict) -> None:
            if event["kind"] == "episode":
                progress.update(task, completed=event["step"],
                                episode=f"episode {event['epoch']}: return {event['return']:.1f}")
            elif event["kind"] == "step":
                progress.update(task, completed=event["step"], status=_status(event))

        subscription = run.stream.subscribe(on_event, replay=False)
        try:
            result = run.run()
        except KeyboardInterrupt:
            run.cancel()
            raise
        finally:
            subscription.join(timeout=5)
    return result


def _print(summary: dict) -> None:
    table = Table(title=f"run {summary['run_id']} ({summary['status']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for prefix, result in (("", summary), ("baseline ", summary.get("baseline"))):
        for key, value in ((result or {}).get("final") or {}).items():
            table.add_row(prefix + key, f"{value:.2f}" if isinstance(value, float) else str(value))
    Console().print(table)


@rl_app.command("train")
def train(
    env: str = typer.Option("Pendulum-v1", "--env", help="Gymnasium id: Pendulum-v1, Hopper-v5, Humanoid-v5, ..."),
    agent: str = typer.Option("hybrid", "--agent", help="hybrid (quantum block in the actor) or classical."),
    steps: int = typer.Option(5000, "--steps", min=1, help="Environment steps."),
    start_steps: int = typer.Option(1000, "--start-steps", min=0, help="Random-action steps before learning."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    qubits: int = typer.Option(3, "--qubits", min=1), depth: int = typer.Option(2, "--depth", min=1),
    seed: int = typer.Option(0, "--seed"),
    target: str = typer.Option("torch", "--target", help="Where the actor's circuit runs (torch, qpp-cpu, "
                                                         "quantinuum, ...)."),
    shots: Optional[int] = typer.Option(None, "--shots"),
    gradient: str = typer.Option("auto", "--gradient", help="auto, adjoint, parameter_shift, surrogate, ..."),
    gradient_option: list[str] = typer.Option([], "--gradient-option", help="key=value (repeatable), e.g. "
                                                                            "refit_steps=20 for the surrogate."),
    baseline: bool = typer.Option(False, "--baseline", help="Then train the matched classical twin (same seed)."),
    store_path: Optional[Path] = typer.Option(None, "--store", help="Run store file (default: user data dir)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the final metrics and run ids as JSON."),
) -> None:
    """Train a TD3 agent with a live progress bar; the run is recorded in the run store (resumable)."""
    from ..cli_errors import parse_key_values
    from .run import TD3Run
    from .td3 import RLError, TD3Config

    options = parse_key_values(gradient_option, "--gradient-option", "refit_steps=20")
    store = _store(store_path)
    try:
        config = TD3Config(env=env, agent=agent, steps=steps, start_steps=min(start_steps, steps),
                           batch_size=batch_size, qubits=qubits, depth=depth, seed=seed, target=target, shots=shots,
                           gradient=gradient, gradient_options=options or None)
        run = TD3Run(config, store=store)
    except (RLError, ValueError) as err:
        _fail(str(err))
    summary = run_with_progress(run, f"TD3 {agent} on {env}")
    if baseline and summary["status"] == "completed":
        twin = TD3Run(TD3Config(**{**config.__dict__, "agent": "classical"}), store=store,
                      parent_id=summary["run_id"])
        summary["baseline"] = run_with_progress(twin, "matched classical TD3")
    _print(summary)
    if out:
        out.write_text(json.dumps(summary, indent=2, default=str))
    if summary["status"] == "failed":
        raise typer.Exit(1)


@rl_app.command("resume")
def resume(run_id: str, store_path: Optional[Path] = typer.Option(None, "--store"),
           steps: Optional[int] = typer.Option(None, "--steps", help="Raise the total step count."),
           out: Optional[Path] = typer.Option(None, "--out")) -> None:
    """Continue an interrupted or cancelled TD3 run from its last checkpoint (replay buffer included)."""
    from ..store import StoreError
    from .run import resume_td3
    from .td3 import RLError

    store = _store(store_path)
    try:
        run = resume_td3(run_id, store, steps=steps)
    except (StoreError, RLError) as err:
        _fail(str(err))
    summary = run_with_progress(run, f"resume {run.run_id}")
    _print(summary)
    if out:
        out.write_text(json.dumps(summary, indent=2, default=str))
