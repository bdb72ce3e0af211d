"""Custom Panel components: the drag-and-drop canvas (plain ESM from workbench_extensions/builder)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import param
from panel.custom import JSComponent

import workbench_extensions

EXTENSIONS = Path(workbench_extensions.__file__).resolve().parent
BUILDER_JS = EXTENSIONS / "builder" / "builder.js"
BUILDER_CSS = EXTENSIONS / "builder" / "builder.css"


class BuilderCanvas(JSComponent):
    """Palette + canvas. Draws `view`; reports the user's actions through `on_action(message)`."""

    palette = param.List(default=[], doc="Palette items: {key, label, group, hint}.")
    view = param.Dict(default={}, doc="blocks, input_node, output_node and status from BuilderState.canvas_payload().")

    _esm = BUILDER_JS
    _stylesheets = [BUILDER_CSS.read_text(encoding="utf-8")]

    def __init__(self, on_action: Callable[[dict], None] | None = None, **params):
        super().__init__(**params)
        self._on_action = on_action
        self.errors: list[str] = []

    def _handle_msg(self, msg: dict) -> None:
        if self._on_action is None or not isinstance(msg, dict):
            return
        try:
            self._on_action(msg)
        except Exception as err:  # a stale message (e.g. an index that no longer exists) must not break the page
            self.errors.append(f"{err.__class__.__name__}: {err}")
