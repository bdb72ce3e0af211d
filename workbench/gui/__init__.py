"""The workbench GUI: a Panel app (`workbench serve`, see .server) and its Jupyter front (.jupyter).

Modules: state (builder/run-setup state, no widgets), session (per-session training), share (URL state,
uploads, generated code), forms (settings forms from the spec schema), circuit_svg, charts, dashboard,
bench (the GUI's one-step benchmark), components (custom Panel components), app (the layout).
Importing this package imports nothing heavy; the submodules load Panel on use.
"""
