"""The results of a search: one row per trained candidate, the best one, Pareto fronts, pandas and JSON.

Example:
    >>> results.to_pandas()[["key", "val_accuracy", "parameters"]]
    >>> results.pareto("val_accuracy", "parameters")      # rows no other row beats in both
    >>> SearchResults.from_json(results.to_json())
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import objectives as O
from .space import SearchSpace


@dataclass
class SearchResults:
    search_id: str
    space: SearchSpace
    settings: dict[str, Any]
    rows: list[dict[str, Any]]  # every evaluation: key, epochs, run_id, status, error, choices, spec, measures
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def objective(self) -> str:
        return self.settings["objective"]

    def final_rows(self) -> list[dict[str, Any]]:
        """Each candidate's last (longest) evaluation, flattened: key, epochs, run_id, status, choices, measures."""
        last: dict[str, dict] = {}
        for row in self.rows:
            if row["key"] not in last or row["epochs"] >= last[row["key"]]["epochs"]:
                last[row["key"]] = row
        full = max((r["epochs"] for r in self.rows), default=0)
        return [{"key": r["key"], "epochs": r["epochs"], "stopped_early": r["epochs"] < full,
                 "run_id": r["run_id"], "status": r["status"], "error": r["error"],
                 **{f"choice:{k}": v for k, v in r["choices"].items()}, **r["measures"]} for r in last.values()]

    @property
    def best(self) -> dict[str, Any] | None:
        """The completed candidate with the lowest cost in the objective (full-budget ones first)."""
        rows = [r for r in self.final_rows() if r["status"] == "completed"]
        if not rows:
            return None
        return min(rows, key=lambda r: (r["stopped_early"], O.cost(self.objective, r.get(self.objective))))

    def pareto(self, x: str, y: str) -> list[dict[str, Any]]:
        """Candidates on the Pareto front of measures x and y (directions from workbench.search.objectives)."""
        return O.pareto_front([r for r in self.final_rows() if r["status"] == "completed"], (x, y))

    def spec(self, key: str) -> dict:
        """The architecture spec of candidate `key` (for the builder or `workbench train --spec`)."""
        for row in self.rows:
            if row["key"] == key:
                return row["spec"]
        raise KeyError(f"no candidate {key!r} in search {self.search_id}")

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.final_rows())

    def to_dict(self) -> dict[str, Any]:
        return {"search_id": self.search_id, "space": self.space.model_dump(mode="json"),
                "settings": self.settings, "rows": self.rows, "report": self.report}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    @classmethod
    def from_json(cls, text: str) -> "SearchResults":
        data = json.loads(text)
        return cls(data["search_id"], SearchSpace.model_validate(data["space"]), data["settings"], data["rows"],
                   data["report"])

    @classmethod
    def load(cls, search_id: str, store=None) -> "SearchResults":
        """A recorded search from the store (its candidates, settings and report)."""
        from ..store import RunStore
        from .records import SearchRecords

        records = SearchRecords(store if isinstance(store, RunStore) else RunStore(store))
        record = records.get(search_id)
        return cls(record.id, SearchSpace.model_validate(record.space), record.settings,
                   records.candidates(record.id), record.report or {})
