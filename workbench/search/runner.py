"""`search(...)`: run a strategy over a space, every candidate a recorded training run.

The driver owns what strategies must not: training settings, the budget, successive halving, the
dispatcher (in-process, worker processes or Ray), the store, resuming, and progress callbacks.

Example:
    >>> results = search("circles-vqc", "circles", strategy="evolutionary", budget=6, epochs=3,
    ...                  dataset_options={"n_samples": 120}, store="runs.sqlite3", workers=2)
    >>> results.to_pandas().head(); results.best["key"]
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ..store import RunStore
from ..training import TrainConfig
from . import objectives as O
from .dispatch import make_dispatcher
from .evaluate import make_task
from .records import SearchRecords
from .results import SearchResults
from .space import Candidate, SearchSpace, load_space
from .strategies import make_strategy

OnEvent = Callable[[dict], None]


class SearchError(ValueError):
    pass


def halving_rungs(epochs: int, eta: int = 2, min_epochs: int = 1) -> list[int]:
    """Epoch budgets of successive halving, smallest first, ending at `epochs` (e.g. 8, eta 2 -> [2, 4, 8])."""
    if eta < 2 or min_epochs < 1:
        raise SearchError("successive halving needs eta >= 2 and min_epochs >= 1")
    rungs = [epochs]
    while rungs[0] // eta >= min_epochs:
        rungs.insert(0, rungs[0] // eta)
    return rungs


class SearchContext:
    """What strategies see (see strategies.Context): evaluate() trains, records and spends the budget."""

    def __init__(self, *, space: SearchSpace, budget: int, seed: int, options: dict, objective: str,
                 settings: dict, dispatcher, records: SearchRecords | None, store_path: str | None,
                 search_id: str | None, replay: list[dict], on_event: OnEvent | None):
        self.space, self.budget, self.options, self.objective = space, budget, options, objective
        self.rng = random.Random(seed)
        self.settings = settings
        self.dispatcher = dispatcher
        self.records, self.store_path, self.search_id = records, store_path, search_id
        self.on_event = on_event
        self.rows: list[dict] = []  # one per finished evaluation (every rung), in finishing order
        self._costs: dict[str, float] = {}
        self._replay = {(r["key"], r["epochs"]): r for r in replay if r["status"] == "completed"}
        self.replayed = 0

    @property
    def remaining(self) -> int:
        return self.budget - len(self._costs)

    def evaluated(self) -> dict[str, float]:
        return dict(self._costs)

    def evaluate(self, candidates: list[Candidate]) -> list[float]:
        """Costs of the candidates (lower is better). Each new candidate spends one unit of budget; ones
        evaluated before return their cost again for free; invalid ones cost +inf and nothing."""
        fresh, seen = [], set()
        for c in candidates:
            if c.valid and c.key not in self._costs and c.key not in seen and len(fresh) < self.remaining:
                fresh.append(c)
                seen.add(c.key)
        if fresh:
            rungs = self.settings["rungs"]
            survivors = fresh
            run_ids: dict[str, str | None] = {}
            for level, epochs in enumerate(rungs):
                results = self._train(survivors, epochs, run_ids)
                for c, r in zip(survivors, results):
                    run_ids[c.key] = r["run_id"]
                    self._costs[c.key] = O.cost(self.objective, r["measures"].get(self.objective))
                if level + 1 < len(rungs):
                    keep = max(1, math.ceil(len(survivors) / self.settings["eta"]))
                    survivors = sorted(survivors, key=lambda c: self._costs[c.key])[:keep]
        return [self._costs.get(c.key, math.inf) for c in candidates]

    def _train(self, candidates: list[Candidate], epochs: int, run_ids: dict) -> list[dict]:
        cached, tasks = {}, []
        for c in candidates:
            if (c.key, epochs) in self._replay:
                cached[c.key] = self._replay[(c.key, epochs)]
                continue
            train = {**self.settings["train"], **c.train, "epochs": epochs}
            tasks.append(make_task(key=c.key, spec=c.spec.to_dict(), train=train, dataset=self.settings["dataset"],
                                   dataset_options=self.settings["dataset_options"], store=self.store_path,
                                   search_id=self.search_id, run_id=run_ids.get(c.key),
                                   gradient_variance=self.settings["gradient_variance"]))
        by_key = {c.key: c for c in candidates}
        for result in cached.values():
            self.replayed += 1
            self._record(by_key[result["key"]], result, replayed=True)
        if tasks:
            self.dispatcher.run(tasks, on_result=lambda r: self._record(by_key[r["key"]], r))
        found = {row["key"]: row for row in self.rows if row["epochs"] == epochs}
        return [found[c.key] for c in candidates]

    def _record(self, candidate: Candidate, result: dict, replayed: bool = False) -> None:
        row = {"key": candidate.key, "epochs": result["epochs"], "run_id": result["run_id"],
               "status": result["status"], "error": result.get("error"), "choices": candidate.choices,
               "spec": candidate.spec.to_dict() if candidate.spec else result.get("spec"),
               "measures": result["measures"]}
        self.rows.append(row)
        if self.records is not None and not replayed:
            self.records.add_candidate(self.search_id, key=row["key"], epochs=row["epochs"], run_id=row["run_id"],
                                       status=row["status"], choices=row["choices"], spec=row["spec"],
                                       measures=row["measures"], error=row["error"])
        if self.on_event:
            self.on_event({"kind": "candidate", "replayed": replayed, "done": len({r["key"] for r in self.rows}),
                           "budget": self.budget, **row})


def search(space: SearchSpace | dict | str | Path | None = None, dataset: str | None = None, *,
           strategy: str = "random", budget: int | None = None, objective: str | None = None,
           epochs: int = 5, train: dict | None = None, dataset_options: dict | None = None, seed: int = 0,
           workers: int = 1, backend: str = "local", halving: bool = False, eta: int = 2,
           strategy_options: dict | None = None, store: RunStore | str | Path | None = None,
           resume: str | None = None, gradient_variance: bool = True, on_event: OnEvent | None = None,
           name: str | None = None) -> SearchResults:
    """Search `space` on `dataset`; every candidate is a training run recorded under the search.

    Args:
        space: a SearchSpace, its dict/JSON/file, or a template name (see workbench.search.space_names()).
        dataset, dataset_options: a dataset name of workbench.data and its options.
        strategy: exhaustive, random, evolutionary, vqe or supernet; strategy_options go to it.
        budget: distinct candidates to train (default: the whole space, at most 16).
        objective: the measure to optimise (default: val_accuracy / val_energy / val_mae by task).
        epochs, train: training settings of each candidate (TrainConfig fields; the space may choose some).
        halving: successive halving with factor `eta` (candidates of a batch train for epochs/eta^k first;
            the best 1/eta continue).
        workers, backend: 'local' (1: this process; more: worker processes), 'process' (worker processes
            even for one) or 'ray'.
        store: a RunStore or its path (default: the default store); resume: a search id to continue.
        on_event: called with {'kind': 'candidate', ...} as each evaluation finishes, and 'start'/'end'.
    Returns:
        SearchResults (rows to pandas/JSON, best, pareto(x, y), report).
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    records = SearchRecords(store)
    replay: list[dict] = []
    if resume is not None:
        record = records.get(resume)
        settings, space_obj, search_id = record.settings, load_space(record.space), record.id
        replay = records.candidates(search_id)
    else:
        if space is None or dataset is None:
            raise SearchError("give a search space and a dataset (or resume=SEARCH_ID)")
        if not isinstance(dataset, str):
            raise SearchError("give the dataset by name (with dataset_options): each candidate loads it where it "
                              "trains, in this process, a worker process or on Ray")
        space_obj = load_space(space)
        first = next((c for c in space_obj.candidates() if c.valid), None)
        if first is None:
            reasons = "; ".join(sorted({c.reason for c in space_obj.invalid()})[:3])
            raise SearchError(f"search space {space_obj.name!r} has no valid candidate: {reasons}")
        objective = O.check_measure(objective or O.default_objective(first.spec.task))
        make_strategy(strategy)  # an unknown name fails here, before anything is recorded
        config = asdict(TrainConfig(**{"epochs": epochs, "boundary_every": 0, **(train or {})}))
        settings = {"strategy": strategy, "budget": budget if budget is not None else min(space_obj.size, 16),
                    "objective": objective, "train": config, "dataset": dataset,
                    "dataset_options": dataset_options or {}, "seed": seed, "halving": halving, "eta": eta,
                    "rungs": halving_rungs(config["epochs"], eta) if halving else [config["epochs"]],
                    "strategy_options": strategy_options or {}, "gradient_variance": gradient_variance}
        search_id = records.create(name=name or f"{space_obj.name}:{strategy}", space=space_obj.model_dump(mode="json"),
                                   settings=settings)
    if settings["budget"] < 1:
        raise SearchError(f"budget must be at least 1, got {settings['budget']}")
    chosen = make_strategy(settings["strategy"])
    if on_event:
        on_event({"kind": "start", "search_id": search_id, "budget": settings["budget"], "space": space_obj.name,
                  "strategy": settings["strategy"], "objective": settings["objective"]})
    with make_dispatcher(workers, backend) as dispatcher:
        context = SearchContext(space=space_obj, budget=settings["budget"], seed=settings["seed"],
                                options={**settings["strategy_options"], "dataset": settings["dataset"],
                                         "dataset_options": settings["dataset_options"], "train": settings["train"],
                                         "objective": settings["objective"]},
                                objective=settings["objective"], settings=settings, dispatcher=dispatcher,
                                records=records, store_path=str(store.path), search_id=search_id, replay=replay,
                                on_event=on_event)
        try:
            report = chosen.run(context)
        except BaseException:
            records.finish(search_id, "interrupted")
            raise
    report = {"strategy": settings["strategy"], "replayed": context.replayed, **report}
    records.finish(search_id, "completed", report)
    results = SearchResults(search_id=search_id, space=space_obj, settings=settings, rows=context.rows, report=report)
    if on_event:
        on_event({"kind": "end", "search_id": search_id, "best": results.best})
    return results
