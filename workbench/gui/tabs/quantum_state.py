"""Quantum state view: pick a sample (click it on the dataset plot or type its number) and see, for the
network's quantum block, each qubit's Bloch vector after the encoding and after every ansatz layer, its
entanglement entropy, and the output probabilities; it follows the weights while training runs (the
run's weight snapshots, a few a second, else its checkpoints; see TrainingSession.run_model) and says
which step's weights it shows.

The numbers come from `workbench.inspect.inspect_sample` (pure functions over the torch engine); this
view only draws them.
"""

from __future__ import annotations

import html
import json
import time

import panel as pn
import param
from panel.viewable import Viewer

from ... import inspect as quantum_inspect
from .. import charts, quantum_charts
from ..components import LiveChart

REFRESH_S = 1.0  # while training: recompute at most this often (a few small statevector runs)


def _arrow_svg(x: float, z: float) -> str:
    """The Bloch vector's projection on the X–Z plane as a small dial (|0⟩ up, |+⟩ right)."""
    r = 17
    return (f"<svg width='40' height='40' viewBox='-20 -20 40 40' aria-hidden='true'>"
            f"<circle r='{r}' fill='#f8fafc' stroke='#cbd5e1'/><line x1='0' y1='0' x2='{x * r:.2f}' "
            f"y2='{-z * r:.2f}' stroke='#7c3aed' stroke-width='2.5' stroke-linecap='round'/>"
            f"<circle cx='{x * r:.2f}' cy='{-z * r:.2f}' r='2.6' fill='#7c3aed'/></svg>")


def _weights_text(at: dict | None) -> str:
    """Which weights the view shows, e.g. 'weights after step 17 (live)', with the step as data for tests."""
    if not at:
        return "<span class='wb-state-weights'>initial weights (not trained)</span>"
    source = {"live": "live", "checkpoint": "last checkpoint", "final": "final"}.get(at.get("source"), "")
    step = at.get("step")
    where = f"after step {step}" if isinstance(step, int) and step >= 0 else "before training"
    return (f"<span class='wb-state-weights' data-step='{step if isinstance(step, int) else ''}' "
            f"data-source='{html.escape(str(at.get('source', '')))}'>weights {where} ({source})</span>")


