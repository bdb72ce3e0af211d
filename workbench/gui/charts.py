"""Live training data and the Plotly figures drawn from it (plain dict figures: cheap to rebuild).

`LiveData` folds MetricStream events (start, step, epoch, boundary, end, error) into arrays; the
figure functions turn it into Plotly figure dicts. Neither touches a widget, so a notebook, the
served app and the tests share them.
"""

from __future__ import annotations

import math
from typing import Any

from ..training.trainer import UNTIL_PAUSED

PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777"]
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#1e293b"}
PLATEAU = 1e-6  # gradient variance below this: the landscape is (close to) flat
WEAK = 1e-4


def base_layout(title: str, **extra: Any) -> dict:
    layout = {
        "title": {"text": title, "font": {"size": 14}, "x": 0.02, "xanchor": "left", "y": 0.985, "yanchor": "top",
                  "yref": "container"},
        "font": FONT, "margin": {"l": 56, "r": 18, "t": 62, "b": 46},
        "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff", "uirevision": "keep",
        # Above the plot, under the title: a legend below the axis collided with the axis title and was cut off.
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "right", "x": 1,
                   "font": {"size": 11}, "bgcolor": "rgba(255,255,255,0)"},
        "xaxis": {"gridcolor": "#e2e8f0", "zeroline": False, "linecolor": "#cbd5e1"},
        "yaxis": {"gridcolor": "#e2e8f0", "zeroline": False, "linecolor": "#cbd5e1"},
        "hovermode": "x unified",
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


def empty_figure(title: str, message: str, height: int | None = None) -> dict:
    layout = base_layout(title, xaxis={"visible": False}, yaxis={"visible": False}, hovermode=False)
    layout["annotations"] = [{"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper",
                              "yref": "paper", "font": {"size": 13, "color": "#64748b"}}]
    if height:
        layout["height"] = height
    return {"data": [], "layout": layout}


def _duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"


