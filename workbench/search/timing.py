"""Search wall time with 1 and N workers: `python -m workbench.search.timing --workers 1,2 --repeats 2`.

Runs the same search (same space, seed and budget) with each worker count, alternating the counts so that a
change in machine load hits them alike; prints a table of wall and CPU seconds (this process and its worker
processes) and writes JSON. The result sets must agree, so the check of determinism comes for free.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

from .objectives import DETERMINISTIC
from .runner import search


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(workers: list[int], repeats: int, *, space: str, dataset: str, dataset_options: dict, budget: int,
            epochs: int, strategy: str) -> list[dict]:
    rows, outcomes = [], {}
    for repeat in range(repeats):
        for count in workers:
            store = Path(tempfile.mkdtemp()) / "runs.sqlite3"
            cpu, start = _cpu_seconds(), time.perf_counter()
            results = search(space, dataset, strategy=strategy, budget=budget, epochs=epochs,
                             dataset_options=dataset_options, store=store, workers=count, seed=0)
            wall = time.perf_counter() - start
            outcome = sorted((r["key"], *(r.get(m) for m in DETERMINISTIC)) for r in results.final_rows())
            outcomes.setdefault(count, outcome)
            rows.append({"workers": count, "repeat": repeat, "wall_s": wall, "cpu_s": _cpu_seconds() - cpu,
                         "candidates": len(results.final_rows()), "same_results": outcome == outcomes[workers[0]]})
    return rows


def main(workers: str = typer.Option("1,2", "--workers"), repeats: int = typer.Option(2, "--repeats"),
         space: str = typer.Option("digits-quantum-block", "--space"), dataset: str = typer.Option("digits", "--dataset"),
         limit: int = typer.Option(600, "--limit", help="Dataset samples (option 'limit')."),
         budget: int = typer.Option(8, "--budget"), epochs: int = typer.Option(3, "--epochs"),
         strategy: str = typer.Option("random", "--strategy"),
         out: Optional[Path] = typer.Option(None, "--out", help="Write the rows as JSON.")) -> None:
    counts = [int(w) for w in workers.split(",")]
    rows = measure(counts, repeats, space=space, dataset=dataset, dataset_options={"limit": limit}, budget=budget,
                   epochs=epochs, strategy=strategy)
    print(f"{'workers':>8}{'repeat':>8}{'wall s':>10}{'cpu s':>10}{'candidates':>12}{'same':>6}")
    for row in rows:
        print(f"{row['workers']:>8}{row['repeat']:>8}{row['wall_s']:>10.1f}{row['cpu_s']:>10.1f}"
              f"{row['candidates']:>12}{str(row['same_results']):>6}")
    for count in counts:
        walls = [r["wall_s"] for r in rows if r["workers"] == count]
        print(f"workers={count}: mean wall {sum(walls) / len(walls):.1f} s")
    if out:
        out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    typer.run(main)