class QuantumStateView(Viewer):
    """The state inside the first quantum block for one chosen sample."""

    sample = param.Integer(default=0, bounds=(0, None), doc="Index of the chosen training sample.")
    block = param.String(default="", doc="The quantum block shown ('' = the first).")
    view = param.Dict(default=None, allow_None=True, doc="inspect_sample's answer for the current sample.")

    def __init__(self, model_source, dataset_source, **params):
        """Args:
            model_source: () -> (model or None, key) — the model to look into and a key that changes with its
                weights (the app gives the training run's model, or the canvas network compiled fresh).
            dataset_source: () -> dataset or None.
        """
        super().__init__(**params)
        self._model_source, self._dataset_source = model_source, dataset_source
        self._key = None
        self._computed_at = 0.0
        self.picker = LiveChart(figure=charts.empty_figure("Samples", "loading…", 300), height=300,
                                sizing_mode="stretch_width", css_classes=["wb-state-picker"])
        self.picker.param.watch(self._on_click, "clicked")
        self.sample_input = pn.widgets.IntInput.from_param(self.param.sample, name="Sample #", width=140,
                                                           css_classes=["wb-state-sample"])
        self.table = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-bloch-table"])
        self.entropy = LiveChart(figure=charts.empty_figure("Entanglement entropy", "pick a sample", 260),
                                 height=260, sizing_mode="stretch_width", css_classes=["wb-state-entropy"])
        self.probabilities = LiveChart(figure=charts.empty_figure("Output probabilities", "pick a sample", 260),
                                       height=260, sizing_mode="stretch_width", css_classes=["wb-state-probs"])
        self.message = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-state-message"])
        self.param.watch(lambda _: self.refresh(force=True), ["sample", "block"])
        self.param.watch(lambda _: self._draw(), "view")
        intro = pn.pane.HTML(
            "<div class='wb-section-title'>Inside the quantum layer</div><div class='wb-muted'>Click a point on the "
            "dataset (or type its number): each qubit's Bloch vector after the encoding and after every layer, how "
            "entangled it is with the others, and the probabilities of the measured bitstrings. It follows the "
            "weights while the network trains.</div>", sizing_mode="stretch_width")
        left = pn.Column(self.picker, self.sample_input, sizing_mode="stretch_width", css_classes=["wb-card"],
                         margin=(4, 8))
        right = pn.Column(self.message, self.table, pn.Row(self.entropy, self.probabilities,
                                                           sizing_mode="stretch_width"),
                          sizing_mode="stretch_width", css_classes=["wb-card"], margin=(4, 8))
        self._layout = pn.Column(intro, pn.Row(pn.Column(left, width=420), right, sizing_mode="stretch_width"),
                                 sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    # -- data ---------------------------------------------------------------------------------------
    def _on_click(self, event) -> None:
        point = event.new or {}
        index = point.get("customdata")
        if index is None:
            return
        self.sample = int(index[0] if isinstance(index, list) else index)

    def refresh(self, force: bool = False) -> None:
        """Recompute when the model's weights (or the sample) changed; at most every REFRESH_S while training."""
        model, key = self._model_source()
        dataset = self._dataset_source()
        self._draw_picker(dataset)
        if model is None or dataset is None:
            self.view = None
            self.message.object = "<div class='wb-note'>Build a valid network with a quantum block and pick a " \
                                  "dataset that fits it.</div>"
            return
        now = time.monotonic()
        if not force and (key == self._key or now - self._computed_at < REFRESH_S):
            return
        self._key, self._computed_at = key, now
        index = min(self.sample, len(dataset.X_train) - 1)
        try:
            view = quantum_inspect.inspect_sample(model, dataset.X_train[index], self.block or None)
            self.view = {**view, "weights_at": getattr(model, "weights_at", None)}
            self.message.object = ""
        except (ValueError, KeyError, RuntimeError) as err:
            self.view = None
            self.message.object = f"<div class='wb-note'>{html.escape(str(err))}</div>"

    def _draw_picker(self, dataset) -> None:
        key = id(dataset), self.sample
        if getattr(self, "_picker_key", None) == key:
            return
        self._picker_key = key
        if dataset is None:
            self.picker.figure = charts.empty_figure("Samples", "no dataset", 300)
            return
        self.picker.figure = quantum_charts.sample_picker_figure(dataset, self.sample, height=300)

    def _draw(self) -> None:
        view = self.view
        if not view:
            self.table.object = ""
            return
        stages = view["stages"]
        head = "".join(f"<th>{html.escape(s['name'])}</th>" for s in stages)
        rows = []
        for q in range(view["qubits"]):
            cells = []
            for s in stages:
                x, y, z = s["bloch"][q]
                cells.append(f"<td class='wb-bloch' data-qubit='{q}' data-stage='{html.escape(s['name'])}' "
                             f"data-bloch='{html.escape(json.dumps([x, y, z]))}' "
                             f"title='⟨X⟩={x:.3f} ⟨Y⟩={y:.3f} ⟨Z⟩={z:.3f} · entropy {s['entropy'][q]:.3f} bit'>"
                             f"{_arrow_svg(x, z)}<div class='wb-muted' style='font-size:11px'>"
                             f"({x:+.2f}, {y:+.2f}, {z:+.2f})</div></td>")
            rows.append(f"<tr><th>q{q}</th>{''.join(cells)}</tr>")
        self.table.object = (f"<div class='wb-muted'>Block <b>{html.escape(view['block'])}</b> · sample "
                             f"#{self.sample} · {_weights_text(view.get('weights_at'))} · Bloch vector (⟨X⟩, ⟨Y⟩, "
                             f"⟨Z⟩); the dial shows its X–Z part (up = |0⟩)</div><table class='wb-table wb-bloch-grid'><tr><th>qubit</th>{head}</tr>"
                             + "".join(rows) + "</table>")
        self.entropy.figure = quantum_charts.entropy_figure(view, height=260)
        self.probabilities.figure = quantum_charts.probability_figure(view, height=260)
