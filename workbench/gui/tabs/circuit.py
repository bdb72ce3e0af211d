"""Circuit tab: the circuit of the chosen quantum block (drawing, statistics, gate list) and, on demand, its
descriptors (depth, two-qubit gates, expressibility, entangling capability, gradient variance).

A `pn.viewable.Viewer` over the shared BuilderState (the block chooser follows the canvas selection and
selects on the canvas in turn) and RunSetup (batch, noise and precision size the memory estimate). The app
calls `poll()` from its periodic callback to show finished descriptor samples.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import panel as pn
from panel.viewable import Viewer

from .. import charts, icons
from ..circuit_svg import block_circuit, circuit_stats, circuit_svg, human_bytes
from ..components import control_button


def _html_note(text: str, kind: str = "note") -> str:
    return f"<div class='wb-{kind}'>{text}</div>"


def _stat(label: str, value: Any) -> str:
    return (f"<div style='display:inline-block;min-width:118px;margin:0 10px 6px 0;padding:6px 10px;"
            f"border:1px solid #e2e8f0;border-radius:8px;background:#fff'><div style='font-size:11px;color:#64748b;"
            f"text-transform:uppercase;letter-spacing:.04em'>{html.escape(label)}</div><div style='font-size:17px;"
            f"font-weight:700;color:#0f172a'>{html.escape(str(value))}</div></div>")


class CircuitTab(Viewer):
    """The selected quantum block's circuit and descriptors."""

    def __init__(self, builder, setup, **params):
        super().__init__(**params)
        self.builder, self.setup = builder, setup
        self._shown_block: str | None = None  # the block the chooser shows for the canvas selection
        self._layout = self._build()
        pn.bind(lambda *_: self._sync_circuit_choice(), builder.param.revision, builder.param.selected, watch=True)
        setup.param.watch(lambda *_: self._render_circuit(), ["noise", "precision", "batch_size"])
        self._sync_circuit_choice()

    def __panel__(self):
        return self._layout

    def poll(self) -> None:
        self._poll_descriptors()

    def _build(self):
        self.circuit_block = pn.widgets.Select(label="Quantum block", options=[], width=260,
                                               css_classes=["wb-circuit-block"])
        self.circuit_block.param.watch(self._on_circuit_block, "value")
        self.circuit_stats = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-circuit-stats"])
        self.circuit_view = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-circuit-view"],
                                         min_height=200)
        self.circuit_listing = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-circuit-listing"])
        intro = pn.pane.HTML("<div class='wb-section-title'>Circuit of the selected quantum block</div>"
                             "<div class='wb-muted'>Drawn from the same gate list the simulators run; it follows "
                             "every change in the block's settings.</div>", sizing_mode="stretch_width")
        self.descriptors_button = control_button(label="Compute descriptors", icon=icons.TIMER, color="primary",
                                                 width=200, css_classes=["wb-descriptors-run"])
        self.descriptors_button.on_click(lambda _: self.compute_descriptors())
        self.descriptors = pn.pane.HTML("<div class='wb-muted'>Expressibility, entangling capability and the "
                                        "gradient variance over random weights (barren-plateau check), estimated by "
                                        "sampling 200 weight vectors.</div>", sizing_mode="stretch_width",
                                        css_classes=["wb-descriptors"])
        self._descriptor_job: dict | None = None
        return pn.Column(intro, pn.Row(self.circuit_block, self.descriptors_button), self.circuit_stats,
                         self.descriptors, self.circuit_view, self.circuit_listing, sizing_mode="stretch_width")

    def compute_descriptors(self) -> None:
        """Sample the selected block's descriptors in a background thread (the page stays responsive)."""
        from ...inspect import circuit_descriptors

        index = self._block_position(self.circuit_block.value) if self.circuit_block.value else None
        if index is None or not self.builder.valid:
            self.descriptors.object = _html_note("Pick a quantum block of a valid network first.", "alert")
            return
        block = self.builder.spec_object().blocks[index]
        features = self.builder.shapes[index][0][0]
        job: dict = {"block": block.id, "result": None, "error": None}
        self._descriptor_job = job

        def work():
            try:
                job["result"] = circuit_descriptors(block, features)
            except Exception as err:  # shown in the tab; the page carries on
                job["error"] = f"{err.__class__.__name__}: {err}"

        self.descriptors_button.disabled = True
        self.descriptors.object = "<div class='wb-muted'>Sampling 200 random weight vectors…</div>"
        threading.Thread(target=work, name="workbench-descriptors", daemon=True).start()

    def _poll_descriptors(self) -> None:
        job = self._descriptor_job
        if job is None or (job["result"] is None and job["error"] is None):
            return
        self._descriptor_job = None
        self.descriptors_button.disabled = False
        if job["error"]:
            self.descriptors.object = _html_note(html.escape(job["error"]), "alert")
            return
        r = job["result"]

        def fmt(value, spec=".3g"):
            return "–" if value is None else format(value, spec)

        variance = r["gradient_variance"]
        verdict = "" if variance is None else (
            " <span class='wb-pill wb-bad-pill'>barren plateau risk</span>" if variance < charts.PLATEAU else
            " <span class='wb-pill wb-warn-pill'>small gradients</span>" if variance < charts.WEAK else
            " <span class='wb-pill wb-ok-pill'>trainable</span>")
        self.descriptors.object = (
            f"<div class='wb-muted'>Block <b>{html.escape(job['block'])}</b> · {r['samples']} random weight vectors"
            "</div>" + "".join([
                _stat("depth", r["depth"]), _stat("two-qubit gates", r["two_qubit_gates"]),
                _stat("parameters", r["parameters"]), _stat("expressibility (KL, lower = more)",
                                                             fmt(r["expressibility"])),
                _stat("entangling capability", fmt(r["entangling_capability"])),
                _stat("gradient variance", fmt(r["gradient_variance"], ".2e"))]) + verdict)

    def _on_circuit_block(self, event) -> None:
        if event.new is None:
            return
        index = self._block_position(event.new)
        if event.new != self._shown_block and index is not None and index != self.builder.selected:
            self.builder.select(index)  # the user chose another block here: select it on the canvas too
        self._render_circuit()

    def _block_position(self, block_id: str) -> int | None:
        for i, block in enumerate(self.builder.blocks):
            if block.get("id") == block_id and block.get("type") == "quantum":
                return i
        return None

    def _sync_circuit_choice(self) -> None:
        ids = [str(b.get("id")) for b in self.builder.blocks if b.get("type") == "quantum"]
        selected = self.builder.selected_block
        value = self.circuit_block.value
        if selected is not None and selected.get("type") == "quantum":
            value = str(selected.get("id"))
        if value not in ids:
            value = ids[0] if ids else None
        self._shown_block = value
        if (self.circuit_block.options, self.circuit_block.value) != (ids, value):
            self.circuit_block.param.update(options=ids, value=value)
        self._render_circuit()

    def _render_circuit(self) -> None:
        block_id = self.circuit_block.value
        index = self._block_position(block_id) if block_id else None
        if index is None:
            self.circuit_stats.object = ""
            self.circuit_view.object = _html_note("The network has no quantum block yet: drag one from the palette's "
                                                  "<b>Quantum layers</b> group.")
            self.circuit_listing.object = ""
            return
        block = self.builder.blocks[index]
        shapes = self.builder.shapes[index] if index < len(self.builder.shapes) else None
        features = shapes[0][0] if shapes and shapes[0] and len(shapes[0]) == 1 else None
        try:
            circuit, plan, quantum = block_circuit(block, features)
        except Exception as err:  # pydantic or IR errors of a half-edited block
            self.circuit_stats.object = ""
            self.circuit_view.object = _html_note(f"This block cannot be drawn yet: {html.escape(str(err))}", "alert")
            self.circuit_listing.object = ""
            return
        try:
            execution = self.setup.execution_config()
        except ValueError:  # a setting the run setup tab is already explaining: size it for the defaults
            execution = None
        stats = circuit_stats(circuit, quantum, batch=self.setup.batch_size, execution=execution)
        self.circuit_stats.object = "".join([
            _stat("qubits", stats["qubits"]),
            _stat("trainable params", stats["trainable"]),
            _stat("input angles", stats["input_angles"]),
            _stat("gates", f"{stats['gates']} ({stats['two_qubit']} 2-q)"),
            _stat("depth", stats["depth"]),
            _stat(f"{stats['representation']}", human_bytes(stats["state_bytes"])),
            _stat(f"memory · batch {stats['batch']}", human_bytes(stats["batch_bytes"])),
        ])
        svg = circuit_svg(circuit, plan, fit=True)
        self.circuit_view.object = f"<div class='wb-circuit-scroll'>{svg}</div>"
        from ...engine.circuits import draw_text

        self.circuit_listing.object = (f"<details><summary class='wb-muted'>Gate list (text)</summary>"
                                       f"<pre class='wb-listing'>{html.escape(draw_text(circuit))}</pre></details>")
