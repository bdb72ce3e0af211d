"""Compare tab: the run history (tick runs to overlay a metric, rename or delete a run) and the hybrid
network against its matched classical baseline.

A `pn.viewable.Viewer` over the shared TrainingSession (its runs and baseline) and the run store; the
hybrid curve is the live dashboard's data. The app calls `poll()` from its periodic callback and `shown()`
when the tab is opened.
"""

from __future__ import annotations

import html
from typing import Callable

import panel as pn
from panel.viewable import Viewer

from .. import charts, icons
from ...store import StoreError
from ..components import LiveChart
from ..session import StartError

METRICS = ("val_accuracy", "accuracy", "val_loss", "loss", "val_mae", "mae", "val_energy", "energy", "epoch_time")
ENDED = ("completed", "cancelled", "failed")


def _html_note(text: str, kind: str = "note") -> str:
    return f"<div class='wb-{kind}'>{text}</div>"


class CompareTab(Viewer):
    """Run history, metric overlay, rename/delete, and the classical baseline of one session."""

    def __init__(self, store, builder, setup, session, dashboard, is_visible: Callable[[], bool] = lambda: True,
                 **params):
        super().__init__(**params)
        self.store, self.builder, self.setup, self.session = store, builder, setup, session
        self.dashboard = dashboard  # its data is the hybrid run's curve
        self.is_visible = is_visible
        self.baseline_data = charts.LiveData()
        self._baseline_cursor = 0
        self._baseline_epochs: int | None = None  # set when the baseline's epochs match an until-paused run
        self._known_runs: tuple = ()
        self._run_names: dict = {}
        self._layout = self._build()
        pn.bind(lambda *_: self._on_baseline_status(), session.param.baseline_status,
                session.param.baseline_message, watch=True)
        pn.bind(lambda *_: self.refresh_runs(), session.param.run_ids, watch=True)

    def __panel__(self):
        return self._layout

    def shown(self) -> None:
        """The tab was opened: bring the list and the baseline chart up to date."""
        self.refresh_runs()
        self._render_baseline(force=True)

    def forget_baseline(self) -> None:
        """A new run started: a finished baseline belonged to the previous one."""
        if self.session.baseline_status == "running":
            return
        self.session.baseline_stream = None
        self.baseline_data.reset()
        self._baseline_cursor = 0
        self.baseline_status.value = ""

    def show_store_error(self, message: str) -> None:
        self.runs_empty.object = _html_note(html.escape(message), "alert")

    def poll(self) -> None:
        """Read the baseline's new events; list runs that just ended."""
        if self.session.baseline_stream is not None:
            events, self._baseline_cursor = self.session.baseline_stream.since(self._baseline_cursor)
            if events:
                self.baseline_data.extend(events)
                self._on_baseline_status()
        self._render_baseline()
        if self.dashboard.data.status in ENDED and getattr(self, "_ended_refreshed", None) != self.session.last_run_id:
            self._ended_refreshed = self.session.last_run_id
            self.refresh_runs()
        if self.baseline_data.status in ENDED and \
                getattr(self, "_baseline_refreshed", None) != self.baseline_data.run_id:
            self._baseline_refreshed = self.baseline_data.run_id
            self.refresh_runs()

    def _render_baseline(self, force: bool = False) -> None:
        """Hybrid-vs-classical curves: redrawn when an epoch ends, and only while the Compare tab shows."""
        data = self.dashboard.data
        key = (data.run_id, len(data.epochs), self.baseline_data.run_id, len(self.baseline_data.epochs),
               self.baseline_data.status)
        if key == getattr(self, "_baseline_key", None) and not force:
            return
        if not force and not self.is_visible():
            return
        self._baseline_key = key
        self.baseline_plot.figure = charts.hybrid_vs_classical_figure(data, self.baseline_data)

    def _build(self):
        self.run_select = pn.widgets.CheckBoxGroup(label="Runs", options={}, value=[], inline=False,
                                                   css_classes=["wb-run-list"])
        self.run_select.param.watch(lambda e: self._render_compare(), "value")
        self.include_earlier = pn.widgets.Checkbox(label="Include runs from earlier sessions", value=False,
                                                   css_classes=["wb-include-earlier"])
        self.include_earlier.param.watch(lambda e: self.refresh_runs(), "value")
        self.refresh_runs_button = pn.widgets.Button(label="Refresh", icon=icons.REFRESH, width=100, css_classes=["wb-refresh-runs"])
        self.refresh_runs_button.on_click(lambda _: self.refresh_runs())
        self.metric_select = pn.widgets.Select(label="Metric", options=list(METRICS), value="val_accuracy", width=180,
                                               css_classes=["wb-compare-metric"])
        self.metric_select.param.watch(lambda e: self._render_compare(), "value")
        self.runs_empty = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-runs-empty"])
        self.run_edit = pn.widgets.Select(label="Ticked run", options={}, sizing_mode="stretch_width",
                                          css_classes=["wb-run-edit"])
        self.run_name = pn.widgets.TextInput(label="Run name (Enter to rename)", sizing_mode="stretch_width",
                                             css_classes=["wb-run-name"])
        self.run_delete = pn.widgets.Button(label="Delete run", icon=icons.TRASH, color="danger", width=130,
                                            css_classes=["wb-run-delete"])
        self.run_edit.param.watch(lambda e: self._show_run_name(), "value")
        self.run_name.param.watch(lambda e: self.rename_run(self.run_edit.value, e.new), "value")
        self.run_delete.on_click(lambda _: self.delete_run(self.run_edit.value))
        self.run_edit_message = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-run-edit-message"])
        self.compare_plot = LiveChart(figure=charts.compare_figure({}, {}, "val_accuracy"), height=360,
                                      sizing_mode="stretch_width", css_classes=["wb-compare-chart"])
        self.compare_table = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-compare-table"])
        self.compare_message = pn.pane.HTML("", sizing_mode="stretch_width")
        history = pn.Column(
            pn.pane.HTML("<div class='wb-section-title'>Run history</div><div class='wb-muted'>Runs of this session "
                         "(stored in the run store); tick runs to overlay their curves.</div>"),
            pn.Row(self.include_earlier, self.refresh_runs_button),
            self.runs_empty, self.run_select, self.run_edit, self.run_name, self.run_delete, self.run_edit_message,
            width=430, css_classes=["wb-card"], margin=(4, 8))
        curves = pn.Column(pn.Row(self.metric_select), self.compare_message, self.compare_plot, self.compare_table,
                           sizing_mode="stretch_width", css_classes=["wb-card"], margin=(4, 8))
        self.baseline_button = pn.widgets.Button(label="Train matched classical baseline", icon=icons.SCALE, color="primary",
                                                 css_classes=["wb-baseline"], width=280)
        self.baseline_button.on_click(lambda _: self.start_baseline())
        self.baseline_stop = pn.widgets.Button(label="Stop baseline", icon=icons.STOP, color="danger", width=150,
                                               css_classes=["wb-baseline-stop"], disabled=True)
        self.baseline_stop.on_click(lambda _: self.session.stop_baseline())
        self.baseline_status = pn.widgets.StaticText(value="", sizing_mode="stretch_width",
                                                     css_classes=["wb-baseline-status"])
        self.baseline_plot = LiveChart(figure=charts.hybrid_vs_classical_figure(charts.LiveData(), charts.LiveData()),
                                       height=340, sizing_mode="stretch_width", css_classes=["wb-baseline-chart"])
        baseline = pn.Column(
            pn.pane.HTML("<div class='wb-section-title'>Hybrid vs matched classical baseline</div><div class='wb-muted'>"
                         "The same network with every quantum block replaced by dense layers with at least as many "
                         "trainable parameters, trained with the same settings.</div>"),
            pn.Row(self.baseline_button, self.baseline_stop, self.baseline_status), self.baseline_plot,
            sizing_mode="stretch_width", css_classes=["wb-card"], margin=(4, 8))
        return pn.Column(pn.Row(history, curves, sizing_mode="stretch_width"), baseline, sizing_mode="stretch_width")

    def start_baseline(self) -> bool:
        if not self.builder.valid:
            self.baseline_status.value = _html_note("Fix the network first.", "alert")
            return False
        # A run trained until paused has no epoch count: the baseline trains as many epochs as it completed.
        run = self.dashboard.data
        until_paused = run.until_paused if run.status != "idle" else self.setup.until_paused
        epochs = len(run.epochs) if until_paused else None
        if epochs == 0:
            self.baseline_status.value = _html_note(
                "The run trained until paused has no finished epoch to match yet: let it finish one, or untick "
                "“Train until paused” to give the baseline an epoch count.", "alert")
            return False
        try:
            self.session.start_baseline(self.builder.spec, self.setup, epochs=epochs)
        except StartError as err:
            self.baseline_status.value = _html_note(html.escape(str(err)), "alert")
            return False
        self.baseline_data.reset()
        self._baseline_cursor = 0
        self._baseline_epochs = epochs
        self._on_baseline_status()
        return True

    def _on_baseline_status(self) -> None:
        s = self.session
        matched = self._baseline_epochs
        running = "training the classical baseline" + (
            f" for {matched} epoch{'s' if matched != 1 else ''}, as many as the run completed…" if matched else "…")
        text = {"running": running, "completed": "classical baseline done",
                "cancelled": "classical baseline stopped", "failed": f"baseline failed: {s.baseline_message}"}.get(
            s.baseline_status, "")
        final = self.baseline_data.final
        if s.baseline_status == "completed" and final:
            metric = self.baseline_data.metric_name or "accuracy"
            value = final.get(f"test_{metric}")
            if value is not None:
                text += f" · test {metric} {value:.3g}"
        self.baseline_status.value = f"<span class='wb-muted'>{html.escape(text)}</span>" if text else ""
        self.baseline_button.disabled = s.baseline_status == "running"
        self.baseline_stop.disabled = s.baseline_status != "running"

    def refresh_runs(self) -> None:
        try:
            records = self.session.visible_runs(include_earlier=self.include_earlier.value)
        except StoreError as err:
            self.runs_empty.object = _html_note(html.escape(str(err)), "alert")
            return
        options = {}
        for r in records:
            final = r.final_metrics or {}
            metric = next((f"{k.removeprefix('test_')} {v:.3g}" for k, v in final.items()
                           if k in ("test_accuracy", "test_mae", "test_energy") and isinstance(v, (int, float))), "")
            kind = " · baseline" if r.parent_id else ""
            metric = metric.replace("accuracy", "acc")
            label = f"{r.name}{kind} · {r.status}" + (f" · {metric}" if metric else "") + f" · {r.id[:6]}"
            options[label] = r.id
        self._run_names = {r.id: r.name for r in records}
        key = tuple(options.items())
        if key != self._known_runs:
            seen = {run_id for _, run_id in self._known_runs}
            self._known_runs = key
            selected = [v for v in self.run_select.value if v in options.values()]
            # Runs of this session that just appeared are ticked, so their curves show at once.
            fresh = [v for v in options.values() if v not in seen and v in self.session.run_ids and v not in selected]
            self.run_select.options = options
            self.run_select.value = selected + fresh
        self.runs_empty.object = "" if options else (
            "<div class='wb-muted'>No runs yet in this session: train the network and it appears here.</div>")
        self._render_compare()

    def _sync_run_edit(self) -> None:
        """The rename/delete picker lists the ticked runs."""
        labels = {v: k for k, v in self.run_select.options.items()}
        options = {labels[v]: v for v in self.run_select.value if v in labels}
        self.run_edit.options = options
        if self.run_edit.value not in options.values():
            self.run_edit.value = next(iter(options.values()), None)
        visible = bool(options)
        for widget in (self.run_edit, self.run_name, self.run_delete):
            widget.visible = visible
        self._show_run_name()

    def _show_run_name(self) -> None:
        self.run_name.value = self._run_names.get(self.run_edit.value, "")

    def rename_run(self, run_id: str | None, name: str) -> bool:
        """Rename a run in the store; showing a run's own name (same value) changes nothing."""
        if not run_id or self.store is None or name == self._run_names.get(run_id, ""):
            return False
        try:
            self.store.rename_run(run_id, name)
        except StoreError as err:
            self.run_edit_message.object = _html_note(html.escape(str(err)), "alert")
            return False
        self.run_edit_message.object = ""
        self._known_runs = ()
        self.refresh_runs()
        return True

    def delete_run(self, run_id: str | None) -> bool:
        """Delete a finished run of this session (or of a closed one) from the store."""
        if not run_id or self.store is None:
            return False
        if run_id in (getattr(self.session.trainer, "run_id", None), getattr(self.session.baseline, "run_id", None)) \
                and self.session.status in ("running", "paused"):
            self.run_edit_message.object = _html_note("This run is still training: stop it first.", "alert")
            return False
        try:
            self.store.delete_run(run_id)
        except StoreError as err:
            self.run_edit_message.object = _html_note(html.escape(str(err)), "alert")
            return False
        self.session.run_ids = [r for r in self.session.run_ids if r != run_id]
        self.run_edit_message.object = ""
        self.refresh_runs()
        return True

    def _render_compare(self) -> None:
        self._sync_run_edit()
        ids = list(self.run_select.value)
        metric = self.metric_select.value
        labels = {v: k.rsplit(" · ", 1)[0] for k, v in self.run_select.options.items()}
        if self.store is None or not ids:
            self.compare_plot.figure = charts.compare_figure({}, {}, metric)
            self.compare_table.object = ""
            self.compare_message.object = ""
            return
        try:
            series = self.store.compare(ids, metric)
            self.compare_message.object = ""
        except StoreError as err:
            series = {}
            self.compare_message.object = _html_note(html.escape(str(err)), "alert")
        self.compare_plot.figure = charts.compare_figure(series, labels, metric)
        rows = []
        for run_id in ids:
            try:
                record = self.store.get_run(run_id)
            except StoreError:
                continue
            final = record.final_metrics or {}
            cfg = record.config or {}
            epochs = charts.epochs_text(final.get("epochs_done"), cfg.get("epochs"))
            cells = [html.escape(record.name), html.escape(str((record.dataset or {}).get("name", "–"))),
                     html.escape(str(cfg.get("target", "–"))), html.escape(str(cfg.get("gradient", "–"))),
                     html.escape(epochs), html.escape(record.status),
                     *(f"{final[k]:.4g}" if isinstance(final.get(k), (int, float)) else "–"
                       for k in ("test_accuracy", "test_loss", "parameters"))]
            rows.append("<tr>" + "".join(f"<td{' class=num' if i > 5 else ''}>{c}</td>" for i, c in enumerate(cells))
                        + "</tr>")
        self.compare_table.object = ("<table class='wb-table'><tr><th>run</th><th>dataset</th><th>target</th>"
                                     "<th>gradient</th><th>epochs</th><th>status</th><th>test acc.</th>"
                                     "<th>test loss</th><th>params</th></tr>" + "".join(rows) + "</table>")

