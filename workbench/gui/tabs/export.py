"""Export & share tab: the spec as JSON (download, upload), the link to this network and its settings, the
trained weights, and Python code that rebuilds and trains the model outside the GUI.

A `pn.viewable.Viewer` over the shared state objects (BuilderState, RunSetup, TrainingSession); it follows
them by itself. The link's text is made by the app (`link`), which also keeps the address bar in step.
"""

from __future__ import annotations

import html
import io
import tempfile
from pathlib import Path

import panel as pn
from panel.viewable import Viewer

from .. import icons, share


def _html_note(text: str, kind: str = "note") -> str:
    return f"<div class='wb-{kind}'>{text}</div>"


class ExportTab(Viewer):
    """Spec download/upload, share link, weights and generated code of one session."""

    def __init__(self, builder, setup, session, **params):
        super().__init__(**params)
        self.builder, self.setup, self.session = builder, setup, session
        self._build()
        self.builder.param.watch(lambda *_: self._render_code(), "revision")
        self.setup.param.watch(lambda *_: self._render_code(), list(self.setup.FIELDS))
        self.session.param.watch(lambda *_: self._show_weights(), ["status"])
        self._render_code()
        self._show_weights()

    def __panel__(self):
        return self._layout

    def _show_weights(self) -> None:
        s = self.session
        has_model = s.trainer is not None and s.status in ("completed", "cancelled")
        self.download_weights.disabled = not has_model
        self.weights_note.value = "" if has_model else "<span class='wb-muted'>Train the network first.</span>"

    def _build(self):
        self.download_spec = pn.widgets.FileDownload(callback=self._spec_file, filename="network.json",
                                                     label="Download spec JSON", icon=icons.DOWNLOAD, color="primary",
                                                     css_classes=["wb-download-spec"], width=240)
        self.upload = pn.widgets.FileInput(accept=".json,application/json", multiple=False,
                                           css_classes=["wb-upload"], width=320)
        self.upload.param.watch(self._on_upload, "value")
        self.upload_message = pn.widgets.StaticText(value="", sizing_mode="stretch_width",
                                                    css_classes=["wb-upload-message"])
        self.share_url = pn.widgets.TextInput(label="Link to this network and its settings", value="",
                                              sizing_mode="stretch_width", css_classes=["wb-share-url"])
        self.code_view = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["wb-code"])
        self.download_code = pn.widgets.FileDownload(callback=self._code_file, filename="train_network.py",
                                                     label="Download Python script", icon=icons.DOWNLOAD, color="primary",
                                                     css_classes=["wb-download-code"], width=240)
        self.download_weights = pn.widgets.FileDownload(callback=self._weights_file, filename="model.pt",
                                                        label="Download trained weights", icon=icons.DOWNLOAD, color="success",
                                                        css_classes=["wb-download-weights"], width=240, disabled=True)
        self.weights_note = pn.widgets.StaticText(value="<span class='wb-muted'>Train the network first.</span>",
                                                  css_classes=["wb-weights-note"])

        def card(*items, **kw):
            return pn.Column(*items, sizing_mode="stretch_width", css_classes=["wb-card"], margin=(4, 8), **kw)

        spec_card = card(pn.pane.HTML("<div class='wb-section-title'>Spec JSON</div><div class='wb-muted'>The network "
                                      "as data: download it, or upload one to replace the canvas (undo brings the "
                                      "old network back). A bad file changes nothing.</div>"),
                         self.download_spec, self.upload, self.upload_message)
        share_card = card(pn.pane.HTML("<div class='wb-section-title'>Share</div><div class='wb-muted'>The address "
                                       "bar always holds the current network and settings; opening the link restores "
                                       "both.</div>"), self.share_url)
        weights_card = card(pn.pane.HTML("<div class='wb-section-title'>Trained weights</div><div class='wb-muted'>"
                                         "Spec, settings and weights in one file: <code>workbench.load_model(path)"
                                         "</code>.</div>"), self.download_weights, self.weights_note)
        code_card = card(pn.pane.HTML("<div class='wb-section-title'>Python code</div><div class='wb-muted'>Rebuilds "
                                      "and trains the same model outside the GUI with <code>workbench.compile</code> "
                                      "and <code>workbench.training.train</code>.</div>"),
                         self.download_code, self.code_view)
        self._layout = pn.Row(pn.Column(spec_card, share_card, weights_card, width=440), code_card,
                              sizing_mode="stretch_width")

    def _render_code(self) -> None:
        code = share.generate_code(self.builder.spec, self.setup.to_dict())
        self.code_text = code
        self.code_view.object = share.highlight_python(code)

    def _spec_file(self):
        name = (self.builder.spec.get("name") or "network").replace("/", "_")
        self.download_spec.filename = f"{name}.json"
        return io.StringIO(share.spec_json(self.builder.spec))

    def _code_file(self):
        return io.StringIO(share.generate_code(self.builder.spec, self.setup.to_dict()))

    def _weights_file(self):
        model = self.session.model
        if model is None:
            return io.BytesIO(b"")
        with tempfile.TemporaryDirectory() as tmp:
            path = model.save(Path(tmp) / "model.pt")
            data = path.read_bytes()
        self.download_weights.filename = f"{self.builder.spec.get('name') or 'model'}.pt"
        return io.BytesIO(data)

    def _on_upload(self, event) -> None:
        if event.new is None:
            return
        filename = self.upload.filename or "upload"
        try:
            spec = share.parse_upload(event.new, filename)
        except share.ShareError as err:
            self.upload_message.value = _html_note("✗ " + html.escape(str(err)) + " Nothing was changed.", "alert")
            return
        self.builder.load(spec, action=f"upload {filename}")
        switched = self.setup.follow_spec(spec)
        note = f" Dataset set to {html.escape(self.setup.dataset)}, as for the template." if switched else ""
        self.upload_message.value = _html_note(f"✓ Loaded {html.escape(filename)} ({len(spec['blocks'])} blocks)."
                                               + note, "success")

    def apply_upload(self, data: bytes, filename: str = "upload.json") -> str:
        """Upload without a browser (tests, notebooks); returns the message shown."""
        self.upload.filename = filename
        self._on_upload(type("Event", (), {"new": data})())
        return self.upload_message.value
