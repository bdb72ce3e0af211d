"""Benchmark tab: time one training step of the network on the canvas for every target and gradient method
that applies (in a background thread, rows filling in), then show `workbench.bench.recommend`'s verdict.

A `pn.viewable.Viewer` over the shared BuilderState and RunSetup; the app calls `poll()` from its periodic
callback and `cancel()` when the session ends.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import panel as pn
from panel.viewable import Viewer

from .. import charts, icons
from ...jobs.benchmark import BenchmarkJob
from ..components import LiveChart
from ..run_setup import target_choices


PEERS_RESULT = Path(__file__).resolve().parents[2] / "bench" / "results" / "peers.json"


def peer_rows(qubits: int, result_path: Path = PEERS_RESULT) -> tuple[list[dict], str]:
    """Rows of the last `workbench bench peers` run at the qubit count nearest `qubits`, for the frameworks
    installed here (the peers suite times one standard network written in every framework), and a caption."""
    from ...bench.peers import installed

    try:
        result = json.loads(result_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], "no peers benchmark result found: run `workbench bench peers` to make one"
    sizes = sorted({r["n"] for r in result.get("rows", []) if r.get("step_ms") is not None})
    if not sizes:
        return [], "the peers benchmark result has no timed rows"
    n = min(sizes, key=lambda size: (abs(size - qubits), size))
    rows = [r for r in result["rows"]
            if r["n"] == n and r.get("step_ms") is not None and not installed(r["variant"])]
    batch = rows[0]["batch"] if rows else "?"
    caption = (f"Peer frameworks on the peers suite's standard {n}-qubit network (batch {batch}), measured "
               f"{result.get('created', '?')[:10]} with `workbench bench peers`; frameworks installed here.")
    return sorted(rows, key=lambda r: r["step_ms"]), caption


def _html_note(text: str, kind: str = "note") -> str:
    return f"<div class='wb-{kind}'>{text}</div>"


class BenchmarkTab(Viewer):
    """The benchmark controls, bars, table and recommendation of one session."""

    def __init__(self, builder, setup, **params):
        super().__init__(**params)
        self.builder, self.setup = builder, setup
        self.benchmark: BenchmarkJob | None = None
        self._bench_version = -1
        self._build()
        self.show_peers = pn.widgets.Checkbox(name="Show peer frameworks (the last `workbench bench peers` run)",
                                              value=False, css_classes=["wb-bench-peers"])
        self.peers_table = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-bench-peers-table"])
        self.show_peers.param.watch(lambda *_: self.render_peers(), "value")
        self._layout.extend([self.show_peers, self.peers_table])

    def __panel__(self):
        return self._layout

    def render_peers(self) -> None:
        if not self.show_peers.value:
            self.peers_table.object = ""
            return
        blocks = [b for b in self.builder.blocks if b.get("type") == "quantum"]
        rows, caption = peer_rows(int(blocks[0].get("qubits", 4)) if blocks else 4)
        body = "".join(f"<tr><td>{html.escape(r['framework'])}</td><td>{html.escape(r['variant'])}</td>"
                       f"<td class=num>{r['step_ms']:.2f}</td></tr>" for r in rows)
        self.peers_table.object = (f"<div class='wb-muted'>{html.escape(caption)}</div>" + (
            "<table class='wb-table'><tr><th>framework</th><th>variant</th><th>ms / step</th></tr>" + body +
            "</table>" if rows else ""))

    def cancel(self) -> None:
        if self.benchmark is not None:
            self.benchmark.cancel()

    def _build(self):
        runnable = [c for c in target_choices() if not c["reason"] and c["kind"] in ("torch", "cpu", "gpu")]
        self.bench_targets = pn.widgets.CheckBoxGroup(label="Targets", options=[c["name"] for c in runnable],
                                                      value=[c["name"] for c in runnable if c["name"] in
                                                             ("torch", "torch-density", "qpp-cpu")
                                                             or c["kind"] == "gpu"],
                                                      inline=True, css_classes=["wb-bench-targets"])
        self.bench_batch = pn.widgets.IntInput(label="Batch size", value=8, start=1, end=4096, width=120,
                                               css_classes=["wb-bench-batch"])
        self.bench_repeats = pn.widgets.IntInput(label="Timed steps", value=2, start=1, end=20, width=120,
                                                 css_classes=["wb-bench-repeats"])
        self.bench_hardware = pn.widgets.Checkbox(label="Include emulated hardware targets (slow: shots)", value=False,
                                                  css_classes=["wb-bench-hardware"])
        self.bench_button = pn.widgets.Button(label="Run benchmark", icon=icons.TIMER, color="primary", width=170,
                                              css_classes=["wb-bench-run"])
        self.bench_cancel = pn.widgets.Button(label="Cancel", width=90, disabled=True, css_classes=["wb-bench-cancel"])
        self.bench_button.on_click(lambda _: self.start_benchmark())
        self.bench_cancel.on_click(lambda _: self.benchmark and self.benchmark.cancel())
        self.bench_status = pn.widgets.StaticText(value="", sizing_mode="stretch_width",
                                                  css_classes=["wb-bench-status"])
        self.bench_plot = LiveChart(figure=charts.benchmark_figure([]), sizing_mode="stretch_width", height=320,
                                    css_classes=["wb-bench-chart"])
        self.bench_table = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-bench-table"])
        self.bench_recommendation = pn.pane.HTML("", sizing_mode="stretch_width",
                                                 css_classes=["wb-bench-recommendation"])
        intro = pn.pane.HTML(
            "<div class='wb-section-title'>Benchmark: one training step per target and gradient method</div>"
            "<div class='wb-muted'>Times forward, loss, backward and the optimiser update of the network on the "
            "canvas, compiled with each target and gradient method that applies (median of the timed steps after a "
            "warm-up). Combinations that do not apply are listed with the reason.</div>",
            sizing_mode="stretch_width")
        controls = pn.Row(self.bench_batch, self.bench_repeats, pn.Column(self.bench_targets, self.bench_hardware),
                          self.bench_button, self.bench_cancel, sizing_mode="stretch_width")
        self._layout = pn.Column(intro, controls, self.bench_status, self.bench_plot, self.bench_table,
                                 self.bench_recommendation, sizing_mode="stretch_width", css_classes=["wb-card"],
                                 margin=(4, 8))

    def start_benchmark(self) -> bool:
        if not self.builder.valid:
            self.bench_status.value = _html_note("Fix the network first: " + html.escape(self.builder.error["message"]),
                                                 "alert")
            return False
        if self.benchmark is not None and not self.benchmark.finished:
            return False
        wanted = set(self.bench_targets.value)
        targets = [c for c in target_choices() if c["name"] in wanted or
                   (self.bench_hardware.value and c["kind"] == "hardware")]
        try:
            _, dataset = self.setup.dataset_problem(self.builder.spec)
            # A job: timed in a worker process, never in the server.
            self.benchmark = BenchmarkJob(self.builder.spec, targets=targets, dataset=dataset,
                                          batch=self.bench_batch.value, noise=dict(self.setup.noise) or None,
                                          shots=self.setup.shots or None, precision=self.setup.precision,
                                          include_hardware=self.bench_hardware.value,
                                          repeats=self.bench_repeats.value)
        except Exception as err:
            self.bench_status.value = _html_note(html.escape(str(err)), "alert")
            return False
        self.benchmark.start()
        self._bench_version = -1
        self.poll()
        return True

    def poll(self) -> None:
        run = self.benchmark
        if run is None or run.version == self._bench_version:
            return
        self._bench_version = run.version
        rows = run.snapshot()
        self.bench_button.disabled = not run.finished
        self.bench_cancel.disabled = run.finished
        running = next((r for r in rows if r.get("status") == "running"), None)
        advice = run.recommendation
        if advice is None:
            self.bench_recommendation.object = ""
        elif advice["status"] == "running":
            self.bench_recommendation.object = _html_note("Recommendation: checking each method's gradient against "
                                                          "the exact one…")
        else:
            self.bench_recommendation.object = _html_note(
                "<b>Recommendation:</b> " + html.escape(advice["sentence"][:1].upper() + advice["sentence"][1:]),
                "success" if advice["status"] == "done" else "alert")
        if run.finished:
            status = f"Done: {run.done} combination(s) timed with a batch of {run.batch}."
        elif running:
            status = (f"Timing {running['target']} · {running['gradient']} ({run.done + 1}/{run.total}, batch "
                      f"{run.batch})…")
        else:
            status = "Starting…"
        self.bench_status.value = f"<span class='wb-muted'>{html.escape(status)}</span>"
        self.bench_plot.figure = charts.benchmark_figure(rows)
        body = []
        for r in sorted(rows, key=lambda r: (r.get("seconds") is None, r.get("seconds") or 0)):
            seconds = r.get("seconds")
            ms = f"{seconds * 1000:.2f}" if seconds is not None else "–"
            execs = f"{r['executions']:.0f}" if r.get("executions") is not None else "–"
            state = r.get("status") or ("skipped" if r.get("skip") else "queued")
            pill = {"done": "wb-ok-pill", "failed": "wb-bad-pill", "skipped": "wb-warn-pill"}.get(state, "")
            body.append(f"<tr><td>{html.escape(r['target'])}</td><td>{html.escape(r['gradient'])}</td>"
                        f"<td class=num>{ms}</td><td class=num>{execs}</td><td><span class='wb-pill {pill}'>{state}"
                        f"</span> <span class='wb-muted'>{html.escape(r.get('skip') or '')}</span></td></tr>")
        self.bench_table.object = ("<table class='wb-table'><tr><th>target</th><th>gradient</th><th>ms / step</th>"
                                   "<th>circuits / step</th><th>status</th></tr>" + "".join(body) + "</table>")
