"""The drag-and-drop network builder: builder.js (plain ESM for panel.custom.JSComponent) and builder.css.

The Panel component that loads them is workbench.gui.components.BuilderCanvas; these paths are how it
finds them (also from an installed wheel, where this folder is package data of workbench_extensions).
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
ESM_PATH = HERE / "builder.js"
CSS_PATH = HERE / "builder.css"