def epochs_text(done: Any, planned: Any) -> str:
    """'3 / 20', or '3 (until paused)' for a run without an epoch count."""
    done_text = str(done) if isinstance(done, int) else "–"
    if isinstance(planned, int) and planned >= UNTIL_PAUSED:
        return f"{done_text} (until paused)"
    return f"{done_text} / {planned if planned is not None else '–'}"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class LiveData:
    """Everything the dashboard draws, accumulated from a run's events."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.run_id: str | None = None
        self.status = "idle"
        self.error: str | None = None
        self.epochs_total = 0
        self.steps_per_epoch = 0
        self.gradient_info: dict = {}
        self.metric_name: str | None = None
        self.steps: list[int] = []
        self.loss: list[float | None] = []
        self.metric: list[float | None] = []
        self.step_time: list[float | None] = []
        self.samples_per_s: list[float | None] = []
        self.executions: list[int] = []
        self.grad_norm: dict[str, list[float | None]] = {}
        self.variance: dict[str, list[float | None]] = {}
        self.methods: dict[str, str] = {}
        # Surrogate blocks: running totals of the circuits/shots spent and what parameter shift would have
        # spent, plus the last step's fit error and gradient cosine (seed 002's honest accounting).
        self.surrogate: dict[str, dict[str, float]] = {}
        self.epochs: list[int] = []
        self.epoch_steps: list[int] = []
        self.epoch_loss: list[float | None] = []
        self.epoch_metric: list[float | None] = []
        self.val_loss: list[float | None] = []
        self.val_metric: list[float | None] = []
        self.epoch_time: list[float | None] = []
        self.boundary: dict | None = None
        self.final: dict = {}
        self.started_at: float | None = None  # the start event's time
        self.latest_at: float | None = None  # the newest event's time (elapsed stops while paused)
        self.events_seen = 0
        self.version = 0

    @property
    def points(self) -> int:
        """Data points received so far (steps + epochs): > 0 once the charts have something to draw."""
        return len(self.steps) + len(self.epochs)

    @property
    def current_epoch(self) -> int:
        return (self.epochs[-1] + 1) if self.epochs else 0

    def extend(self, events: list[dict]) -> bool:
        """Fold new events in; True when anything changed."""
        for event in events:
            self._add(event)
        if events:
            self.version += 1
        return bool(events)

    @property
    def until_paused(self) -> bool:
        """The run trains until it is paused or stopped (no epoch count to show)."""
        return self.epochs_total >= UNTIL_PAUSED

    @property
    def elapsed(self) -> float | None:
        """Seconds from the run's start to its newest event."""
        if self.started_at is None or self.latest_at is None:
            return None
        return max(0.0, self.latest_at - self.started_at)

    def _add(self, e: dict) -> None:
        self.events_seen += 1
        kind = e.get("kind")
        moment = _finite(e.get("time"))
        if moment is not None and kind != "start":
            self.latest_at = moment
        if kind == "start":
            self.started_at = moment if self.started_at is None else self.started_at
            self.run_id = e.get("run_id") or self.run_id
            self.status = "running"
            self.epochs_total = e.get("epochs", self.epochs_total)
            self.steps_per_epoch = e.get("steps_per_epoch", self.steps_per_epoch)
            self.gradient_info = e.get("gradient", {}) or {}
        elif kind == "step":
            n = len(self.steps)
            self.steps.append(int(e.get("step", n)))
            self.loss.append(_finite(e.get("loss")))
            self.metric_name = e.get("metric") or self.metric_name
            self.metric.append(_finite(e.get(self.metric_name)) if self.metric_name else None)
            self.step_time.append(_finite(e.get("step_time")))
            self.samples_per_s.append(_finite(e.get("samples_per_s")))
            quantum = e.get("quantum") or {}
            self.executions.append(int(sum(q.get("circuit_executions", 0) for q in quantum.values())))
            for name, norm in (e.get("grad_norm") or {}).items():
                self.grad_norm.setdefault(name, [None] * n).append(_finite(norm))
            for name, info in quantum.items():
                self.variance.setdefault(name, [None] * n).append(_finite(info.get("grad_variance")))
                if "surrogate_circuits" in info:
                    totals = self.surrogate.setdefault(name, {})
                    for key in ("forward_circuits", "surrogate_circuits", "parameter_shift_circuits",
                                "forward_shots", "surrogate_shots", "parameter_shift_shots"):
                        totals[key] = totals.get(key, 0) + (info.get(key) or 0)
                    for key in ("fit_error", "gradient_cosine"):
                        if info.get(key) is not None:
                            totals[key] = info[key]
                self.methods[name] = info.get("gradient_method", self.methods.get(name, ""))
            for series in (self.grad_norm, self.variance):
                for values in series.values():
                    if len(values) < n + 1:
                        values.append(None)
        elif kind == "epoch":
            self.epochs.append(int(e.get("epoch", len(self.epochs))))
            # The epoch event carries the index of the epoch's last step (as step events carry theirs), so epoch
            # points sit on the step curve and every chart ends at the run's last step.
            self.epoch_steps.append(int(e.get("step", len(self.steps) - 1)))
            self.metric_name = e.get("metric") or self.metric_name
            self.epoch_loss.append(_finite(e.get("loss")))
            self.epoch_metric.append(_finite(e.get(self.metric_name)) if self.metric_name else None)
            self.val_loss.append(_finite(e.get("val_loss")))
            self.val_metric.append(_finite(e.get(f"val_{self.metric_name}")) if self.metric_name else None)
            self.epoch_time.append(_finite(e.get("epoch_time")))
        elif kind == "boundary":
            self.boundary = e
        elif kind == "end":
            self.status = e.get("status", "completed")
            self.final = {k: v for k, v in e.items() if k not in ("kind", "time")}
        elif kind == "error":
            self.status = "failed"
            self.error = e.get("message", "training failed")

    # -- summaries --------------------------------------------------------------------------------
    def progress(self) -> tuple[int, int]:
        """(steps done, total steps) for a progress bar; a run without an epoch count: (steps done in this
        epoch, steps per epoch)."""
        if self.until_paused and self.steps_per_epoch:
            done = len(self.steps) - (self.epoch_steps[-1] + 1 if self.epoch_steps else 0)
            return (max(0, min(done, self.steps_per_epoch)), self.steps_per_epoch)
        total = self.epochs_total * self.steps_per_epoch
        return (len(self.steps), max(total, len(self.steps), 1))

    def headline(self, idle_text: str = "Waiting for the run to start…") -> str:
        if self.status == "idle":
            return idle_text
        parts = [self.status.capitalize()]
        if self.until_paused:
            parts.append(f"epoch {self.current_epoch + (self.status == 'running')} (until paused)")
        elif self.epochs_total:
            parts.append(f"epoch {min(self.current_epoch + (self.status == 'running'), self.epochs_total)}"
                         f"/{self.epochs_total}")
        # A count ("120 steps"), not "step 120": charts and titles name steps by index, the last one being 119.
        parts.append(f"{len(self.steps)} step{'s' * (len(self.steps) != 1)}")
        if self.until_paused and self.elapsed is not None:
            parts.append(f"{_duration(self.elapsed)} elapsed")
        if self.loss and self.loss[-1] is not None:
            parts.append(f"loss {self.loss[-1]:.4g}")
        if self.val_metric and self.val_metric[-1] is not None and self.metric_name:
            parts.append(f"val {self.metric_name} {self.val_metric[-1]:.3g}")
        rate = [v for v in self.samples_per_s[-10:] if v]
        if rate:
            parts.append(f"{sum(rate) / len(rate):.0f} samples/s")
        return " · ".join(parts)

    def surrogate_lines(self) -> list[str]:
        """Per surrogate block: what it spent so far against parameter shift, and how good its fit is."""
        lines = []
        for name, t in self.surrogate.items():
            unit = "shots" if t.get("forward_shots") else "circuits"
            spent = t[f"forward_{unit}"] + t[f"surrogate_{unit}"]
            text = (f"{name} (surrogate gradient): {spent:,.0f} {unit} so far ({t[f'forward_{unit}']:,.0f} forward + "
                    f"{t[f'surrogate_{unit}']:,.0f} fitting); parameter shift would have spent "
                    f"{t[f'parameter_shift_{unit}'] + t[f'forward_{unit}']:,.0f}")
            if "fit_error" in t:
                text += f" · fit error {t['fit_error']:.3f}"
            if "gradient_cosine" in t:
                text += f" · cosine with the exact gradient {t['gradient_cosine']:.2f}"
            lines.append(text)
        return lines

    def plateau_hint(self) -> tuple[str, str]:
        """(level, plain-language hint) about vanishing quantum gradients: ok | weak | plateau | none."""
        if not self.variance:
            return "none", "No quantum layer gradients yet."
        hints = []
        level = "ok"
        for name, values in self.variance.items():
            recent = [v for v in values[-20:] if v is not None]
            if not recent:
                continue
            typical = sorted(recent)[len(recent) // 2]
            if typical < PLATEAU:
                level = "plateau"
                hints.append(f"**{name}**: gradient variance ≈ {typical:.1e}, the landscape is almost flat "
                             "(a barren plateau). Training will barely move: use fewer qubits or layers, local "
                             "observables (Z on one qubit), smaller input scaling, or start closer to identity.")
            elif typical < WEAK:
                level = "weak" if level == "ok" else level
                hints.append(f"**{name}**: gradient variance ≈ {typical:.1e} is small: learning may be slow. "
                             "Watch whether it keeps falling; a shallower circuit or a higher learning rate can help.")
            else:
                hints.append(f"**{name}**: gradient variance ≈ {typical:.1e}, healthy: the quantum layer is learning.")
        return level, "\n\n".join(hints) if hints else "No quantum layer gradients yet."


# ---------------------------------------------------------------------------------------------
# Figures


def _thin(xs: list, *series: list, limit: int = 600) -> tuple[list, ...]:
    """At most about `limit` points per series, always ending with the latest point exactly.

    A long run is drawn as bin means (x = the bin's last step) so the charts stay light for the browser
    without hiding the trend; the newest event is never averaged away, so the chart's last x is always the
    last step received.
    """
    n = len(xs)
    if n <= limit:
        return (list(xs), *(list(v) for v in series))
    k = math.ceil((n - 1) / (limit - 1))
    starts = range(0, n - 1, k)
    out_x = [xs[min(i + k, n - 1) - 1] for i in starts] + [xs[-1]]
    out = []
    for values in series:
        binned = []
        for i in starts:
            chunk = [v for v in values[i:min(i + k, n - 1)] if v is not None]
            binned.append(sum(chunk) / len(chunk) if chunk else None)
        out.append(binned + [values[-1]])
    return (out_x, *out)


def loss_figure(d: LiveData, height: int = 300) -> dict:
    if not d.steps and not d.epochs:
        return empty_figure("Loss", "waiting for the first step…", height)
    xs, loss = _thin(d.steps, d.loss)
    data = [{"type": "scatter", "mode": "lines", "name": "train (step)", "x": xs, "y": loss, "line": {"color": "#93c5fd", "width": 1}}]
    if d.epochs:
        ex, train, val = _thin(d.epoch_steps, d.epoch_loss, d.val_loss)
        data.append({"type": "scatter", "mode": "lines+markers", "name": "train (epoch)", "x": ex,
                     "y": train, "line": {"color": PALETTE[0], "width": 2.5}, "marker": {"size": 5}})
        if any(v is not None for v in d.val_loss):
            data.append({"type": "scatter", "mode": "lines+markers", "name": "validation", "x": ex,
                         "y": val, "line": {"color": PALETTE[1], "width": 2.5}, "marker": {"size": 5}})
    return {"data": data, "layout": base_layout("Loss", height=height, xaxis={"title": {"text": "step"}})}


def metric_figure(d: LiveData, height: int = 300) -> dict:
    name = d.metric_name or "accuracy"
    title = name.capitalize() if name != "mae" else "Mean absolute error"
    if not d.steps and not d.epochs:
        return empty_figure(title, "waiting for the first step…", height)
    xs, metric = _thin(d.steps, d.metric)
    data = [{"type": "scatter", "mode": "lines", "name": "train (step)", "x": xs, "y": metric, "line": {"color": "#86efac", "width": 1}}]
    if d.epochs:
        ex, train, val = _thin(d.epoch_steps, d.epoch_metric, d.val_metric)
        data.append({"type": "scatter", "mode": "lines+markers", "name": "train (epoch)", "x": ex,
                     "y": train, "line": {"color": PALETTE[2], "width": 2.5}, "marker": {"size": 5}})
        if any(v is not None for v in d.val_metric):
            data.append({"type": "scatter", "mode": "lines+markers", "name": "validation", "x": ex,
                         "y": val, "line": {"color": PALETTE[1], "width": 2.5}, "marker": {"size": 5}})
    yaxis = {"range": [0, 1.02]} if name == "accuracy" else {}
    return {"data": data, "layout": base_layout(title, height=height, xaxis={"title": {"text": "step"}}, yaxis=yaxis)}


def gradnorm_figure(d: LiveData, height: int = 300, columns: int = 200) -> dict:
    if not d.grad_norm:
        return empty_figure("Gradient norm per layer", "waiting for gradients…", height)
    names = list(d.grad_norm)
    n = len(d.steps)
    k = max(1, math.ceil(n / columns))
    # Columns are bins of k steps counted back from the newest step, so the last column is the last step.
    starts = list(range((n - 1) % k - k + 1, n, k))
    xs = [d.steps[min(i + k, n) - 1] for i in starts]
    z = []
    for name in names:
        values = d.grad_norm[name]
        row = []
        for i in starts:
            chunk = [v for v in values[max(i, 0):i + k] if v is not None and v > 0]
            row.append(math.log10(sum(chunk) / len(chunk)) if chunk else None)
        z.append(row)
    data = [{"type": "heatmap", "x": xs, "y": names, "z": z, "colorscale": "Viridis",
             "colorbar": {"title": {"text": "log₁₀ ‖∇‖", "side": "right"}, "thickness": 12},
             "hovertemplate": "step %{x}<br>%{y}: 10^%{z:.2f}<extra></extra>"}]
    layout = base_layout("Gradient norm per layer (log₁₀)", height=height, hovermode="closest",
                         xaxis={"title": {"text": "step"}, "gridcolor": "rgba(0,0,0,0)"},
                         yaxis={"automargin": True, "gridcolor": "rgba(0,0,0,0)"})
    return {"data": data, "layout": layout}


def variance_figure(d: LiveData, height: int = 300) -> dict:
    if not d.variance:
        return empty_figure("Quantum gradient variance", "no quantum layer (or no step yet)", height)
    data = []
    positive = [v for values in d.variance.values() for v in values if v and v > 0]
    for i, (name, values) in enumerate(d.variance.items()):
        xs, ys = _thin(d.steps, [v if v and v > 0 else None for v in values])
        method = d.methods.get(name, "")
        data.append({"type": "scatter", "mode": "lines", "name": f"{name} ({method})" if method else name, "x": xs,
                     "y": ys, "line": {"color": PALETTE[(i + 3) % len(PALETTE)], "width": 2}})
    low = min(positive + [PLATEAU]) / 10
    layout = base_layout("Quantum gradient variance (barren-plateau indicator)", height=height,
                         xaxis={"title": {"text": "step"}}, yaxis={"type": "log", "exponentformat": "power"})
    layout["shapes"] = [{"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": low, "y1": PLATEAU,
                         "fillcolor": "rgba(220,38,38,0.08)", "line": {"width": 0}, "layer": "below"}]
    layout["annotations"] = [{"text": "plateau zone", "xref": "paper", "x": 0.99, "xanchor": "right", "yref": "y",
                              "y": math.log10(PLATEAU), "yanchor": "top", "showarrow": False,
                              "font": {"size": 10, "color": "#b91c1c"}}]
    return {"data": data, "layout": layout}


def boundary_figure(d: LiveData, points: tuple[list, list, list] | None = None, height: int = 340, *,
                    test_points: tuple[list, list, list] | None = None, discretize: bool = False) -> dict:
    """Decision boundary: class probability (binary) or predicted class over a grid, with the data on top.
    test_points: also draw the test samples (hollow); discretize: colour by predicted class only."""
    title = "Decision boundary"
    if d.boundary is None:
        message = "appears every few epochs for 2-D classification data"
        fig = empty_figure(title, message, height)
        if points is not None:
            fig = {"data": _scatter_classes(*points), "layout": base_layout(
                title + " (data)", height=height, hovermode="closest", yaxis={"scaleanchor": "x"})}
        return fig
    b = d.boundary
    binary = b.get("binary", True)
    z = [[1.0 if v >= 0.5 else 0.0 for v in row] for row in b["z"]] if (discretize and binary) else b["z"]
    data = [{"type": "contour", "x": b["x"], "y": b["y"], "z": z, "showscale": binary and not discretize,
             "opacity": 0.75,
             "colorscale": [[0, "#fdba74"], [0.5, "#f8fafc"], [1, "#93c5fd"]] if binary else "Portland",
             "autocontour": not binary,
             "contours": {"coloring": "heatmap", "showlines": True, "start": 0.5, "end": 0.5, "size": 1.0}
             if binary else {"coloring": "heatmap", "showlines": False},
             "line": {"color": "#0f172a", "width": 2}, "hoverinfo": "skip",
             "colorbar": {"title": {"text": "P(class 1)"}, "thickness": 12}}]
    if points is not None:
        data.extend(_scatter_classes(*points))
    if test_points is not None:
        for trace in _scatter_classes(*test_points):
            trace["name"] = trace["name"].replace("class", "test")
            trace["marker"] = {**trace["marker"], "symbol": "circle-open", "size": 8,
                               "line": {"width": 2, "color": trace["marker"]["color"]}}
            data.append(trace)
    layout = base_layout(f"{title} · after epoch {b.get('epoch', 0) + 1} (step {b.get('step', 0)})", height=height,
                         hovermode="closest",
                         xaxis={"range": [b["x"][0], b["x"][-1]], "title": {"text": "x₁"}},
                         yaxis={"range": [b["y"][0], b["y"][-1]], "title": {"text": "x₂"}})
    return {"data": data, "layout": layout}


def _scatter_classes(x: list, y: list, labels: list) -> list[dict]:
    traces = []
    for i, cls in enumerate(sorted(set(labels))):
        xs = [a for a, c in zip(x, labels) if c == cls]
        ys = [b for b, c in zip(y, labels) if c == cls]
        traces.append({"type": "scatter", "mode": "markers", "name": f"class {cls}", "x": xs, "y": ys,
                       "marker": {"size": 6, "color": PALETTE[(1 - i) % len(PALETTE)] if i < 2 else PALETTE[i],
                                  "line": {"width": 0.8, "color": "#ffffff"}}})
    return traces


def throughput_figure(d: LiveData, height: int = 300) -> dict:
    if not d.steps:
        return empty_figure("Step time and circuit executions", "waiting for the first step…", height)
    xs, times, execs = _thin(d.steps, [t * 1000 if t is not None else None for t in d.step_time], d.executions)
    data = [{"type": "scatter", "mode": "lines", "name": "step time (ms)", "x": xs, "y": times,
             "line": {"color": PALETTE[0], "width": 1.8}},
            {"type": "scatter", "mode": "lines", "name": "circuit executions / step", "x": xs, "y": execs,
             "yaxis": "y2", "line": {"color": PALETTE[3], "width": 1.8, "dash": "dot"}}]
    layout = base_layout("Step time and circuit executions", height=height, xaxis={"title": {"text": "step"}},
                         yaxis={"title": {"text": "ms"}, "rangemode": "tozero"})
    layout["yaxis2"] = {"title": {"text": "circuits"}, "overlaying": "y", "side": "right", "showgrid": False,
                        "rangemode": "tozero"}
    layout["margin"] = {**layout["margin"], "r": 56}
    return {"data": data, "layout": layout}


# ---------------------------------------------------------------------------------------------
# Run comparison, benchmark and dataset preview


def compare_figure(series: dict[str, list[tuple[int, float]]], labels: dict[str, str], metric: str,
                   height: int = 360) -> dict:
    if not any(series.values()):
        return empty_figure(f"{metric} by run", "pick one or more runs with recorded epochs", height)
    data = []
    for i, (run_id, points) in enumerate(series.items()):
        data.append({"type": "scatter", "mode": "lines+markers", "name": labels.get(run_id, run_id),
                     "x": [p[0] for p in points], "y": [p[1] for p in points],
                     "line": {"color": PALETTE[i % len(PALETTE)], "width": 2.2}, "marker": {"size": 5}})
    return {"data": data, "layout": base_layout(f"{metric} by run", height=height,
                                                xaxis={"title": {"text": "step"}})}


def hybrid_vs_classical_figure(hybrid: LiveData, classical: LiveData, height: int = 340) -> dict:
    metric = hybrid.metric_name or classical.metric_name or "accuracy"
    if not hybrid.epochs and not classical.epochs:
        return empty_figure(f"Hybrid vs classical · validation {metric}",
                            "train the network, then its matched classical baseline", height)
    data = []
    for name, d, color in (("hybrid", hybrid, PALETTE[3]), ("classical baseline", classical, PALETTE[6])):
        if not d.epochs:
            continue
        values = d.val_metric if any(v is not None for v in d.val_metric) else d.epoch_metric
        losses = d.val_loss if any(v is not None for v in d.val_loss) else d.epoch_loss
        data.append({"type": "scatter", "mode": "lines+markers", "name": f"{name} · {metric}",
                     "x": [e + 1 for e in d.epochs], "y": values, "line": {"color": color, "width": 2.4}})
        data.append({"type": "scatter", "mode": "lines", "name": f"{name} · loss", "x": [e + 1 for e in d.epochs],
                     "y": losses, "yaxis": "y2", "line": {"color": color, "width": 1.5, "dash": "dot"}})
    layout = base_layout(f"Hybrid vs matched classical baseline · validation {metric}", height=height,
                         xaxis={"title": {"text": "epoch"}}, yaxis={"title": {"text": metric}})
    layout["yaxis2"] = {"title": {"text": "loss"}, "overlaying": "y", "side": "right", "showgrid": False}
    layout["margin"] = {**layout["margin"], "r": 56}
    return {"data": data, "layout": layout}


def benchmark_figure(rows: list[dict], height: int | None = None) -> dict:
    timed = [r for r in rows if r.get("seconds") is not None]
    if not timed:
        return empty_figure("Time per training step", "press “Run benchmark” to time one step per method", 320)
    timed = sorted(timed, key=lambda r: r["seconds"], reverse=True)
    labels = [f"{r['target']} · {r['gradient']}" for r in timed]
    ms = [r["seconds"] * 1000 for r in timed]
    colors = [{"torch": PALETTE[0], "torch-density": PALETTE[5]}.get(r["target"], PALETTE[3]) for r in timed]
    data = [{"type": "bar", "orientation": "h", "x": ms, "y": labels, "marker": {"color": colors},
             "text": [f"{v:.1f} ms" if v < 1000 else f"{v / 1000:.2f} s" for v in ms], "textposition": "outside",
             "cliponaxis": False, "hovertemplate": "%{y}: %{x:.2f} ms<extra></extra>"}]
    layout = base_layout("Time per training step (lower is better)", hovermode="closest",
                         height=height or max(260, 70 + 34 * len(timed)),
                         xaxis={"title": {"text": "milliseconds per step"}, "rangemode": "tozero"},
                         yaxis={"automargin": True})
    layout["margin"] = {**layout["margin"], "r": 70}
    layout["showlegend"] = False
    return {"data": data, "layout": layout}


def dataset_preview_figure(dataset, height: int = 320, limit: int = 400) -> dict:
    """Scatter of the first two features (by class) or a row of sample images."""
    X = dataset.X_train
    y = dataset.y_train
    shape = tuple(dataset.input_shape)
    name = dataset.name
    if len(shape) == 3:
        count = min(8, len(X))
        data = []
        layout = base_layout(f"{name}: sample images", height=height, hovermode="closest")
        for i in range(count):
            image = X[i].mean(0).flip(0).tolist()
            axis = "" if i == 0 else str(i + 1)
            data.append({"type": "heatmap", "z": image, "colorscale": "Greys", "reversescale": False, "showscale": False,
                         "xaxis": f"x{axis}", "yaxis": f"y{axis}", "hoverinfo": "skip"})
            domain = [i / count + 0.01, (i + 1) / count - 0.01]
            label = dataset.class_names[int(y[i])] if dataset.class_names and dataset.task == "classification" \
                else ""
            layout[f"xaxis{axis}"] = {"domain": domain, "visible": False, "anchor": f"y{axis}"}
            layout[f"yaxis{axis}"] = {"visible": False, "anchor": f"x{axis}", "scaleanchor": f"x{axis}"}
            layout.setdefault("annotations", []).append(
                {"text": f"label {label}", "x": (domain[0] + domain[1]) / 2, "y": 0.05, "xref": "paper",
                 "yref": "paper", "showarrow": False, "font": {"size": 11}})
        return {"data": data, "layout": layout}
    X = X[:limit].reshape(min(limit, len(X)), -1)
    y = y[:limit]
    names = dataset.feature_names or [f"x{i + 1}" for i in range(X.shape[1])]
    if X.shape[1] == 1:
        target = y if y.dim() == 1 else y[:, 0]
        data = [{"type": "scatter", "mode": "markers", "x": X[:, 0].tolist(), "y": target.tolist(),
                 "marker": {"size": 6, "color": PALETTE[0]}, "name": "samples"}]
        ylabel = (dataset.description.get("target_names") or ["target"])[0]
        return {"data": data, "layout": base_layout(f"{name}: {names[0]} vs {ylabel}", height=height,
                                                    hovermode="closest", xaxis={"title": {"text": names[0]}},
                                                    yaxis={"title": {"text": ylabel}})}
    if dataset.task == "classification":
        labels = [dataset.class_names[int(c)] if dataset.class_names else str(int(c)) for c in y.tolist()]
        data = _scatter_classes(X[:, 0].tolist(), X[:, 1].tolist(), labels)
    else:
        target = y if y.dim() == 1 else y[:, 0]
        data = [{"type": "scatter", "mode": "markers", "x": X[:, 0].tolist(), "y": X[:, 1].tolist(),
                 "marker": {"size": 6, "color": target.tolist(), "colorscale": "Viridis", "showscale": True}}]
    title = f"{name}: {names[0]} vs {names[1]}" + (f" (of {X.shape[1]} features)" if X.shape[1] > 2 else "")
    return {"data": data, "layout": base_layout(title, height=height, hovermode="closest",
                                                xaxis={"title": {"text": names[0]}},
                                                yaxis={"title": {"text": names[1]}})}
