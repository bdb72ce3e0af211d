"""The classroom notebooks: execute them headless, or render them to HTML with their outputs.

    from workbench import notebooks
    notebooks.run_all(quick=True)                 # every notebook, reduced sizes (WORKBENCH_QUICK=1)
    notebooks.render_all("notebooks/html")        # full settings, HTML with interactive plots, offline

The notebooks live in `notebooks/` (numbered 01_… to 07_…) and are stored without outputs. Each one
reads WORKBENCH_QUICK from its environment: set, it runs reduced sizes (small data, few epochs, few
qubits) that finish in well under two minutes on two cores; unset, it reproduces its paper as closely
as the machine allows. Every notebook asserts its key result, so a broken demo fails when executed.

Execution needs a Jupyter kernel named `python3` that runs this environment's Python, installed with

    python -m ipykernel install --sys-prefix --name python3

The typer app `notebooks_app` (commands `run` and `render`) is mounted by the CLI as
`workbench notebooks`.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import typer

QUICK_ENV = "WORKBENCH_QUICK"
KERNEL_NAME = "python3"
DEFAULT_TIMEOUT = 1800  # seconds per cell; full settings train for minutes in one cell
INSTALL_KERNEL = "python -m ipykernel install --sys-prefix --name python3"


def notebook_dir() -> Path:
    """The notebooks/ folder of the source tree (next to the workbench package)."""
    env = os.environ.get("WORKBENCH_NOTEBOOK_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "notebooks"


class NotebookError(RuntimeError):
    """A notebook that could not be found or failed to execute; the message names it and the failing cell."""


@dataclass
class NotebookRun:
    name: str
    path: Path
    seconds: float
    quick: bool
    html: Path | None = None


def notebook_paths(names: Sequence[str] | None = None) -> list[Path]:
    """The numbered notebooks in order; `names` selects by file name, stem or number prefix ('01', '05_param')."""
    folder = notebook_dir()
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())
    if not paths:
        raise NotebookError(f"no notebooks found in {folder}: expected files like 01_vqc_circles.ipynb")
    if not names:
        return paths
    chosen = []
    for name in names:
        matches = [p for p in paths if p.name == name or p.stem == name or p.name.startswith(name)]
        if not matches:
            raise NotebookError(f"no notebook matches {name!r}; the notebooks are: "
                                f"{', '.join(p.stem for p in paths)}")
        chosen += [p for p in matches if p not in chosen]
    return chosen


@contextlib.contextmanager
def _quick_env(quick: bool) -> Iterator[None]:
    """WORKBENCH_QUICK set (or removed) for kernels started inside the block; the old value comes back after."""
    old = os.environ.get(QUICK_ENV)
    if quick:
        os.environ[QUICK_ENV] = "1"
    else:
        os.environ.pop(QUICK_ENV, None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(QUICK_ENV, None)
        else:
            os.environ[QUICK_ENV] = old


def execute(path: str | Path, *, quick: bool, timeout: int = DEFAULT_TIMEOUT, kernel_name: str = KERNEL_NAME):
    """Execute one notebook in its own folder and return the executed nbformat node (outputs filled in)."""
    import nbformat
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.parent)}})
    with _quick_env(quick):
        try:
            client.execute()
        except CellExecutionError as err:
            raise NotebookError(f"{path.name} failed ({'quick' if quick else 'full'} settings):\n{err}") from None
        except CellTimeoutError as err:
            raise NotebookError(f"{path.name}: a cell ran longer than {timeout} s ({err}); raise --timeout or use "
                                "--quick") from None
        except DeadKernelError as err:
            raise NotebookError(f"{path.name}: the kernel died ({err}); out of memory?") from None
        except NoSuchKernel as err:
            raise NotebookError(f"no Jupyter kernel named {kernel_name!r} ({err}): install one with "
                                f"`{INSTALL_KERNEL}`") from None
    return nb


def run_all(quick: bool = True, names: Sequence[str] | None = None, *, timeout: int = DEFAULT_TIMEOUT,
            kernel_name: str = KERNEL_NAME, echo: bool = False) -> list[NotebookRun]:
    """Execute the notebooks (all, or those named) headless; raise NotebookError at the first failure."""
    runs = []
    for path in notebook_paths(names):
        start = time.perf_counter()
        execute(path, quick=quick, timeout=timeout, kernel_name=kernel_name)
        run = NotebookRun(path.stem, path, time.perf_counter() - start, quick)
        runs.append(run)
        if echo:
            typer.echo(f"{run.name}: ok in {run.seconds:.1f} s")
    return runs


def to_html(nb) -> str:
    """HTML of an executed notebook; Plotly figures carry plotly.js inline, so the page works offline."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    body, _ = exporter.from_notebook_node(nb)
    return body


