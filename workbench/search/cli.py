"""`workbench search SPACE.json --dataset … --strategy … --budget …`: a search with a progress bar and a
results table; mounted by workbench/cli.py as the `search` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..cli_errors import parse_key_values

console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


SHORT = {"parameters": "params", "circuit_depth": "circuit depth", "two_qubit_gates": "2q gates",
         "executions_per_step": "exec/step", "time_per_step": "s/step", "grad_variance": "grad var"}


def results_table(results, top: int, pareto: tuple[str, str] | None) -> Table:
    """The candidates sorted by the objective (best first); ★ marks the Pareto front of `pareto`."""
    from .objectives import cost

    objective = results.objective
    rows = sorted(results.final_rows(), key=lambda r: (r["status"] != "completed", r["stopped_early"],
                                                      cost(objective, r.get(objective))))
    front = {r["key"] for r in results.pareto(*pareto)} if pareto else set()
    choice_columns = [k for k in (rows[0] if rows else {}) if k.startswith("choice:")]
    measures = [objective, "parameters", "circuit_depth", "two_qubit_gates", "executions_per_step",
                "time_per_step", "grad_variance"]
    table = Table(title=f"search {results.search_id}: {len(rows)} candidates, objective {objective}")
    for column in ["key", *(c.split(".")[-1] for c in choice_columns), "epochs", *(SHORT.get(m, m) for m in measures),
                   *(["pareto"] if pareto else []), "run"]:
        table.add_column(column, overflow="fold")
    for row in rows[:top]:
        status = "" if row["status"] == "completed" else f" ({row['status']})"
        table.add_row(row["key"] + status, *(_format(row[c]) for c in choice_columns),
                      f"{row['epochs']}{' (stopped)' if row['stopped_early'] else ''}",
                      *(_format(row.get(m)) for m in measures), *(["★" if row["key"] in front else ""] if pareto else []),
                      (row["run_id"] or "")[:8])
    return table


def search_command(
    space: Optional[str] = typer.Argument(None, help="Search space JSON file or template name "
                                                     "(circles-vqc, digits-quantum-block, quantum-placement, "
                                                     "digits-mlp-16)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (default: the template's own)."),
    option: list[str] = typer.Option([], "--option", "-o", help="Dataset option key=value (repeatable)."),
    strategy: str = typer.Option("random", "--strategy", help="exhaustive, random, evolutionary, vqe or supernet."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Distinct candidates to train (default: all, ≤16)."),
    objective: Optional[str] = typer.Option(None, "--objective", help="Measure to optimise (default by task)."),
    epochs: int = typer.Option(5, "--epochs", help="Epochs per candidate (the last rung with --halving)."),
    lr: float = typer.Option(0.05, "--lr"),
    batch_size: int = typer.Option(32, "--batch-size"),
    seed: int = typer.Option(0, "--seed"),
    target: str = typer.Option("torch", "--target"),
    halving: bool = typer.Option(False, "--halving", help="Successive halving: weak candidates stop early."),
    eta: int = typer.Option(2, "--eta", help="Successive halving keeps the best 1/eta at each rung."),
    workers: int = typer.Option(1, "--workers", help="Parallel local worker processes (1: this process)."),
    backend: str = typer.Option("local", "--backend", help="local or ray."),
    store_path: Optional[Path] = typer.Option(None, "--store", help="Run store file (default: user data dir)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue the search with this id."),
    pareto: Optional[str] = typer.Option("val_accuracy,parameters", "--pareto",
                                         help="Two measures whose Pareto front is starred, e.g. val_loss,parameters."),
    top: int = typer.Option(20, "--top", help="Rows of the results table."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the results (every candidate) as JSON."),
    list_searches: bool = typer.Option(False, "--list", help="List the searches in the store and exit."),
) -> None:
    """Search a space of hybrid architectures; every candidate is a run recorded under the search."""
    if list_searches:
        _print_searches(_store(store_path))
        return
    from ..data import DatasetError
    from ..store import StoreError
    from ..training import TrainingError
    from .objectives import ObjectiveError, check_measure
    from .records import SearchRecords
    from .runner import SearchError, search
    from .space import SpaceError, load_space
    from .strategies import StrategyError
    from .templates import SPACE_DATASETS

    options = parse_key_values(option, "dataset option", "n_samples=200")
    try:
        pair = tuple(check_measure(p.strip()) for p in pareto.split(",")) if pareto else None
    except ObjectiveError as err:
        _fail(f"--pareto: {err}")
    if pair is not None and len(pair) != 2:
        _fail("--pareto takes two measures separated by a comma, e.g. val_accuracy,parameters")
    if resume is None:
        if space is None:
            _fail("give a search space (a JSON file or a template name) or --resume SEARCH_ID")
        try:
            space_obj = load_space(space)
        except SpaceError as err:
            _fail(str(err))
        if dataset is None:
            if space not in SPACE_DATASETS:
                _fail("--dataset is needed with a space file (e.g. --dataset circles)")
            dataset, defaults = SPACE_DATASETS[space]
            options = {**defaults, **options}
        space = space_obj
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console)
    task_id = None
    best: dict = {}

    def on_event(event: dict) -> None:
        nonlocal task_id
        if event["kind"] == "start":
            console.print(f"search {event['search_id']} ({event['strategy']} over {event['space']}, "
                          f"objective {event['objective']}); resume with --resume {event['search_id']}")
            task_id = progress.add_task("candidates", total=event["budget"], status="")
        elif event["kind"] == "candidate" and task_id is not None:
            value = event["measures"].get(best.get("objective", ""))
            status = f"{event['key']}: {event['status']}" + (f" {value:.4g}" if isinstance(value, float) else "")
            progress.update(task_id, completed=event["done"], status=status)

    try:
        with progress:
            if resume is not None:
                best["objective"] = SearchRecords(_store(store_path)).get(resume).settings["objective"]
            else:
                from .objectives import default_objective

                first = next(c for c in space.candidates() if c.valid) if space.size else None
                best["objective"] = objective or (default_objective(first.spec.task) if first else "val_loss")
            results = search(space, dataset, strategy=strategy, budget=budget, objective=objective, epochs=epochs,
                             train={"lr": lr, "batch_size": batch_size, "seed": seed, "target": target},
                             dataset_options=options, seed=seed, workers=workers, backend=backend, halving=halving,
                             eta=eta, store=_store(store_path), resume=resume, on_event=on_event)
    except (SpaceError, SearchError, StrategyError, DatasetError, TrainingError, StoreError, ObjectiveError,
            StopIteration) as err:
        _fail(str(err) or "the space has no valid candidate")
    out_console = Console()
    if not out_console.is_terminal:  # a file or pipe gets the whole table, not 80 columns of wrapped cells
        out_console = Console(width=200)
    out_console.print(results_table(results, top, pair))
    if results.best:
        console.print(f"best: {results.best['key']} (run {results.best['run_id']}); "
                      f"{results.objective} = {_format(results.best.get(results.objective))}")
    report = {k: v for k, v in results.report.items() if k not in ("probabilities", "energy_curves", "architecture")}
    console.print(f"report: {json.dumps(report, default=str)}")
    if out:
        out.write_text(results.to_json())
        console.print(f"results written to {out}")


def _print_searches(store) -> None:
    from .objectives import cost
    from .records import SearchRecords

    records = SearchRecords(store)
    table = Table(title=f"searches in {store.path}")
    for column in ("id", "name", "status", "created", "candidates", "best"):
        table.add_column(column, overflow="fold")
    for record in records.list():
        rows = records.candidates(record.id)
        objective = record.settings["objective"]
        done = [r for r in rows if r["status"] == "completed"]
        top = min(done, key=lambda r: cost(objective, r["measures"].get(objective)), default=None)
        best = f"{top['key']} ({objective} {_format(top['measures'].get(objective))})" if top else ""
        table.add_row(record.id, record.name, record.status, record.created_at[:19], str(len({r["key"] for r in rows})),
                      best)
    Console(width=160).print(table)


def _store(path: Optional[Path]):
    from ..store import RunStore, StoreError

    try:
        return RunStore(path)
    except StoreError as err:
        _fail(str(err))
