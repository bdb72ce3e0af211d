"""Search strategies, each behind one interface: `Strategy.run(context) -> report`.

A strategy proposes candidates and learns their costs only through `context.evaluate(candidates)`
(lower is better; a candidate that could not be trained costs +inf). The context trains, records, spends
the budget (one unit per distinct candidate), applies successive halving and replays evaluations already
recorded when a search is resumed, so a strategy holds no training, storage or parallelism rules.

    exhaustive    every valid candidate, in index order
    random        distinct valid candidates drawn uniformly
    evolutionary  tournament selection, uniform crossover and mutation over the choices
    vqe           seed 001: measured costs as a diagonal Hamiltonian, ground state found by a VQE
    supernet      DARTS-style mixed circuit trained once, then discretised (workbench.search.supernet)
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from typing import Any, Protocol

import numpy as np

from .space import Candidate, SearchSpace


class Context(Protocol):
    """What a strategy may use: the space, its budget, a seeded RNG and the evaluator."""

    space: SearchSpace
    budget: int
    rng: random.Random
    options: dict[str, Any]

    @property
    def remaining(self) -> int: ...

    def evaluate(self, candidates: list[Candidate]) -> list[float]: ...

    def evaluated(self) -> dict[str, float]: ...


class StrategyError(ValueError):
    pass


class Strategy(ABC):
    name: str = ""

    @abstractmethod
    def run(self, context: Context) -> dict[str, Any]:
        """Spend the context's budget; return a report (strategy-specific facts, JSON-able)."""


def _valid(space: SearchSpace) -> list[Candidate]:
    return [c for c in space.candidates() if c.valid]


def _draw_distinct(context: Context, count: int, exclude: set[str]) -> list[Candidate]:
    """Up to `count` valid candidates not in `exclude`, drawn uniformly (bounded number of tries)."""
    found: list[Candidate] = []
    keys = set(exclude)
    for _ in range(50 * max(count, 1)):
        if len(found) == count:
            break
        candidate = context.space.sample(context.rng)
        if candidate.valid and candidate.key not in keys:
            found.append(candidate)
            keys.add(candidate.key)
    return found


class Exhaustive(Strategy):
    name = "exhaustive"

    def run(self, context: Context) -> dict[str, Any]:
        valid = _valid(context.space)
        chosen = valid[:context.budget]
        context.evaluate(chosen)
        return {"valid": len(valid), "covered": len(chosen)}


class RandomSearch(Strategy):
    name = "random"

    def run(self, context: Context) -> dict[str, Any]:
        batch = int(context.options.get("batch", context.budget))
        while context.remaining > 0:
            drawn = _draw_distinct(context, min(batch, context.remaining), set(context.evaluated()))
            if not drawn:
                break
            context.evaluate(drawn)
        return {}


