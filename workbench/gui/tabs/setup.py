"""Run setup tab: the dataset (with its options and a preview), the optimiser, the execution target and
gradient method, and the noise model of the next run.

A `pn.viewable.Viewer` over the shared RunSetup (and the BuilderState, whose network the dataset must feed).
The setting widgets are made with `from_param`, so they and RunSetup stay in step both ways by themselves.
Four follow RunSetup with plain watchers in both directions, where an equal value is a no-op (so no guard
is needed): the target select (it shows labels, see `_build`), the dataset select (a new dataset starts from
its own default options), the per-dataset options and the noise channels (single entries of RunSetup's dicts).
"""

from __future__ import annotations

import copy
import html
from typing import Any

import panel as pn
from panel.viewable import Viewer

from .. import charts, forms
from ..components import LiveChart
from ..session import cost_preview
from ..share import ShareError
from ..run_setup import NOISE_CHANNELS, NOISE_LIMITS, target_choices
from ..state import shape_text


def _html_note(text: str, kind: str = "note") -> str:
    return f"<div class='wb-{kind}'>{text}</div>"


class _TargetSelect(pn.widgets.Select):
    """A Select that may hold a greyed-out option: a link made on a GPU machine keeps its target here, and the
    run setup says why that target cannot run (Panel's own Select refuses a disabled value)."""

    def _validate_disabled_options(self, *events) -> None:
        pass


