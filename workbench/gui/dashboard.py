"""The live training dashboard: charts fed by a MetricStream, polled from the UI loop.

Training runs in its own thread (Trainer.start()); the dashboard never blocks on it. A periodic
callback on the page's (or kernel's) event loop calls `poll()` every ~0.25 s, which reads the new
events with `stream.since(cursor)` and redraws only the charts whose data changed.
"""

from __future__ import annotations

import html
import time
from typing import Callable

import panel as pn

from . import charts, icons
from .components import LiveChart, LiveHTML, control_button, progress_html

POLL_MS = 250


class LiveDashboard:
    """Loss/metric curves, gradient-norm heatmap, quantum gradient variance with a plateau hint, decision
    boundary, step time and circuit executions; optional pause/resume/stop buttons."""

    def __init__(self, *, controls: bool = True, on_pause: Callable | None = None, on_resume: Callable | None = None,
                 on_stop: Callable | None = None, chart_height: int = 290,
                 idle_text: str = "Waiting for the run to start…"):
        self.idle_text = idle_text
        self.data = charts.LiveData()
        self.stream = None
        self.trainer = None
        self.cursor = 0
        self.points_xy: tuple[list, list, list] | None = None
        self._boundary_step = None
        self._callback = None
        self._drawn: dict[str, tuple[int, float]] = {}
        self._status_version = -1
        self.is_visible: Callable[[], bool] = lambda: True  # the app draws only while its Train tab is shown
        self._on_pause, self._on_resume, self._on_stop = on_pause, on_resume, on_stop
        h = chart_height

        def pane(fig, css):
            return LiveChart(figure=fig, sizing_mode="stretch_width", height=h, css_classes=[css], margin=(4, 6))

        self.loss = pane(charts.loss_figure(self.data, h), "wb-chart-loss")
        self.metric = pane(charts.metric_figure(self.data, h), "wb-chart-metric")
        self.gradnorm = pane(charts.gradnorm_figure(self.data, h), "wb-chart-gradnorm")
        self.variance = pane(charts.variance_figure(self.data, h), "wb-chart-variance")
        self.boundary = LiveChart(figure=charts.boundary_figure(self.data, None, h + 50),
                                  sizing_mode="stretch_width", height=h + 50, css_classes=["wb-chart-boundary"],
                                  margin=(4, 6))
        self.throughput = pane(charts.throughput_figure(self.data, h), "wb-chart-throughput")
        self.test_points: tuple[list, list, list] | None = None
        self.show_test = pn.widgets.Checkbox(name="Show test data", value=False, css_classes=["wb-show-test"])
        self.discretize = pn.widgets.Checkbox(name="Discretize output", value=False, css_classes=["wb-discretize"])
        for box in (self.show_test, self.discretize):
            box.param.watch(lambda _: self._render_boundary(force=True), "value")
        # Text that changes with every step lives in LiveHTML boxes of fixed height: no page re-layout.
        self.headline = LiveHTML(html=self._headline_html(), css_classes=["wb-live-status"],
                                 sizing_mode="stretch_width", height=56, margin=(4, 8))
        self.progress = LiveHTML(html=progress_html(0, 1), sizing_mode="stretch_width", height=12,
                                 margin=(0, 8, 6, 8), css_classes=["wb-progress"])
        self.hint = LiveHTML(html=self._hint_html(), sizing_mode="stretch_width", height=150,
                             css_classes=["wb-plateau-hint"], margin=(4, 8))
        self.pause_button = control_button(label="Pause", icon=icons.PAUSE, color="warning", disabled=True, width=110,
                                              css_classes=["wb-pause"])
        self.resume_button = control_button(label="Resume", icon=icons.PLAY, color="primary", disabled=True, width=110,
                                               css_classes=["wb-resume"])
        self.stop_button = control_button(label="Stop", icon=icons.STOP, color="danger", disabled=True, width=110,
                                             css_classes=["wb-stop"])
        self.pause_button.on_click(lambda _: self._control("pause"))
        self.resume_button.on_click(lambda _: self._control("resume"))
        self.stop_button.on_click(lambda _: self._control("stop"))
        buttons = pn.Row(self.pause_button, self.resume_button, self.stop_button, margin=(0, 4)) if controls else None
        header = pn.Column(*(x for x in (buttons, self.headline, self.progress) if x is not None),
                           sizing_mode="stretch_width")
        grid = pn.GridBox(self.loss, self.metric, self.gradnorm, self.variance, ncols=2, sizing_mode="stretch_width")
        bottom = pn.Row(pn.Column(pn.Row(self.show_test, self.discretize, margin=(0, 8)), self.boundary,
                                  sizing_mode="stretch_width"),
                        pn.Column(self.throughput, self.hint, sizing_mode="stretch_width"), sizing_mode="stretch_width")
        self.layout = pn.Column(header, grid, bottom, sizing_mode="stretch_width", css_classes=["wb-dashboard"])

    # -- wiring -----------------------------------------------------------------------------------
    def attach(self, stream, trainer=None, points: tuple[list, list, list] | None = None,
               test_points: tuple[list, list, list] | None = None) -> None:
        """Follow a new stream (and optionally control its trainer); the charts start over."""
        self.stream, self.trainer, self.cursor = stream, trainer, 0
        self.points_xy, self.test_points = points, test_points
        self.data.reset()
        self._drawn = {}
        self._status_version = -1
        self._boundary_step = None
        self.poll(force=True)

    def start_polling(self, period_ms: int = POLL_MS):
        """Poll from the current session's (or kernel's) event loop."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.poll, period=period_ms)
        return self._callback

    def stop_polling(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def _control(self, what: str) -> None:
        custom = {"pause": self._on_pause, "resume": self._on_resume, "stop": self._on_stop}[what]
        if custom is not None:
            custom()
        elif self.trainer is not None:
            {"pause": self.trainer.pause, "resume": self.trainer.resume, "stop": self.trainer.cancel}[what]()
        self.poll(force=True)

    # -- updates ----------------------------------------------------------------------------------
    # Minimum seconds between redraws of each chart. Every redraw is a Plotly.react in the browser; on a
    # busy machine six charts at 4 Hz are more than a browser can draw, so the curves the user watches
    # most update fastest and the diagnostics less often. Long runs slow down further (see _interval).
    INTERVALS = {"loss": 0.25, "metric": 0.5, "throughput": 1.0, "gradnorm": 1.5, "variance": 1.5}
    MAX_PER_TICK = 2

    def _interval(self, name: str) -> float:
        n = len(self.data.steps)
        scale = 1.0 if n < 500 else (2.0 if n < 3000 else 4.0)
        return self.INTERVALS[name] * scale

    def poll(self, force: bool = False) -> int:
        """Fold in new events and redraw what is due; returns how many events arrived."""
        count = 0
        if self.stream is not None:
            events, self.cursor = self.stream.since(self.cursor)
            count = len(events)
            self.data.extend(events)
        if force:
            self.render()
        elif self.is_visible():
            self._render_due(final=self.data.status in ("completed", "cancelled", "failed"))
        self._update_controls()
        return count

    def _figure(self, name: str) -> dict:
        d, h = self.data, self.loss.height
        return {"loss": charts.loss_figure, "metric": charts.metric_figure, "gradnorm": charts.gradnorm_figure,
                "variance": charts.variance_figure, "throughput": charts.throughput_figure}[name](d, h)

    def _render_due(self, final: bool = False) -> None:
        """Redraw the charts whose data changed and whose interval has passed (at most MAX_PER_TICK per tick;
        when the run has ended, everything at once so the final state is complete)."""
        now = time.monotonic()
        version = self.data.version
        drawn = 0
        for name in self.INTERVALS:
            seen, last = self._drawn.get(name, (-1, 0.0))
            if seen == version or (not final and (now - last < self._interval(name) * 0.95 or
                                                  drawn >= self.MAX_PER_TICK)):
                continue
            getattr(self, name).figure = self._figure(name)
            self._drawn[name] = (version, now)
            drawn += 1
        self._render_boundary()
        self._render_status()

    def _render_boundary(self, force: bool = False) -> None:
        d = self.data
        boundary_key = (d.boundary or {}).get("step"), id(d.boundary)
        if force or boundary_key != self._boundary_step:
            self._boundary_step = boundary_key
            self.boundary.figure = charts.boundary_figure(
                d, self.points_xy, self.boundary.height, discretize=self.discretize.value,
                test_points=self.test_points if self.show_test.value else None)

    def _render_status(self) -> None:
        if self._status_version == self.data.version:
            return
        self._status_version = self.data.version
        done, total = self.data.progress()
        bar = progress_html(min(done, total), total)
        if bar != self.progress.html:
            self.progress.html = bar
        hint = self._hint_html()
        if hint != self.hint.html:
            self.hint.html = hint

    def render(self) -> None:
        """Redraw everything now."""
        now = time.monotonic()
        for name in self.INTERVALS:
            getattr(self, name).figure = self._figure(name)
            self._drawn[name] = (self.data.version, now)
        self._render_boundary()
        self._render_status()
        self._update_controls()

    def _update_controls(self) -> None:
        paused = bool(self.trainer is not None and getattr(self.trainer, "paused", False))
        finished = self.data.status in ("completed", "cancelled", "failed")
        running = not finished and (self.data.status == "running" or (
            self.trainer is not None and getattr(self.trainer, "status", "") in ("running", "paused")))
        headline = self._headline_html(paused)
        if self.headline.html != headline:
            self.headline.html = headline
        self.pause_button.disabled = not running or paused
        self.resume_button.disabled = not (running and paused)
        self.stop_button.disabled = not running

    def _headline_html(self, paused: bool = False) -> str:
        d = self.data
        text = d.headline(self.idle_text)
        if paused and d.status == "running":
            text = "Paused · " + text.split(" · ", 1)[-1]
        color = {"running": "#1d4ed8", "completed": "#15803d", "cancelled": "#b45309", "failed": "#b91c1c"}.get(
            d.status, "#475569")
        body = f'<span style="font-weight:600;color:{color}">{html.escape(text)}</span>'
        if d.error:
            body += f'<div style="color:#b91c1c;margin-top:4px">{html.escape(d.error)}</div>'
        if d.gradient_info:
            methods = "; ".join(f"{html.escape(k)}: {html.escape(v.get('method', ''))}"
                                for k, v in d.gradient_info.items())
            body += f'<div style="color:#64748b;font-size:12px;margin-top:2px">gradients: {methods}</div>'
        for line in d.surrogate_lines():
            body += f'<div class="wb-surrogate" style="color:#64748b;font-size:12px">{html.escape(line)}</div>'
        return body

    def _hint_html(self) -> str:
        level, text = self.data.plateau_hint()
        colors = {"ok": ("#f0fdf4", "#166534", "#bbf7d0"), "weak": ("#fffbeb", "#92400e", "#fde68a"),
                  "plateau": ("#fef2f2", "#991b1b", "#fecaca"), "none": ("#f8fafc", "#475569", "#e2e8f0")}[level]
        title = {"ok": "Quantum gradients look healthy", "weak": "Quantum gradients are small",
                 "plateau": "Barren plateau warning", "none": "Barren-plateau indicator"}[level]
        paragraphs = "".join(f"<p style='margin:4px 0'>{_bold(html.escape(p))}</p>" for p in text.split("\n\n"))
        return (f"<div style='background:{colors[0]};color:{colors[1]};border:1px solid {colors[2]};"
                f"border-radius:8px;padding:8px 12px;font-size:13px'><b>{title}</b>{paragraphs}</div>")


def _bold(text: str) -> str:
    parts = text.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