class Evolutionary(Strategy):
    """Options: population (default min(8, budget // 2)), mutation (per-choice probability, default 1/choices)."""

    name = "evolutionary"

    def run(self, context: Context) -> dict[str, Any]:
        space = context.space
        n_choices = max(len(space.choices), 1)
        population = int(context.options.get("population", max(2, min(8, context.budget // 2))))
        mutation = float(context.options.get("mutation", 1 / n_choices))
        members = _draw_distinct(context, min(population, context.remaining), set())
        costs = dict(zip((m.key for m in members), context.evaluate(members)))
        by_key = {m.key: m for m in members}
        generations = 1
        while context.remaining > 0:
            ranked = sorted(by_key.values(), key=lambda m: costs[m.key])[:population]
            children: list[Candidate] = []
            seen = set(costs)
            for _ in range(20 * population):
                if len(children) >= min(population, context.remaining):
                    break
                a, b = self._tournament(ranked, costs, context.rng), self._tournament(ranked, costs, context.rng)
                child = self._offspring(space, a.index, b.index, mutation, context.rng)
                if child.valid and child.key not in seen:
                    children.append(child)
                    seen.add(child.key)
            if not children:
                children = _draw_distinct(context, min(population, context.remaining), seen)
                if not children:
                    break
            for child, value in zip(children, context.evaluate(children)):
                costs[child.key], by_key[child.key] = value, child
            generations += 1
        return {"population": population, "generations": generations, "mutation": mutation}

    @staticmethod
    def _tournament(ranked: list[Candidate], costs: dict[str, float], rng: random.Random) -> Candidate:
        a, b = rng.choice(ranked), rng.choice(ranked)
        return a if costs[a.key] <= costs[b.key] else b

    @staticmethod
    def _offspring(space: SearchSpace, a: tuple[int, ...], b: tuple[int, ...], mutation: float,
                   rng: random.Random) -> Candidate:
        child = [x if rng.random() < 0.5 else y for x, y in zip(a, b)]
        mutated = False
        for i, choice in enumerate(space.choices):
            if len(choice.options) > 1 and rng.random() < mutation:
                child[i] = rng.choice([k for k in range(len(choice.options)) if k != child[i]])
                mutated = True
        if not mutated and space.choices:  # always explore at least one step away from the parents
            movable = [i for i, c in enumerate(space.choices) if len(c.options) > 1]
            if movable:
                i = rng.choice(movable)
                child[i] = rng.choice([k for k in range(len(space.choices[i].options)) if k != child[i]])
        return space.materialise(child)


class VQEOptimizer(Strategy):
    """Seed 001 generalised. Options: depth, steps, lr, restarts (the VQE's), target.

    When the budget covers every valid candidate, all are measured (the exhaustive search the VQE is compared
    with). Otherwise budget - 1 random candidates are measured, the others' costs are predicted by an additive
    model over the choices (least squares on the measured ones), and the VQE's pick is measured last.
    Codes that name no valid candidate get a penalty cost above every other.
    """

    name = "vqe"

    def run(self, context: Context) -> dict[str, Any]:
        from .vqe import MAX_BITS, minimise_diagonal

        space = context.space
        n = space.n_bits
        if not 1 <= n <= MAX_BITS:
            raise StrategyError(f"the vqe strategy writes candidates as {n}-bit codes; it handles 1 to {MAX_BITS} "
                                "bits: shrink the space or use evolutionary/random")
        valid = _valid(space)
        affordable = len(valid) <= context.budget
        measured = valid if affordable else _draw_distinct(context, max(1, context.budget - 1), set())
        context.evaluate(measured)
        known = {k: v for k, v in context.evaluated().items() if math.isfinite(v)}
        if not known:
            raise StrategyError("no candidate could be trained, so there is no cost to build the Hamiltonian from")
        predict = _additive_model(space, known)
        valid_keys = {c.key for c in valid}
        costs = np.empty(2**n)
        penalised = []
        for code in range(2**n):
            index = space.code_to_index(code)
            key = ".".join(map(str, index)) if index is not None else None
            if key in known:
                costs[code] = known[key]
            elif key is not None and key in valid_keys:
                costs[code] = predict(index)
            else:
                penalised.append(code)
        finite = np.delete(costs, penalised) if penalised else costs
        high, low = float(finite.max()), float(finite.min())
        costs[penalised] = high + max(high - low, 1.0)
        options = context.options
        result = minimise_diagonal(costs, depth=int(options.get("depth", 2)), steps=int(options.get("steps", 150)),
                                   lr=float(options.get("lr", 0.1)), restarts=int(options.get("restarts", 3)),
                                   seed=int(options.get("seed", 0)), target=str(options.get("target", "torch")))
        index = space.code_to_index(result.best)
        pick = space.materialise(index) if index is not None else None
        if pick is not None and pick.valid and pick.key not in context.evaluated() and context.remaining > 0:
            context.evaluate([pick])
        exhaustive_code = int(np.argmin(costs))
        report = {"bits": n, "code": _bitstring(result.best, n), "key": pick.key if pick else None,
                  "probability": result.probability, "energy": result.energy,
                  "ground_energy": result.ground_energy, "measured": len(known), "affordable": affordable,
                  "probabilities": {_bitstring(c, n): float(p) for c, p in enumerate(result.probabilities)},
                  "energy_curves": result.curves}
        if affordable:
            report["exhaustive_code"] = _bitstring(exhaustive_code, n)
            report["matches_exhaustive"] = exhaustive_code == result.best
        return report


def _bitstring(code: int, n: int) -> str:
    """The code with qubit 0 first (the order CUDA-Q prints bitstrings in)."""
    return "".join(str((code >> q) & 1) for q in range(n))


def _additive_model(space: SearchSpace, known: dict[str, float]):
    """cost(index) ≈ bias + Σ_choices effect[choice][option], fitted by ridge least squares."""
    sizes = [len(c.options) for c in space.choices]
    offsets = np.cumsum([0, *sizes])

    def features(index: tuple[int, ...]) -> np.ndarray:
        row = np.zeros(offsets[-1] + 1)
        row[-1] = 1.0
        for i, option in enumerate(index):
            row[offsets[i] + option] = 1.0
        return row

    X = np.stack([features(tuple(int(p) for p in key.split("."))) for key in known])
    y = np.array(list(known.values()))
    coefficients = np.linalg.solve(X.T @ X + 1e-3 * np.eye(X.shape[1]), X.T @ y)
    return lambda index: float(features(index) @ coefficients)


def _supernet() -> Strategy:
    from .supernet import SupernetStrategy

    return SupernetStrategy()


STRATEGIES = {"exhaustive": Exhaustive, "random": RandomSearch, "evolutionary": Evolutionary, "vqe": VQEOptimizer,
              "supernet": _supernet}


def make_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()
