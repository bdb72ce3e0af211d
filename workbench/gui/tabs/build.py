"""Build tab: the drag-and-drop canvas with its palette, the undo/redo/duplicate/delete toolbar, and the
settings form of the selected block (or of the network input).

A `pn.viewable.Viewer` over the shared BuilderState: it follows every change of the network and of the
selection, and every edit goes through the builder (so Undo reverts it). The form's widgets write a field
only when it differs from what the network already holds, so showing the network's values never edits it.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any, Callable

import panel as pn
from panel.viewable import Viewer

from .. import forms, icons
from ..components import BuilderCanvas
from ..state import INPUT, palette_payload


def _html_note(text: str, kind: str = "note") -> str:
    return f"<div class='wb-{kind}'>{text}</div>"


class BuildTab(Viewer):
    """Canvas, toolbar and block settings of one session's network."""

    def __init__(self, builder, match_dataset: Callable[[], None], notebook: bool = False, **params):
        super().__init__(**params)
        self.builder = builder
        self.match_dataset = match_dataset  # "Match the run setup's dataset" on the input form
        self.notebook = notebook
        self._form_key: tuple | None = None
        self._form_widgets: dict[str, tuple[forms.FieldSpec, Any]] = {}
        self._refresh_due = False  # in a notebook: a refresh waits for the running cell to finish
        self._layout = self._build()
        pn.bind(lambda *_: self.refresh(), builder.param.revision, builder.param.selected, watch=True)
        self.refresh()

    def __panel__(self):
        return self._layout

    def refresh(self) -> None:
        """Show the builder's network, selection and history: now, or in a notebook once the running cell has
        finished. A cell that adds a block and undoes it would otherwise send the canvas and the settings form two
        states in a row, and JupyterLab can finish drawing the first after the second (the dropout stayed on the
        canvas and its fields in the form). Deferred, the cell's net change is sent once (here: none)."""
        try:
            loop = asyncio.get_running_loop() if self.notebook else None
        except RuntimeError:  # no event loop runs (a script): nothing to wait for
            loop = None
        if loop is None:
            self._show()
        elif not self._refresh_due:
            self._refresh_due = True
            loop.call_soon(self._show)

    def _show(self) -> None:
        self._refresh_due = False
        b = self.builder
        self.canvas.view = b.canvas_payload()
        self.undo_button.disabled = not b.can_undo
        self.redo_button.disabled = not b.can_redo
        has_selection = b.selected is not None and b.selected >= 0
        self.duplicate_button.disabled = not has_selection
        self.delete_button.disabled = not has_selection
        self.last_action.value = f"<span class='wb-muted'>last: {html.escape(b.last_action)}</span>" \
            if b.last_action else ""
        self._sync_form()

    def _build(self):
        self.canvas = BuilderCanvas(on_action=self._on_canvas_action, palette=palette_payload(),
                                    view=self.builder.canvas_payload(), sizing_mode="stretch_width",
                                    min_height=600, css_classes=["wb-canvas-component"])
        self.undo_button = pn.widgets.Button(label="Undo", icon=icons.UNDO, color="default", css_classes=["wb-undo"], width=84)
        self.redo_button = pn.widgets.Button(label="Redo", icon=icons.REDO, color="default", css_classes=["wb-redo"], width=84)
        self.duplicate_button = pn.widgets.Button(label="Duplicate", icon=icons.COPY, css_classes=["wb-duplicate"], width=106)
        self.delete_button = pn.widgets.Button(label="Delete", icon=icons.TRASH, css_classes=["wb-delete"], width=90)
        self.clear_button = pn.widgets.Button(label="Clear canvas", icon=icons.CLEAR, color="light", css_classes=["wb-clear"],
                                              width=110)
        self.undo_button.on_click(lambda _: self.builder.undo())
        self.redo_button.on_click(lambda _: self.builder.redo())
        self.duplicate_button.on_click(lambda _: self._on_selected("duplicate"))
        self.delete_button.on_click(lambda _: self._on_selected("delete"))
        self.clear_button.on_click(lambda _: self.builder.clear())
        self.last_action = pn.widgets.StaticText(value="", css_classes=["wb-last-action"], margin=(10, 8))
        toolbar = pn.Row(self.undo_button, self.redo_button, self.duplicate_button, self.delete_button,
                         self.clear_button, self.last_action, sizing_mode="stretch_width")
        self.form_title = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 4))
        self.form_error = pn.widgets.StaticText(value="", sizing_mode="stretch_width", css_classes=["wb-form-error"])
        self.form_body = pn.Column(sizing_mode="stretch_width", css_classes=["wb-form"])
        self.form_card = pn.Column(self.form_title, self.form_error, self.form_body, width=380,
                                   css_classes=["wb-card", "wb-settings"], margin=(8, 4, 8, 8))
        if self.notebook:  # a notebook cell is narrow: the settings go under the canvas, which keeps the width
            self.form_card.width = None
            self.form_card.sizing_mode = "stretch_width"
            return pn.Column(toolbar, self.canvas, self.form_card, sizing_mode="stretch_width")
        return pn.Column(toolbar, pn.Row(pn.Column(self.canvas, sizing_mode="stretch_width"), self.form_card,
                                         sizing_mode="stretch_width"), sizing_mode="stretch_width")

    def _on_canvas_action(self, message: dict) -> None:
        self.builder.dispatch(message)

    def _on_selected(self, what: str) -> None:
        index = self.builder.selected
        if index is None or index < 0:
            return
        getattr(self.builder, what)(index)

    # -- settings form ---------------------------------------------------------------------------
    def _sync_form(self) -> None:
        b = self.builder
        index = b.selected
        if index is None:
            key = ("none",)
        elif index == INPUT:
            key = ("input",)
        else:
            block = b.blocks[index] if index < len(b.blocks) else None
            key = ("block", index, block.get("type") if block else None)
        if key != self._form_key:
            self._form_key = key
            self._rebuild_form()
        else:
            self._update_form_values()
        self._mark_form_error()

    def _rebuild_form(self) -> None:
        b = self.builder
        self._form_widgets = {}
        self.form_error.value = ""
        kind = self._form_key[0]
        if kind == "none":
            self.form_title.object = ("<div class='wb-section-title'>Block settings</div><div class='wb-muted'>"
                                      "Click a block on the canvas to edit its settings, or the input node to set "
                                      "the input shape and task.</div>")
            self.form_body.objects = []
            return
        if kind == "input":
            self.form_title.object = ("<div class='wb-section-title'>Network input</div><div class='wb-muted'>Name, "
                                      "task and the shape of one sample (without the batch).</div>")
            fields = [
                forms.FieldSpec("name", "Network name", "str", required=True),
                forms.FieldSpec("task", "Task", "enum", options=["classification", "regression", "energy"]),
                forms.FieldSpec("input_shape", "Input shape", "int_list", required=True,
                                description="e.g. 2 for points in the plane, 1, 8, 8 for 8×8 images"),
                forms.FieldSpec("description", "Description", "str"),
            ]
            widgets = []
            for f in fields:
                widget = forms.build_widget(f, b.spec.get(f.path))
                widget.param.watch(lambda e, f=f: self._on_input_field(f, e.new), "value")
                self._form_widgets[f.path] = (f, widget)
                widgets.append(widget)
            match = pn.widgets.Button(label="Match the run setup's dataset", color="light",
                                      css_classes=["wb-match-dataset"], sizing_mode="stretch_width")
            match.on_click(lambda _: self.match_dataset())
            self.form_body.objects = [*widgets, match]
            return
        index = self._form_key[1]
        block = b.blocks[index]
        self.form_title.object = (f"<div class='wb-section-title'>{html.escape(str(block.get('id')))} "
                                  f"<span class='wb-muted'>· {html.escape(block.get('type', ''))}</span></div>"
                                  "<div class='wb-muted'>Changes apply at once; Undo reverts them.</div>")
        shown = forms.with_defaults(block)
        widgets = []
        group = ""
        for f in forms.schema_fields(block["type"]):
            if f.group and f.group != group:
                group = f.group
                widgets.append(pn.pane.HTML(f"<div class='wb-section-title' style='font-size:13.5px;margin-top:6px'>"
                                            f"{html.escape(group)}</div>", margin=(4, 10, 0, 10)))
            widget = forms.build_widget(f, forms.get_value(shown, f.path))
            widget.visible = forms.relevant(shown, f)
            widget.param.watch(lambda e, f=f: self._on_block_field(f, e.new), "value")
            self._form_widgets[f.path] = (f, widget)
            widgets.append(widget)
        self.form_body.objects = widgets

    def _update_form_values(self) -> None:
        b = self.builder
        if self._form_key[0] == "input":
            source = b.spec
        elif self._form_key[0] == "block":
            source = forms.with_defaults(b.blocks[self._form_key[1]])
            self.form_title.object = (f"<div class='wb-section-title'>{html.escape(str(source.get('id')))} "
                                      f"<span class='wb-muted'>· {html.escape(source.get('type', ''))}</span></div>"
                                      "<div class='wb-muted'>Changes apply at once; Undo reverts them.</div>")
        else:
            return
        for path, (f, widget) in self._form_widgets.items():
            value = forms.format_value(f, forms.get_value(source, path))
            if f.kind in ("opt_int", "opt_float", "int_list", "str_list", "json") and value is None:
                value = ""
            if self._form_key[0] == "block":
                widget.visible = forms.relevant(source, f)
            if self._shown_value(f, widget.value) != forms.get_value(source, path) and value is not None:
                widget.value = value

    def _mark_form_error(self) -> None:
        b = self.builder
        error = b.error
        message = ""
        if error and self._form_key and self._form_key[0] == "block" and b.error_index == self._form_key[1]:
            message = error["message"]
        elif error and self._form_key and self._form_key[0] == "input" and error.get("block") is None:
            message = error["message"]
        field = (error or {}).get("field") or ""
        for path, (_, widget) in self._form_widgets.items():
            flagged = bool(message) and (field == path or field.startswith(path + "."))
            classes = [c for c in widget.css_classes if c != "wb-field-invalid"] + (["wb-field-invalid"] if flagged
                                                                                    else [])
            if classes != widget.css_classes:
                widget.css_classes = classes
        self.form_error.value = _html_note("✗ " + html.escape(message), "alert") if message else ""

    @staticmethod
    def _shown_value(f: forms.FieldSpec, raw: Any) -> Any:
        """The value a widget shows, as the spec would hold it (a sentinel if its text does not parse)."""
        if f.kind in ("enum", "int", "float", "bool", "enum_list"):
            return raw
        try:
            return forms.parse_text(f, raw)
        except ValueError:
            return object()

    def _on_block_field(self, f: forms.FieldSpec, raw: Any) -> None:
        if self._form_key is None or self._form_key[0] != "block":
            return
        try:
            value = forms.parse_text(f, raw)
        except ValueError as err:
            self.form_error.value = _html_note(html.escape(str(err)), "alert")
            return
        index = self._form_key[1]
        if value == forms.get_value(forms.with_defaults(self.builder.blocks[index]), f.path):
            return  # the block already means this (the form shows its defaults): nothing to edit
        self.builder.set_field(index, f.path, value)

    def _on_input_field(self, f: forms.FieldSpec, raw: Any) -> None:
        try:
            value = forms.parse_text(f, raw)
        except ValueError as err:
            self.form_error.value = _html_note(html.escape(str(err)), "alert")
            return
        self.builder.set_spec_field(f.path, value if value is not None else "")