class SetupTab(Viewer):
    """Dataset, optimiser, execution and noise settings of one session's next run."""

    def __init__(self, builder, setup, **params):
        super().__init__(**params)
        self.builder, self.setup = builder, setup
        self._layout = self._build()
        self.setup.param.watch(self._on_setup, list(setup.FIELDS))
        self.builder.param.watch(lambda *_: self.render(), "revision")
        if pn.state.curdoc is not None:  # a served page: its uploaded files go when the page's session ends
            pn.state.curdoc.on_session_destroyed(lambda context: self.setup.release_files())
        self._rebuild_dataset_options()
        self.render()

    def __panel__(self):
        return self._layout

    def render(self) -> None:
        """Redraw what depends on the network as well as the settings."""
        self._render_dataset()
        self._render_gradient()
        self._render_hardware()

    def match_dataset(self) -> None:
        """Set the network's input shape and task to the dataset's."""
        try:
            data = self.setup.load_dataset()
        except Exception as err:  # DatasetError and friends: shown where the user pressed
            self.setup_message.value = _html_note(html.escape(str(err)), "alert")
            return
        spec = copy.deepcopy(self.builder.spec)
        spec["input_shape"] = list(data.input_shape)
        spec["task"] = data.task
        self.builder.load(spec, action="match dataset")

    def _on_setup(self, *events) -> None:
        names = {e.name for e in events}
        if "dataset" in names:
            self.dataset_select.value = self.setup.dataset
            self._rebuild_dataset_options()
        if names & {"dataset", "dataset_options"}:
            self._render_dataset()
        if names & {"target", "gradient", "shots", "noise", "emulate", "target_options"}:
            self._render_gradient()
        self._render_hardware()  # the cost preview follows every setting
        if "target" in names:
            self.target_w.value = self._target_label.get(self.setup.target, self.setup.target)
        if "shots" in names:
            self.target_w.disabled_options = self._disabled_targets()
        if "noise" in names:
            for channel, widget in self.noise_w.items():
                widget.value = float(self.setup.noise.get(channel, 0.0))

    def _build(self):
        from ...data import dataset_names

        s = self.setup
        self.dataset_select = pn.widgets.Select(label="Dataset", options=dataset_names(), value=s.dataset,
                                                css_classes=["wb-dataset"], sizing_mode="stretch_width")
        self.dataset_select.param.watch(lambda e: self._on_dataset(e.new), "value")
        self.dataset_options_box = pn.Column(sizing_mode="stretch_width", css_classes=["wb-dataset-options"])
        self.dataset_info = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-dataset-info"])
        self.setup_message = pn.widgets.StaticText(value="", sizing_mode="stretch_width",
                                                   css_classes=["wb-setup-message"])
        self.match_button = pn.widgets.Button(label="Match network input to this dataset", color="primary",
                                              css_classes=["wb-match"], visible=False)
        self.match_button.on_click(lambda _: self.match_dataset())
        self.preview = LiveChart(figure=charts.empty_figure("Preview", "loading…", 320), height=320,
                                 sizing_mode="stretch_width", css_classes=["wb-preview"])
        dataset_card = pn.Column(
            pn.pane.HTML("<div class='wb-section-title'>Dataset</div>"), self.dataset_select,
            self.dataset_options_box, self.dataset_info, self.setup_message, self.match_button, self.preview,
            sizing_mode="stretch_width", css_classes=["wb-card"], margin=(4, 8))

        wide = {"sizing_mode": "stretch_width"}
        self.optimizer_w = pn.widgets.Select.from_param(s.param.optimizer, label="Optimiser",
                                                        css_classes=["wb-optimizer"], **wide)
        self.lr_w = pn.widgets.FloatInput.from_param(s.param.lr, label="Learning rate", step=0.01,
                                                     css_classes=["wb-lr"], **wide)
        self.epochs_w = pn.widgets.IntInput.from_param(s.param.epochs, label="Epochs", css_classes=["wb-epochs"], **wide)
        self.batch_w = pn.widgets.IntInput.from_param(s.param.batch_size, label="Batch size", css_classes=["wb-batch"],
                                                      **wide)
        self.seed_w = pn.widgets.IntInput.from_param(s.param.seed, label="Seed", css_classes=["wb-seed"], **wide)
        optimiser_card = pn.Column(pn.pane.HTML("<div class='wb-section-title'>Optimiser</div>"), self.optimizer_w,
                                   self.lr_w, pn.Row(self.epochs_w, self.batch_w, self.seed_w, **wide),
                                   css_classes=["wb-card"], margin=(4, 8), **wide)

        choices = target_choices()
        self.target_choices = choices
        # The options are the labels themselves (value == label): Bokeh greys out disabled options by the value
        # the page holds, so the select maps labels to RunSetup's target names both ways (equal values are no-ops).
        self._target_label = {c["name"]: c["label"] for c in choices}
        self._target_name = {c["label"]: c["name"] for c in choices}
        self.target_w = _TargetSelect(label="Target", options=[c["label"] for c in choices],
                                      value=self._target_label.get(s.target, s.target),
                                      disabled_options=self._disabled_targets(), css_classes=["wb-target"], **wide)
        self.target_w.param.watch(lambda e: setattr(self.setup, "target", self._target_name.get(e.new, e.new)),
                                  "value")
        unavailable = [c for c in choices if c["reason"]]
        reasons = "".join(f"<li><b>{html.escape(c['name'])}</b>: {html.escape(c['reason'])}</li>" for c in unavailable)
        self.target_reasons = pn.pane.HTML(
            (f"<details class='wb-target-reasons'><summary class='wb-muted'>{len(unavailable)} target(s) greyed out "
             f"on this machine (why)</summary><ul style='font-size:12.5px;margin:4px 0'>{reasons}</ul></details>")
            if unavailable else "<div class='wb-muted'>Every target can run here.</div>",
            css_classes=["wb-target-reasons-box"], **wide)
        self.gradient_w = pn.widgets.Select.from_param(s.param.gradient, label="Gradient method",
                                                       css_classes=["wb-gradient"], **wide)
        self.gradient_info = pn.pane.HTML("", css_classes=["wb-gradient-explanation"], **wide)
        self.shots_w = pn.widgets.IntInput.from_param(s.param.shots, label="Shots (0 = exact)",
                                                      css_classes=["wb-shots"], **wide)
        self.precision_w = pn.widgets.Select.from_param(s.param.precision, label="Precision",
                                                        css_classes=["wb-precision"], **wide)
        execution_card = pn.Column(pn.pane.HTML("<div class='wb-section-title'>Execution</div>"), self.target_w,
                                   self.target_reasons, self._build_hardware(), self.gradient_w, self.gradient_info,
                                   pn.Row(self.shots_w, self.precision_w, **wide), self.cost_info,
                                   css_classes=["wb-card"], margin=(4, 8), **wide)

        self.noise_w = {}
        for channel in NOISE_CHANNELS:
            widget = pn.widgets.FloatInput(label=channel.replace("_", " ").replace("depolarizing2",
                                                                                 "depolarizing (2-qubit)"),
                                           value=float(s.noise.get(channel, 0.0)), start=0.0,
                                           end=NOISE_LIMITS.get(channel, 1.0), step=0.005, width=150,
                                           css_classes=[f"wb-noise-{channel}"])
            widget.param.watch(lambda e, c=channel: self._on_noise(c, e.new), "value")
            self.noise_w[channel] = widget
        self.noise_note = pn.pane.HTML("", css_classes=["wb-noise-note"], **wide)
        noise_card = pn.Column(pn.pane.HTML("<div class='wb-section-title'>Noise model</div><div class='wb-muted'>"
                                            "Probabilities per gate (readout: per measured bit). 0 = off.</div>"),
                               pn.GridBox(*self.noise_w.values(), ncols=3), self.noise_note,
                               css_classes=["wb-card"], margin=(4, 8), **wide)
        return pn.Row(pn.Column(dataset_card, **wide), pn.Column(optimiser_card, execution_card, noise_card, **wide),
                      **wide)

    def _build_hardware(self):
        """The hardware target's own settings: Emulate, and the qubit mapping file where the target needs one."""
        self.emulate_w = pn.widgets.Switch.from_param(self.setup.param.emulate, css_classes=["wb-emulate"])
        self.mapping_w = pn.widgets.FileInput(accept=".txt,text/plain", multiple=False, css_classes=["wb-mapping-file"],
                                              width=320)
        self.mapping_w.param.watch(self._on_mapping, "value")
        self.mapping_box = pn.Column(pn.pane.HTML("<div class='wb-muted'>Qubit mapping file of the device (CUDA-Q's "
                                                  "format: <code>Number of nodes: N</code>, then one "
                                                  "<code>i --&gt; {j, k}</code> line per qubit)</div>"),
                                     self.mapping_w, sizing_mode="stretch_width", css_classes=["wb-mapping"])
        self.hardware_note = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-hardware-note"])
        self.cost_info = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-cost-preview"])
        self.hardware_box = pn.Column(
            pn.Row(self.emulate_w, pn.pane.HTML("<span class='wb-muted'>CUDA-Q simulates the QPU here: no account, "
                                                "no cost</span>"), align="center"),
            self.mapping_box, self.hardware_note, sizing_mode="stretch_width", css_classes=["wb-hardware"])
        return self.hardware_box

    def _on_mapping(self, event) -> None:
        if event.new is None:
            return
        try:
            self._mapping_message = _html_note(html.escape(self.setup.upload_mapping_file(
                event.new, self.mapping_w.filename or "the mapping file")), "success")
        except (ShareError, OSError) as err:  # a bad file, or no room to keep it (disk full, read-only tmp)
            self._mapping_message = _html_note("✗ " + html.escape(str(err)), "alert")
        self._render_hardware()

    def _render_hardware(self) -> None:
        """Show the hardware settings for hardware targets only, and the run's cost before it starts."""
        s = self.setup
        self.hardware_box.visible = s.hardware
        self.mapping_box.visible = "mapping_file" in s.target_needs
        notes = [getattr(self, "_mapping_message", "")] if self.mapping_box.visible else []
        if s.hardware and not s.emulate:
            notes.append(_html_note("Runs go to the real QPU: they need the provider's credentials on this server "
                                    "and may cost money.", "alert"))
        self.hardware_note.object = "".join(notes)
        preview = cost_preview(self.builder.spec, s) if s.hardware else ""
        self.cost_info.object = (f"<div class='wb-muted'><b>Cost of this run</b>: <span class='wb-cost-text'>"
                                 f"{html.escape(preview)}</span></div>") if preview else ""
        self.cost_text = preview

    def _disabled_targets(self) -> list[str]:
        """Targets that cannot run here, and emulated hardware while Shots is 0 (hardware only measures)."""
        return [c["label"] for c in self.target_choices
                if c["reason"] or (c["kind"] == "hardware" and not self.setup.shots)]

    def _on_dataset(self, name: str) -> None:
        if name != self.setup.dataset:  # a new dataset starts from its own default options
            self.setup.param.update(dataset=name, dataset_options={})

    def _on_noise(self, channel: str, value: float) -> None:
        noise = {k: v for k, v in self.setup.noise.items() if k != channel}
        if value:
            noise[channel] = float(value)
        self.setup.noise = noise

    def _rebuild_dataset_options(self) -> None:
        from ...data import dataset_options

        try:
            defaults = dataset_options(self.setup.dataset)
        except Exception:
            defaults = {}
        widgets = []
        current = self.setup.dataset_options
        for key, default in defaults.items():
            value = current.get(key, default)
            kind = forms.dataset_option_kind(default)
            common = {"label": key.replace("_", " "), "css_classes": [f"wb-opt-{key}"], "width": 150}
            if kind == "bool":
                widget = pn.widgets.Checkbox(value=bool(value), **common)
            elif kind == "int" and not isinstance(value, (list, dict, str)):
                widget = pn.widgets.IntInput(value=int(value) if value is not None else 0, **common)
            elif kind == "float" and not isinstance(value, (list, dict, str)):
                widget = pn.widgets.FloatInput(value=float(value) if value is not None else 0.0, step=0.01, **common)
            else:
                widget = pn.widgets.TextInput(value=forms.format_option(value), placeholder="default", **common)
            widget.param.watch(lambda e, k=key, kind=kind: self._on_dataset_option(k, kind, e.new), "value")
            widgets.append(widget)
        self.dataset_options_box.objects = [pn.GridBox(*widgets, ncols=3)] if widgets else []

    def _on_dataset_option(self, key: str, kind: str, raw: Any) -> None:
        from ...data import dataset_options

        value = forms.parse_option_text(raw) if kind == "text" else raw
        options = dict(self.setup.dataset_options)
        default = dataset_options(self.setup.dataset).get(key)
        if value == default:
            options.pop(key, None)
        else:
            options[key] = value
        self.setup.dataset_options = options

    def _render_dataset(self) -> None:
        problem, data = self.setup.dataset_problem(self.builder.spec)
        if data is None:
            self.dataset_info.object = ""
            self.preview.figure = charts.empty_figure("Preview", "the dataset could not be loaded", 320)
        else:
            classes = f" · {data.n_classes} classes" if data.n_classes else ""
            self.dataset_info.object = (f"<div class='wb-muted'>{data.task} · samples of shape "
                                        f"{shape_text(data.input_shape)} · {len(data.X_train)} train / "
                                        f"{len(data.X_test)} test{classes}</div>")
            try:
                self.preview.figure = charts.dataset_preview_figure(data)
            except Exception as err:  # an unusual dataset layout: say so instead of failing the page
                self.preview.figure = charts.empty_figure("Preview", f"no preview: {err}", 320)
        self.setup_message.value = _html_note(html.escape(problem), "alert") if problem else ""
        self.match_button.visible = bool(problem and data is not None)

    def _render_gradient(self) -> None:
        explanation = self.setup.gradient_explanation(self.builder.spec)
        if not explanation["ok"]:
            self.gradient_info.object = _html_note("✗ " + html.escape(explanation["error"]), "alert")
        elif not explanation["lines"]:
            self.gradient_info.object = _html_note(html.escape(explanation.get("note", "")))
        else:
            rows = "".join(f"<li><b>{html.escape(str(line['block']))}</b> → <b>{html.escape(line['method'])}</b>: "
                           f"{html.escape(line['reason'])}</li>" for line in explanation["lines"])
            prefix = "auto picks" if self.setup.gradient == "auto" else "using"
            self.gradient_info.object = _html_note(f"<div class='wb-muted'>{prefix}:</div>"
                                                   f"<ul style='margin:2px 0 0 -12px'>{rows}</ul>", "success")
        if self.setup.noise:
            if self.setup.target == "torch" and self.setup.noisy:
                note = "With gate noise the torch engine simulates density matrices (torch-density)."
            elif not self.setup.noisy:
                note = "Readout error only: applied to the measured results."
            else:
                note = ""
            self.noise_note.object = f"<div class='wb-muted'>{note}</div>" if note else ""
        else:
            self.noise_note.object = ""

