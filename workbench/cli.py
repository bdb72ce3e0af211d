"""The `workbench` command line: train, inspect runs, describe specs, serve the GUI, run benchmarks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .bench.cli import bench_app
from .cli_errors import GuardedGroup, one_line, parse_key_values
from .engine.gradients import method_names
from .notebooks import notebooks_app
from .rl.cli import rl_app
from .store_cli import register as register_store_commands
from .search.cli import search_command

app = typer.Typer(help="Hybrid Quantum Workbench: build, train and benchmark hybrid quantum-classical networks.",
                  no_args_is_help=True, pretty_exceptions_enable=False, cls=GuardedGroup)
runs_app = typer.Typer(help="Inspect, export, resume and delete recorded training runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
register_store_commands(runs_app)
console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {escape(one_line(message))}")
    raise typer.Exit(code)


def _load_spec(spec: Optional[Path], template: Optional[str], spec_form: str = "--spec FILE"):
    from . import templates
    from .spec import SpecError, load_spec

    if (spec is None) == (template is None):
        _fail(f"give exactly one of {spec_form} or --template NAME "
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


def _check_output(path: Optional[Path], option: str, *, creates_directories: bool = False) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    if path is None:
        return
    if path.is_dir():
        _fail(f"{option} {path} is a directory: give a file path such as {path / 'result.json'}")
    if creates_directories:
        return
    if not path.parent.is_dir():
        _fail(f"{option} {path}: the directory {path.parent} does not exist: create it or choose another path")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        _fail(f"{option} {path} is not writable: choose a path in a directory you can write to")


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
    gradient_option: list[str] = typer.Option([], "--gradient-option", help="Gradient setting key=value (repeatable), "
                                              "e.g. refit_steps=20 for --gradient surrogate."),
    noise: Optional[str] = typer.Option(None, "--noise", help='JSON, e.g. \'{"depolarizing": 0.01}\''),
    device: str = typer.Option("cpu", "--device"),
    target_option: list[str] = typer.Option([], "--target-option",
                                            help="CUDA-Q target option key=value (repeatable), e.g. "
                                                 "mapping_file=iqm.txt for --target iqm."),
    emulate: bool = typer.Option(True, "--emulate/--no-emulate",
                                 help="Hardware targets run in CUDA-Q's local emulation (the default)."),
    early_stopping: Optional[int] = typer.Option(None, "--early-stopping", help="Patience in epochs."),
    baseline: bool = typer.Option(False, "--baseline", help="Also train the matched classical baseline."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Run on Ray: ray://HOST:PORT or auto "
                                          "(default: $WORKBENCH_CLUSTER, else a local worker process)."),
    nproc: int = typer.Option(1, "--nproc", help="Train data-parallel over N local processes (DDP: gloo on CPU, "
                              "nccl with one GPU per process)."),
    yes: bool = typer.Option(False, "--yes", help="Start a hardware run without asking after the cost preview."),
    store_path: Optional[Path] = typer.Option(None, "--store", help="Run store file (default: user data dir)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write final metrics and the run id as JSON."),
    save_model: Optional[Path] = typer.Option(None, "--save-model", help="Save the trained model here."),
) -> None:
    """Train a network on a dataset, with a live progress bar; the run is recorded in the run store."""
    from .data import DatasetError, load_dataset
    from .templates import DEFAULT_DATASETS
    from .training import TrainConfig, TrainingError, matched_classical_spec

    architecture = _load_spec(spec, template)
    _check_output(out, "--out")
    _check_output(save_model, "--save-model", creates_directories=True)  # model.save makes missing directories
    options = parse_key_values(option, "--option", "noise=0.1")
    if dataset is None:
        if template not in DEFAULT_DATASETS:
            _fail("--dataset is needed with --spec (e.g. --dataset circles)")
        dataset, defaults = DEFAULT_DATASETS[template]
        options = {**defaults, **options}
    try:
        noise_model = json.loads(noise) if noise else None
    except json.JSONDecodeError as err:
        _fail(f"--noise must be JSON like '{{\"depolarizing\": 0.01}}': {err}")
    from .engine.plan import resolve
    from .jobs.api import cluster_from, make_job
    from .jobs.cost import estimate, needs_preview
    from .jobs.spec import JobSpec

    store = _store(store_path)
    try:
        store.check_writable()
        data = load_dataset(dataset, **options)
        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
                             target=target, gradient=gradient, shots=shots, noise=noise_model, device=device,
                             early_stopping=early_stopping, emulate=emulate,
                             target_options=_target_options(target_option),
                             gradient_options=parse_key_values(gradient_option, "--gradient-option", "refit_steps=20") or None)
        runs_here = cluster_from(cluster) is None and nproc == 1  # data-parallel runs check their GPUs per process
        for block in architecture.quantum_blocks():  # a target that cannot run says so before any preview
            plan = resolve(config.execution, block)
            plan.check_runs_here() if runs_here else plan.check()
        cost = estimate(architecture, config, n_train=len(data.X_train), n_test=len(data.X_test))
        job = make_job(JobSpec.training(architecture, data, config), store=store, cluster=cluster)
    except (DatasetError, TrainingError, ValueError, RuntimeError) as err:
        _fail(str(err))
    if nproc > 1:
        _train_distributed(architecture, data, config, nproc, store, cluster, baseline, save_model, out)
        return
    if needs_preview(config):
        console.print(f"[bold]cost preview ({target}):[/] {cost.summary()}")
        if not yes and not typer.confirm("start this run?", default=True, err=True):
            _fail("not started", code=1)
    total = cost.steps_per_epoch * config.epochs
    result = _run_job(job, f"{architecture.name} on {dataset}", total)
    summary = {"run_id": result.run_id, "status": result.status, "final": result.final,
               "gradient": result.gradient, "store": str(store.path)}
    if baseline and result.status == "completed":
        classical = make_job(JobSpec.training(matched_classical_spec(architecture), data, config,
                                              parent_id=result.run_id), store=store, cluster=cluster)
        base = _run_job(classical, "matched classical baseline", total)
        summary["baseline"] = {"run_id": base.run_id, "status": base.status, "final": base.final}
    if save_model and result.model is not None:
        result.model.save(save_model)
        summary["model"] = str(save_model)
    _print_final(summary)
    if out:
        out.write_text(json.dumps(summary, indent=2))
    if result.status == "failed":
        _fail(result.final.get("error", "training failed"), code=1)


def _train_distributed(architecture, data, config, nproc, store, cluster, baseline, save_model, out) -> None:
    from .jobs.cli import train_distributed

    if cluster or baseline:
        _fail("--nproc trains one run data-parallel on this machine: leave out --cluster and --baseline")
    try:
        summary = train_distributed(architecture, data, config, nproc, store, console, architecture.name)
    except (KeyboardInterrupt, ValueError, RuntimeError) as err:
        _fail_distributed(err)
    _finish_distributed(summary, architecture, config, save_model, store, out)


def _fail_distributed(err: BaseException) -> None:
    """One message for a data-parallel run that stopped (Ctrl-C/SIGTERM: code 130) or was refused, naming the
    run when one was recorded."""
    run = getattr(err, "run_id", None)
    if not isinstance(err, KeyboardInterrupt):
        _fail(f"{err} (run {run} is marked failed)" if run else str(err))
    if run is None:
        _fail("interrupted before the data-parallel run was recorded: nothing to resume", code=130)
    _fail(f"interrupted: data-parallel run {run} is marked interrupted; continue it from its last epoch with "
          f"`workbench runs resume {run}`", code=130)


def _finish_distributed(summary: dict, architecture, config, save_model, store, out) -> None:
    state = summary.pop("state_dict")
    if save_model:
        from . import compile as compile_spec

        model = compile_spec(architecture, **config.compile_options())
        model.load_state_dict(state)
        summary["model"] = str(model.save(save_model))
    summary["store"] = str(store.path)
    _print_final(summary)
    if out:
        out.write_text(json.dumps(summary, indent=2))


def _run_job(job, label: str, total: int, done: int = 0):
    """Run a job with the progress bar; Ctrl-C/SIGTERM end it as interrupted (exit code 130)."""
    from .jobs.cli import run_with_progress

    try:
        return run_with_progress(job, label, console, total_steps=total, done_steps=done)
    except KeyboardInterrupt:
        _fail(f"interrupted: run {job.run_id} is marked interrupted; continue it with "
              f"`workbench runs resume {job.run_id}`", code=130)


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
    if store.damage or store.read_only:
        console.print(f"[yellow]warning:[/] {store.path} is " + ("damaged: run `workbench runs check`" if store.damage
                                                                 else "read-only: runs can be read, not recorded"))
    # Short columns never break inside a word; the name and the test metric take what is left (80 columns fit).
    table = Table(title=f"runs in {store.path}", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("id", no_wrap=True, min_width=12)
    table.add_column("name", overflow="fold", min_width=12)
    for column in ("status", "created", "dataset", "target"):
        table.add_column(column, no_wrap=True)
    table.add_column("test", overflow="fold")
    for run in store.list_runs(status=status, limit=limit):
        tests = {k[len("test_"):]: v for k, v in (run.final_metrics or {}).items()
                 if k.startswith("test_") and isinstance(v, float)}
        shown = {k: v for k, v in tests.items() if k != "loss"} or tests  # the task's metric; the loss without one
        table.add_row(run.id, run.name, run.status, run.created_at[5:16].replace("T", " "),
                      run.dataset.get("name", ""), run.config.get("target", ""),
                      ", ".join(f"{k} {v:.3f}" for k, v in shown.items()))
    out = Console()
    # A terminal gets a table of its width; a pipe or a file one wide enough that no value is broken.
    (out if out.is_terminal else Console(width=200)).print(table)


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
                out: Optional[Path] = typer.Option(None, "--out"),
                cluster: Optional[str] = typer.Option(None, "--cluster", help="ray://HOST:PORT or auto."),
                nproc: Optional[int] = typer.Option(None, "--nproc", min=1, help="A data-parallel run: continue it "
                                                    "over N processes [default: as many as trained up to its last "
                                                    "checkpoint].")) -> None:
    """Continue an interrupted or cancelled run from its last checkpoint."""
    from .jobs.api import resume
    from .store import StoreError
    from .training import TrainingError

    _check_output(out, "--out")
    store = _store(store_path)
    try:
        store.check_writable()
        record = store.get_run(run_id)
    except (StoreError, ValueError) as err:
        _fail(str(err))
    if "nproc" in record.config or nproc:
        _resume_distributed(record, store, nproc, epochs, cluster, out)
        return
    try:
        job = resume(run_id, store, epochs=epochs, cluster=cluster)
    except (StoreError, TrainingError, ValueError) as err:
        _fail(str(err))
    from .jobs.cost import estimate
    from .jobs.spec import load_reference
    from .training import UNTIL_PAUSED

    data = load_reference(job.spec.dataset)
    # A playground run that trains until paused has no end: its bar counts steps without a total.
    total = None if job.config.epochs >= UNTIL_PAUSED else estimate(
        job.spec.spec, job.config, n_train=len(data.X_train), n_test=len(data.X_test)).steps_per_epoch * job.config.epochs
    result = _run_job(job, f"resume {job.run_id}", total, len(job.stream.events("step")))
    summary = {"run_id": result.run_id, "status": result.status, "final": result.final,
               "gradient": result.gradient, "store": str(store.path)}
    _print_final(summary)
    if out:
        out.write_text(json.dumps(summary, indent=2))


def _resume_distributed(record, store, nproc, epochs, cluster, out) -> None:
    from .jobs.cli import resume_distributed

    if "nproc" not in record.config:
        _fail(f"run {record.id} was not trained data-parallel: leave out --nproc to resume it as it was trained")
    if cluster:
        _fail("a data-parallel run resumes on this machine: leave out --cluster")
    try:
        summary = resume_distributed(record, store, console, nproc=nproc, epochs=epochs)
    except (KeyboardInterrupt, ValueError, RuntimeError) as err:  # StoreError, TrainingError: RuntimeErrors
        _fail_distributed(err)
    _finish_distributed(summary, None, None, None, store, out)


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
def describe(spec: Optional[Path] = typer.Argument(None, help="Architecture spec JSON file."),
             template: Optional[str] = typer.Option(None, "--template", help="A starter template name instead."),
             target: str = typer.Option("torch", "--target"),
             gradient: str = typer.Option("auto", "--gradient"), batch: int = typer.Option(32, "--batch")) -> None:
    """Print blocks, shapes, parameter counts, qubits, target, gradient method and memory estimate of a spec."""
    from . import compile as compile_spec

    architecture = _load_spec(spec, template, spec_form="a spec FILE")
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
          show: bool = typer.Option(False, "--show/--no-show", help="Open a browser tab."),
          cluster: Optional[str] = typer.Option(None, "--cluster", help="Run the sessions' jobs on Ray: "
                                                "ray://HOST:PORT or auto (default: $WORKBENCH_CLUSTER, else local)."),
          max_jobs: Optional[int] = typer.Option(None, "--max-jobs", help="Concurrent jobs before runs queue "
                                                 "(default: $WORKBENCH_MAX_JOBS, else one per CPU core).")) -> None:
    """Serve the workbench GUI on localhost; every run trains as a job outside the server process."""
    from .gui.server import serve as serve_gui
    from .jobs.api import CLUSTER_VARIABLE, cluster_from

    try:
        cluster_address = cluster_from(cluster)
    except ValueError as err:
        _fail(str(err))
    if cluster_address:
        from .jobs.ray_jobs import connect

        try:
            connect(cluster_address)
        except RuntimeError as err:
            _fail(str(err))
        os.environ[CLUSTER_VARIABLE] = cluster_address
    if max_jobs is not None:
        if max_jobs < 1:
            _fail("--max-jobs must be at least 1")
        os.environ["WORKBENCH_MAX_JOBS"] = str(max_jobs)

    serve_gui(port=port, address=address, show=show)


app.add_typer(bench_app, name="bench")
app.add_typer(notebooks_app, name="notebooks")
app.add_typer(rl_app, name="rl")
app.command("search")(search_command)


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    app()


if __name__ == "__main__":
    main()
