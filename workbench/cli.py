"""The `workbench` command line: train, inspect runs, describe specs, serve the GUI, run benchmarks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .bench.cli import bench_app
from .engine.gradients import method_names
from .notebooks import notebooks_app

app = typer.Typer(help="Hybrid Quantum Workbench: build, train and benchmark hybrid quantum-classical networks.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
runs_app = typer.Typer(help="Inspect, export, resume and delete recorded training runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _load_spec(spec: Optional[Path], template: Optional[str]):
    from . import templates
    from .spec import SpecError, load_spec

    if (spec is None) == (template is None):
        _fail("give exactly one of --spec FILE or --template NAME "
              f"(templates: {', '.join(templates.names())})")
    try:
        return templates.get(template) if template else load_spec(spec)
    except KeyError as err:
        _fail(str(err).strip("'\""))
    except SpecError as err:
        _fail(str(err))


def _store(path: Optional[Path]):
    from .store import RunStore, StoreError

    try:
        return RunStore(path)
    except StoreError as err:
        _fail(str(err))


def _parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        if "=" not in pair:
            _fail(f"dataset option {pair!r} must look like key=value, e.g. noise=0.1")
        key, value = pair.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _target_options(pairs: list[str]) -> dict[str, str] | None:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"--target-option {pair!r} must look like key=value, e.g. mapping_file=iqm.txt")
        options[key] = value
    return options or None


@app.command()
def train(
    spec: Optional[Path] = typer.Option(None, "--spec", help="Architecture spec JSON file."),
    template: Optional[str] = typer.Option(None, "--template", help="A starter template name."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (default: the template's own)."),
    option: list[str] = typer.Option([], "--option", "-o", help="Dataset option key=value (repeatable)."),
    epochs: int = typer.Option(20, "--epochs"),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(0.05, "--lr"),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam, sgd, rmsprop or lbfgs."),
    seed: int = typer.Option(0, "--seed"),
    target: str = typer.Option("torch", "--target", help="torch, torch-density, qpp-cpu, density-matrix-cpu, nvidia, …"),
    gradient: str = typer.Option("auto", "--gradient", help=", ".join(method_names()) + "."),
    shots: Optional[int] = typer.Option(None, "--shots"),
    noise: Optional[str] = typer.Option(None, "--noise", help='JSON, e.g. \'{"depolarizing": 0.01}\''),
    device: str = typer.Option("cpu", "--device"),
    target_option: list[str] = typer.Option([], "--target-option",
                                            help="CUDA-Q target option key=value (repeatable), e.g. "
                                                 "mapping_file=iqm.txt for --target iqm."),
    emulate: bool = typer.Option(True, "--emulate/--no-emulate",
                                 help="Hardware targets run in CUDA-Q's local emulation (the default)."),
    early_stopping: Optional[int] = typer.Option(None, "--early-stopping", help="Patience in epochs."),
    baseline: bool = typer.Option(False, "--baseline", help="Also train the matched classical baseline."),
    store_path: Optional[Path] = typer.Option(None, "--store", help="Run store file (default: user data dir)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write final metrics and the run id as JSON."),
    save_model: Optional[Path] = typer.Option(None, "--save-model", help="Save the trained model here."),
) -> None:
    """Train a network on a dataset, with a live progress bar; the run is recorded in the run store."""
    from .data import DatasetError, load_dataset
    from .templates import DEFAULT_DATASETS
    from .training import TrainConfig, Trainer, TrainingError, matched_classical_spec

    architecture = _load_spec(spec, template)
    options = _parse_options(option)
    if dataset is None:
        if template not in DEFAULT_DATASETS:
            _fail("--dataset is needed with --spec (e.g. --dataset circles)")
        dataset, defaults = DEFAULT_DATASETS[template]
        options = {**defaults, **options}
    try:
        noise_model = json.loads(noise) if noise else None
    except json.JSONDecodeError as err:
        _fail(f"--noise must be JSON like '{{\"depolarizing\": 0.01}}': {err}")
    store = _store(store_path)
    try:
        data = load_dataset(dataset, **options)
        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
                             target=target, gradient=gradient, shots=shots, noise=noise_model, device=device,
                             early_stopping=early_stopping, emulate=emulate,
                             target_options=_target_options(target_option))
        trainer = Trainer(architecture, data, config, store=store)
    except (DatasetError, TrainingError, ValueError, RuntimeError) as err:
        _fail(str(err))
    result = _run_with_progress(trainer, f"{architecture.name} on {dataset}")
    summary = {"run_id": result.run_id, "status": result.status, "final": result.final,
               "gradient": trainer.model.gradient_info(), "store": str(store.path)}
    if baseline and result.status == "completed":
        classical = Trainer(matched_classical_spec(architecture), data, config, store=store,
                            parent_id=result.run_id)
        base = _run_with_progress(classical, "matched classical baseline")
        summary["baseline"] = {"run_id": base.run_id, "status": base.status, "final": base.final}
    if save_model:
        trainer.model.save(save_model)
        summary["model"] = str(save_model)
    _print_final(summary)
    if out:
        out.write_text(json.dumps(summary, indent=2))
    if result.status == "failed":
        _fail(result.final.get("error", "training failed"), code=1)


def _run_with_progress(trainer, label: str):
    total = trainer.config.epochs * trainer.steps_per_epoch
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(label, total=total, status="", completed=trainer._position["step"])

        def on_event(event: dict) -> None:
            if event["kind"] == "step":
                metric = event["metric"]
                progress.update(task, completed=event["step"] + 1,
                                status=f"loss {event['loss']:.4f} {metric} {event[metric]:.3f}")
            elif event["kind"] == "epoch" and "val_loss" in event:
                progress.update(task, status=f"epoch {event['epoch'] + 1}: val loss {event['val_loss']:.4f}")

        subscription = trainer.stream.subscribe(on_event, replay=False)
        try:
            result = trainer.run()
        except KeyboardInterrupt:
            trainer.cancel()
            raise
        finally:
            subscription.join(timeout=5)
    return result


def _print_final(summary: dict) -> None:
    table = Table(title=f"run {summary['run_id']} ({summary['status']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary["final"].items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    if "baseline" in summary:
        for key, value in summary["baseline"]["final"].items():
            table.add_row(f"baseline {key}", f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)


@runs_app.command("list")
def runs_list(store_path: Optional[Path] = typer.Option(None, "--store"),
              status: Optional[str] = typer.Option(None, "--status"),
              limit: int = typer.Option(50, "--limit")) -> None:
    """List recorded runs, newest first."""
    store = _store(store_path)
    store.mark_stale_running_as_interrupted()
    table = Table(title=f"runs in {store.path}")
    table.add_column("id", no_wrap=True, min_width=12)
    for column in ("name", "status", "created", "dataset", "target", "final"):
        table.add_column(column, overflow="fold")
    for run in store.list_runs(status=status, limit=limit):
        final = run.final_metrics or {}
        headline = ", ".join(f"{k}={v:.3f}" for k, v in final.items() if k.startswith("test_") and
                             isinstance(v, float))
        table.add_row(run.id, run.name, run.status, run.created_at[:19], run.dataset.get("name", ""),
                      run.config.get("target", ""), headline)
    Console().print(table)


@runs_app.command("show")
def runs_show(run_id: str, store_path: Optional[Path] = typer.Option(None, "--store")) -> None:
    """Show one run: spec summary, config, environment, final metrics and history length."""
    from .store import StoreError

    store = _store(store_path)
    try:
        run = store.get_run(run_id)
    except StoreError as err:
        _fail(str(err))
    epochs = store.events(run.id, kind="epoch")
    info = {"id": run.id, "name": run.name, "status": run.status, "created": run.created_at,
            "dataset": run.dataset.get("name"), "config": run.config, "environment": run.environment,
            "final": run.final_metrics, "epochs_recorded": len(epochs), "parent": run.parent_id}
    Console().print_json(json.dumps(info, default=str))


@runs_app.command("export")
def runs_export(run_id: str, out: Path = typer.Option(..., "--out"),
                fmt: str = typer.Option("json", "--format", help="json or csv"),
                store_path: Optional[Path] = typer.Option(None, "--store")) -> None:
    """Export a run (record and full history) as JSON or CSV."""
    from .store import StoreError

    if fmt not in ("json", "csv"):
        _fail("--format must be json or csv")
    try:
        path = _store(store_path).export_run(run_id, out, fmt)
    except StoreError as err:
        _fail(str(err))
    console.print(f"exported to {path}")


@runs_app.command("compare")
def runs_compare(run_ids: list[str], metric: str = typer.Option("val_loss", "--metric"),
                 kind: str = typer.Option("epoch", "--kind", help="epoch or step events."),
                 store_path: Optional[Path] = typer.Option(None, "--store")) -> None:
    """Compare runs side by side: a metric per epoch (or step), one column per run, plus final metrics."""
    from .store import StoreError

    store = _store(store_path)
    try:
        series = store.compare(run_ids, metric, kind)
        records = [store.get_run(run_id) for run_id in series]
    except StoreError as err:
        _fail(str(err))
    table = Table(title=f"{metric} per {kind}")
    table.add_column(kind)
    for record in records:
        table.add_column(f"{record.name} ({record.id[:8]})", justify="right")
    by_run = [dict(points) for points in series.values()]
    for step in sorted({step for points in by_run for step in points}):
        table.add_row(str(step), *(f"{points[step]:.4f}" if step in points else "" for points in by_run))
    finals = sorted({k for r in records for k, v in (r.final_metrics or {}).items() if isinstance(v, float)})
    for key in finals:
        table.add_row(f"final {key}", *(f"{(r.final_metrics or {}).get(key, float('nan')):.4f}" for r in records))
    Console().print(table)


@runs_app.command("resume")
def runs_resume(run_id: str, store_path: Optional[Path] = typer.Option(None, "--store"),
                epochs: Optional[int] = typer.Option(None, "--epochs", help="Raise the epoch count."),
                out: Optional[Path] = typer.Option(None, "--out")) -> None:
    """Continue an interrupted or cancelled run from its last checkpoint."""
    from .store import StoreError
    from .training import TrainingError, resume

    store = _store(store_path)
    try:
        trainer = resume(run_id, store, epochs=epochs)
    except (StoreError, TrainingError) as err:
        _fail(str(err))
    result = _run_with_progress(trainer, f"resume {trainer.run_id}")
    summary = {"run_id": result.run_id, "status": result.status, "final": result.final,
               "gradient": trainer.model.gradient_info(), "store": str(store.path)}
    _print_final(summary)
    if out:
        out.write_text(json.dumps(summary, indent=2))


@runs_app.command("delete")
def runs_delete(run_id: str, store_path: Optional[Path] = typer.Option(None, "--store")) -> None:
    """Delete a run with its history and checkpoints."""
    from .store import StoreError

    try:
        _store(store_path).delete_run(run_id)
    except StoreError as err:
        _fail(str(err))
    console.print(f"deleted {run_id}")


@app.command()
def describe(spec: Path, target: str = typer.Option("torch", "--target"),
             gradient: str = typer.Option("auto", "--gradient"), batch: int = typer.Option(32, "--batch")) -> None:
    """Print blocks, shapes, parameter counts, qubits, target, gradient method and memory estimate of a spec."""
    from . import compile as compile_spec

    architecture = _load_spec(spec, None)
    try:
        model = compile_spec(architecture, target=target, gradient=gradient)
    except (ValueError, RuntimeError, MemoryError) as err:
        _fail(str(err))
    model.describe(batch=batch, file=sys.stdout)


@app.command()
def templates() -> None:
    """List the starter templates."""
    from . import templates as t

    for name in t.names():
        Console().print(f"[bold]{name}[/]: {t.get(name).description}")


@app.command()
def serve(port: int = typer.Option(5006, "--port"), address: str = typer.Option("localhost", "--address"),
          show: bool = typer.Option(False, "--show/--no-show", help="Open a browser tab.")) -> None:
    """Serve the workbench GUI on localhost."""
    from .gui.server import serve as serve_gui

    serve_gui(port=port, address=address, show=show)


app.add_typer(bench_app, name="bench")
app.add_typer(notebooks_app, name="notebooks")


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    app()


if __name__ == "__main__":
    main()
