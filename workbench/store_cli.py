"""`workbench runs check` and `workbench runs recover`: the run store's full integrity check and
the copy of what is readable out of a damaged store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def runs_check(store_path: Optional[Path] = typer.Option(None, "--store", help="Run store file (default: the user's).")
               ) -> None:
    """Run SQLite's full integrity check on the run store; exit 1 and list the problems if it is damaged."""
    from .store import StoreError, default_store_path
    from .store_integrity import integrity_problems

    path = (store_path or default_store_path()).expanduser()
    if not path.is_file():
        raise StoreError(f"no run store file at {path}: check the --store path")
    problems = integrity_problems(path)
    if not problems:
        Console().print(f"{path}: ok (full integrity check passed)")
        return
    console.print(f"[bold red]{path} is damaged[/] ({len(problems)} problem(s) shown):")
    for problem in problems:
        console.print(f"  {problem}")
    console.print(f"Copy out what is readable with `workbench runs recover --store {path} --out NEW.sqlite3`, "
                  "then use the new file (--store NEW.sqlite3 or WORKBENCH_STORE).")
    raise typer.Exit(1)


def runs_recover(out: Path = typer.Option(..., "--out", help="The new store file to write."),
                 store_path: Optional[Path] = typer.Option(None, "--store", help="The damaged run store.")) -> None:
    """Copy every readable run, event and checkpoint of a (damaged) run store into a new store file."""
    from .store import StoreError, default_store_path
    from .store_integrity import recover_store

    path = (store_path or default_store_path()).expanduser()
    if not path.is_file():
        raise StoreError(f"no run store file at {path}: check the --store path")
    report = recover_store(path, out.expanduser())
    partly = report["partly_readable"]
    lost = report.get("events_without_run", 0) + report.get("checkpoints_without_run", 0)
    Console().print(f"recovered {report['runs']} run(s), {report['events']} event(s) and {report['checkpoints']} "
                    f"checkpoint(s) into {out}" + (f"; damaged, partly read: {', '.join(partly)}" if partly else "")
                    + (f"; {lost} event(s)/checkpoint(s) of lost runs left out" if lost else ""))


def register(runs_app: typer.Typer) -> None:
    """Mount the commands on the `runs` group."""
    runs_app.command("check")(runs_check)
    runs_app.command("recover")(runs_recover)
