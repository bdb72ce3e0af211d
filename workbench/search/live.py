"""A search running in the background for an interactive front end (the GUI's Search tab, a notebook).

`LiveSearch` starts `search(...)` on a thread, collects each finished candidate as it arrives, and turns
them into plain Plotly figure dicts: the Pareto scatter of any two measures (points appear as candidates
finish; the front is highlighted) and one candidate's training curves read back from the store. It holds
no widgets, so tests drive exactly what the tab shows.

Example:
    >>> live = LiveSearch(store)
    >>> live.start("circles-vqc", "circles", strategy="random", budget=4, epochs=2)
    >>> live.join(); live.scatter_figure("val_accuracy", "parameters")
"""

from __future__ import annotations

import threading
from typing import Any

import param

from ..store import RunStore
from . import objectives as O
from .runner import search


class SearchStopped(Exception):
    """Raised inside the search's progress callback to stop it; the search stays resumable."""


class LiveSearch(param.Parameterized):
    status = param.String(default="idle", doc="idle, running, completed, stopped or failed")
    message = param.String(default="")
    revision = param.Integer(default=0, doc="Bumped whenever a candidate finishes (views redraw on it).")
    search_id = param.String(default="")
    selected = param.String(default="", doc="Key of the candidate the user clicked.")

    def __init__(self, store: RunStore | None, **params):
        super().__init__(**params)
        self.store = store
        self.rows: list[dict] = []  # finished evaluations, latest per candidate
        self.budget = 0
        self.objective = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running --------------------------------------------------------------------------------
    def start(self, space: Any, dataset: str | None, **options: Any) -> None:
        """Run `search(space, dataset, **options)` on a background thread (one at a time)."""
        if self.status == "running":
            raise RuntimeError("a search is already running: stop it first")
        if self.store is None:
            raise RuntimeError("searching records every candidate in the run store, and this session has none")
        self.rows, self.selected, self.search_id, self.message = [], "", "", ""
        self._stop.clear()
        self.status = "running"
        self._thread = threading.Thread(target=self._run, args=(space, dataset, options), daemon=True,
                                        name="live-search")
        self._thread.start()

    def stop(self) -> None:
        """Stop after the candidate in training; the search can be resumed by its id."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, space: Any, dataset: str | None, options: dict) -> None:
        try:
            # Candidates train in worker processes: the process serving the GUI runs no circuit itself.
            options = {"backend": "process", **options}
            results = search(space, dataset, store=self.store, on_event=self._on_event, **options)
        except SearchStopped:
            self.status, self.message = "stopped", f"stopped; resume search {self.search_id} to continue"
        except Exception as err:  # shown to the user; the thread must not die silently
            self.status, self.message = "failed", f"{err.__class__.__name__}: {err}"
        else:
            best = results.best
            self.message = f"best {best['key']}: {self.objective} = {best.get(self.objective)}" if best else ""
            self.status = "completed"
        self.revision += 1

    def _on_event(self, event: dict) -> None:
        if event["kind"] == "start":
            self.search_id, self.budget, self.objective = event["search_id"], event["budget"], event["objective"]
        elif event["kind"] == "candidate":
            row = {"key": event["key"], "epochs": event["epochs"], "run_id": event["run_id"],
                   "status": event["status"], "error": event["error"], "spec": event["spec"],
                   **{f"choice:{k}": v for k, v in event["choices"].items()}, **event["measures"]}
            with self._lock:
                self.rows = [r for r in self.rows if r["key"] != row["key"]] + [row]
            self.revision += 1
        if self._stop.is_set():
            raise SearchStopped()

    # -- views ----------------------------------------------------------------------------------
    @property
    def done(self) -> int:
        return len(self.rows)

    def completed_rows(self) -> list[dict]:
        with self._lock:
            return [r for r in self.rows if r["status"] == "completed"]

    def scatter_figure(self, x: str, y: str) -> dict:
        """Plotly figure: every finished candidate at (x, y); the Pareto front joined and highlighted.
        Each point's customdata is its candidate key (what a click selects)."""
        O.check_measure(x), O.check_measure(y)
        rows = [r for r in self.completed_rows() if r.get(x) is not None and r.get(y) is not None]
        front = O.pareto_front(rows, (x, y))
        front_keys = {r["key"] for r in front}
        others = [r for r in rows if r["key"] not in front_keys]
        front = sorted(front, key=lambda r: r[x])

        def trace(points: list[dict], name: str, style: dict) -> dict:
            return {"type": "scatter", "mode": style.pop("mode", "markers"), "name": name,
                    "x": [r[x] for r in points], "y": [r[y] for r in points], "customdata": [r["key"] for r in points],
                    "text": [_label(r) for r in points], "hovertemplate": "%{text}<extra></extra>", **style}

        data = [trace(others, "candidates", {"marker": {"size": 10, "color": "#9ecae1"}}),
                trace(front, "Pareto front", {"mode": "lines+markers", "marker": {"size": 12, "color": "#d62728"},
                                              "line": {"dash": "dot", "color": "#d62728"}})]
        if self.selected and any(r["key"] == self.selected for r in rows):
            chosen = [r for r in rows if r["key"] == self.selected]
            data.append(trace(chosen, "selected", {"marker": {"size": 18, "color": "rgba(0,0,0,0)",
                                                               "line": {"width": 2, "color": "#000"}}}))
        title = f"{len(rows)} of {self.budget or '?'} candidates · {self.status}"
        return {"data": data, "layout": {"title": {"text": title}, "xaxis": {"title": {"text": x}},
                                         "yaxis": {"title": {"text": y}}, "height": 420,
                                         "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "clickmode": "event"}}

    def select(self, key: str) -> dict:
        row = next((r for r in self.completed_rows() if r["key"] == key), None)
        if row is None:
            raise KeyError(f"no finished candidate {key!r} in this search")
        self.selected = key
        return row

    def select_from_click(self, click_data: dict | None) -> str | None:
        """The key of the point a Plotly click event names (its customdata), selected; None if none."""
        points = (click_data or {}).get("points") or []
        if not points or points[0].get("customdata") is None:
            return None
        key = points[0]["customdata"]
        key = key[0] if isinstance(key, list) else key
        self.select(key)
        return key

    def curves_figure(self, key: str | None = None) -> dict:
        """Training and validation loss per epoch of a candidate's run, read from the store."""
        key = key or self.selected
        row = next((r for r in self.completed_rows() if r["key"] == key), None)
        if row is None:
            return {"data": [], "layout": {"title": {"text": "Click a point to see its training curves"}, "height": 320}}
        epochs = self.store.events(row["run_id"], "epoch")
        xs = [e["epoch"] + 1 for e in epochs]
        data = [{"type": "scatter", "mode": "lines+markers", "name": "train loss", "x": xs,
                 "y": [e["loss"] for e in epochs]}]
        if epochs and "val_loss" in epochs[0]:
            data.append({"type": "scatter", "mode": "lines+markers", "name": "val loss", "x": xs,
                         "y": [e["val_loss"] for e in epochs]})
        return {"data": data, "layout": {"title": {"text": f"candidate {key} · run {row['run_id'][:8]}"},
                                         "xaxis": {"title": {"text": "epoch"}}, "yaxis": {"title": {"text": "loss"}},
                                         "height": 320, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}}

    def spec_of(self, key: str | None = None) -> dict:
        return self.select(key or self.selected)["spec"]


def _label(row: dict) -> str:
    choices = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in row.items() if k.startswith("choice:"))
    return f"{row['key']}: {choices}"
