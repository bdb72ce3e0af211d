"""The GUI's Search tab: choose a space, a dataset, a strategy and a budget; watch the Pareto scatter fill
as candidates finish; click a point for its training curves; open it in the builder.

All logic lives in `workbench.search.live.LiveSearch` (no widgets there); this Viewer only wires widgets to
it. It needs the shared app state: an object with `store` (a RunStore, or None: searching is then
disabled with a message) and `builder` (a BuilderState; "Open in builder" calls `builder.load(spec)`).

    tab = SearchTab(app)          # app: the WorkbenchApp (or any object with .store and .builder)
    pn.Tabs(("Search", tab))
"""

from __future__ import annotations

import json
from typing import Any

import panel as pn
import param

from ...search.live import LiveSearch
from ...search.objectives import MEASURES
from ...search.space import SpaceError, load_space
from ...search.strategies import STRATEGIES
from ...search.templates import SPACE_DATASETS, SPACE_TEMPLATES
from ..components import LiveChart

CUSTOM = "custom (JSON below)"


class SearchTab(pn.viewable.Viewer):
    """A Viewer over the shared app state (see the module doc)."""

    refresh_ms = param.Integer(default=700, doc="How often the served tab redraws while a search runs.")
    opened = param.Event(doc="Triggered when a candidate was opened in the builder (the app then shows Build).")

    def __init__(self, state: Any, **params):
        super().__init__(**params)
        self.state = state
        self.live = LiveSearch(getattr(state, "store", None))
        self._drawn = -1
        first = next(iter(SPACE_TEMPLATES))
        self.space_select = pn.widgets.Select(label="Search space", options=[*SPACE_TEMPLATES, CUSTOM], value=first)
        self.space_json = pn.widgets.TextAreaInput(label="Space JSON", height=160, sizing_mode="stretch_width",
                                                   value=load_space(first).to_json())
        self.dataset = pn.widgets.TextInput(label="Dataset", value=SPACE_DATASETS[first][0])
        self.dataset_options = pn.widgets.TextInput(label="Dataset options (JSON)",
                                                    value=json.dumps(SPACE_DATASETS[first][1]))
        self.strategy = pn.widgets.Select(label="Strategy", options=list(STRATEGIES), value="random")
        self.budget = pn.widgets.IntInput(label="Budget (candidates)", value=8, start=1, end=10_000)
        self.epochs = pn.widgets.IntInput(label="Epochs per candidate", value=3, start=1, end=10_000)
        self.halving = pn.widgets.Checkbox(label="Successive halving", value=False)
        self.x_measure = pn.widgets.Select(label="x", options=MEASURES, value="parameters")
        self.y_measure = pn.widgets.Select(label="y", options=MEASURES, value="val_accuracy")
        self.start_button = pn.widgets.Button(label="Start search", color="primary", css_classes=["wb-search-start"])
        self.stop_button = pn.widgets.Button(label="Stop", color="warning", disabled=True,
                                             css_classes=["wb-search-stop"])
        self.open_button = pn.widgets.Button(label="Open in builder", disabled=True, css_classes=["wb-search-open"])
        self.status = pn.pane.Markdown("", css_classes=["wb-search-status"], sizing_mode="stretch_width")
        self.progress = pn.indicators.Progress(value=0, max=1, sizing_mode="stretch_width", bar_color="primary")
        self.scatter = LiveChart(figure=self.live.scatter_figure("parameters", "val_accuracy"), height=420,
                                 sizing_mode="stretch_width", css_classes=["wb-search-scatter"])
        self.curves = LiveChart(figure=self.live.curves_figure(), height=320, sizing_mode="stretch_width",
                                css_classes=["wb-search-curves"])
        self.space_select.param.watch(self._on_space, "value")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.live.stop())
        self.open_button.on_click(lambda _: self.open_in_builder())
        self.scatter.param.watch(lambda e: self.on_click({"points": [e.new]} if e.new else None), "clicked")
        for widget in (self.x_measure, self.y_measure):
            widget.param.watch(lambda _: self.refresh(force=True), "value")
        if self.live.store is None:
            self.start_button.disabled = True
            self.status.object = "Searching records every candidate in the run store, and this session has none."
        self._layout = pn.Row(
            pn.Column(self.space_select, self.space_json, self.dataset, self.dataset_options, self.strategy,
                      self.budget, self.epochs, self.halving, pn.Row(self.start_button, self.stop_button),
                      width=340),
            pn.Column(self.status, self.progress, pn.Row(self.x_measure, self.y_measure), self.scatter,
                      pn.Row(self.open_button), self.curves, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
        self._callback = None

    def __panel__(self):
        return self._layout

    # -- actions --------------------------------------------------------------------------------
    def _on_space(self, event) -> None:
        if event.new in SPACE_TEMPLATES:
            self.space_json.value = load_space(event.new).to_json()
            name, options = SPACE_DATASETS[event.new]
            self.dataset.value, self.dataset_options.value = name, json.dumps(options)

    def start(self) -> bool:
        """Start a search from the widgets' values; False (with the reason shown) if they are not usable."""
        try:
            space = load_space(self.space_json.value)
            options = json.loads(self.dataset_options.value or "{}")
        except (SpaceError, json.JSONDecodeError) as err:
            self.status.object = f"**Cannot start:** {err}"
            return False
        self.live.start(space, self.dataset.value, strategy=self.strategy.value, budget=self.budget.value,
                        epochs=self.epochs.value, halving=self.halving.value, dataset_options=options)
        self.start_button.disabled, self.stop_button.disabled = True, False
        if pn.state.curdoc is not None and self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.refresh, period=self.refresh_ms)
        self.refresh(force=True)
        return True

    def refresh(self, force: bool = False) -> None:
        """Redraw from the live search if a candidate finished since the last draw."""
        live = self.live
        if not force and live.revision == self._drawn:
            return
        self._drawn = live.revision
        self.scatter.figure = live.scatter_figure(self.x_measure.value, self.y_measure.value)
        self.progress.max, self.progress.value = max(live.budget, 1), min(live.done, max(live.budget, 1))
        search = f"search `{live.search_id}` · " if live.search_id else ""
        self.status.object = f"{search}**{live.status}** · {live.done}/{live.budget or '?'} candidates" + \
            (f" · {live.message}" if live.message else "")
        if live.status != "running":
            self.start_button.disabled = self.live.store is None
            self.stop_button.disabled = True
            if self._callback is not None:
                self._callback.stop()
                self._callback = None

    def on_click(self, click_data: dict | None) -> None:
        key = self.live.select_from_click(click_data)
        if key is None:
            return
        self.curves.figure = self.live.curves_figure(key)
        self.open_button.disabled = False
        self.refresh(force=True)

    def open_in_builder(self) -> None:
        """Load the selected candidate's spec into the shared builder."""
        spec = self.live.spec_of()
        self.state.builder.load(spec, action=f"open search candidate {self.live.selected}")
        self.status.object = f"Opened candidate {self.live.selected} in the builder."
        self.param.trigger("opened")