def render_all(out_dir: str | Path = "notebooks/html", quick: bool = False, names: Sequence[str] | None = None, *,
               timeout: int = DEFAULT_TIMEOUT, kernel_name: str = KERNEL_NAME,
               echo: bool = False) -> list[NotebookRun]:
    """Execute the notebooks and write each as HTML with its outputs to `out_dir` (plus an index.html)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for path in notebook_paths(names):
        start = time.perf_counter()
        nb = execute(path, quick=quick, timeout=timeout, kernel_name=kernel_name)
        html = out / f"{path.stem}.html"
        html.write_text(to_html(nb), encoding="utf-8")
        run = NotebookRun(path.stem, path, time.perf_counter() - start, quick, html)
        runs.append(run)
        if echo:
            typer.echo(f"{run.name}: {html} ({run.seconds:.1f} s)")
    _write_index(out, runs)
    return runs


def _write_index(out: Path, runs: list[NotebookRun]) -> None:
    import html as _html

    items = "\n".join(f'<li><a href="{_html.escape(r.html.name)}">{_html.escape(r.name)}</a> '
                      f'({"quick" if r.quick else "full"} settings, executed in {r.seconds:.0f} s)</li>'
                      for r in runs if r.html is not None)
    (out / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Hybrid Quantum Workbench notebooks</title>"
        f"</head><body><h1>Hybrid Quantum Workbench notebooks</h1><ul>\n{items}\n</ul></body></html>\n",
        encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# CLI: mounted as `workbench notebooks`.

notebooks_app = typer.Typer(help="Execute the classroom notebooks headless, or render them to HTML.",
                            no_args_is_help=True)


def _names_option() -> Optional[list[str]]:
    return typer.Option(None, "--only", "-n", help="A notebook to include (file name, stem or number like 03); "
                                                   "repeatable. Default: all.")


@notebooks_app.command("run")
def run_command(
    quick: bool = typer.Option(False, "--quick", help="Reduced sizes (WORKBENCH_QUICK=1), as CI runs them."),
    only: Optional[list[str]] = _names_option(),
    timeout: int = typer.Option(DEFAULT_TIMEOUT, "--timeout", help="Seconds allowed per cell."),
) -> None:
    """Execute the notebooks; fails on the first notebook whose cells raise (e.g. a result assertion)."""
    try:
        runs = run_all(quick=quick, names=only, timeout=timeout, echo=True)
    except NotebookError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(runs)} notebook(s) ran in {sum(r.seconds for r in runs):.1f} s")


@notebooks_app.command("render")
def render_command(
    out: Path = typer.Option(Path("notebooks/html"), "--out", help="Folder for the HTML files."),
    quick: bool = typer.Option(False, "--quick", help="Reduced sizes (WORKBENCH_QUICK=1)."),
    only: Optional[list[str]] = _names_option(),
    timeout: int = typer.Option(DEFAULT_TIMEOUT, "--timeout", help="Seconds allowed per cell."),
) -> None:
    """Execute the notebooks and write HTML with outputs (interactive Plotly figures, viewable offline)."""
    try:
        runs = render_all(out, quick=quick, names=only, timeout=timeout, echo=True)
    except NotebookError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1)
    typer.echo(f"wrote {len(runs)} notebook(s) and index.html to {out}")
