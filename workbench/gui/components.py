"""Custom Panel components: the drag-and-drop canvas (plain ESM from workbench_extensions/builder), live
charts, live HTML and the address-bar state."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import panel
import param
from panel.custom import JSComponent

import workbench_extensions

_log = logging.getLogger(__name__)
# Styles that must reach inside Bokeh widgets' shadow DOM (pass as `stylesheets=[WIDGET_CSS]`).
WIDGET_CSS = (Path(__file__).with_name("widgets.css")).read_text(encoding="utf-8")
EXTENSIONS = Path(workbench_extensions.__file__).resolve().parent
BUILDER_JS = EXTENSIONS / "builder" / "builder.js"
BUILDER_CSS = EXTENSIONS / "builder" / "builder.css"


def control_button(**params) -> panel.widgets.Button:
    """A Button whose disabled state looks disabled (widgets.css reaches into its shadow DOM)."""
    return panel.widgets.Button(stylesheets=[WIDGET_CSS], **params)


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
            _log.warning("builder action %r ignored: %s", msg, err)


class LiveHTML(JSComponent):
    """HTML that changes often (training status, progress, hints) without making the page re-layout.

    A Panel StaticText/HTML change makes Bokeh lay out the page again, and every Plotly chart on it then
    redraws at its new size: at four updates a second that alone saturates a browser. This component
    writes the new HTML into its own box (fixed height, scrolls if needed) and leaves the layout alone.
    """

    html = param.String(default="")

    _esm = """
    export function render({ model, el }) {
      const box = document.createElement("div");
      box.className = "wb-live-html";
      box.innerHTML = model.html;
      model.on("html", () => { box.innerHTML = model.html; });
      return box;
    }
    """
    _stylesheets = [":host { display: block; } .wb-live-html { height: 100%; overflow: auto; "
                    "font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; font-size: 13.5px; "
                    "color: #0f172a; box-sizing: border-box; }"]


def progress_html(done: int, total: int) -> str:
    """A progress bar as plain HTML (for LiveHTML)."""
    share = 0 if total <= 0 else max(0.0, min(1.0, done / total))
    return ("<div style='height:10px;border-radius:5px;background:#e2e8f0;overflow:hidden' role='progressbar' "
            f"aria-valuenow='{done}' aria-valuemax='{total}'><div style='height:100%;width:{share * 100:.1f}%;"
            "background:#2563eb;transition:width .2s'></div></div>")


class UrlState(JSComponent):
    """Keeps `?<param>=<value>` of the page's address in step with the builder (history.replaceState), so the
    address bar is always a link to the current network and settings. Invisible; used only under `serve`."""

    param_name = param.String(default="s")
    value = param.String(default="")
    page = param.String(default="", doc="The page's own address without the query (set by the browser).")

    _esm = """
    export function render({ model, el }) {
      function apply() {
        if (!model.value) return;
        const url = new URL(window.location.href);
        if (url.searchParams.get(model.param_name) === model.value) return;
        url.searchParams.set(model.param_name, model.value);
        window.history.replaceState(window.history.state, "", url.toString());
      }
      model.on("value", apply);
      apply();
      // The server only knows the websocket's path (/ws); the link to share is the page's own address.
      model.page = window.location.origin + window.location.pathname;
      const box = document.createElement("div");
      box.style.display = "none";
      return box;
    }
    """


_PLOTLY_CSS = Path(panel.__file__).parent / "dist" / "css" / "models" / "plotly.css"


def _plotly_src() -> str:
    """The address (relative to the page) at which this server serves Panel's bundled plotly.js."""
    from panel.io.resources import bundled_files, set_resource_mode
    from panel.models.plotly import PlotlyPlot

    with set_resource_mode("server"):
        return bundled_files(PlotlyPlot)[0]


# plotly.js is not part of the served page (4.7 MB, about a second of the browser's time to evaluate on a slow
# machine, and the first tab has no chart): this loads it once per page, after the page is up. One <script>
# shared by every chart; a failed load is tried again by the next caller. A page that already has Plotly
# (a notebook: `pn.extension("plotly")`) uses that copy.
_LOAD_PLOTLY_JS = """
const PLOTLY_SRC = __PLOTLY_SRC__;
function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.wbPlotlyLoading) {
    window.wbPlotlyLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = PLOTLY_SRC;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { window.wbPlotlyLoading = null; reject(new Error("could not load " + PLOTLY_SRC)); };
      document.head.appendChild(script);
    });
  }
  return window.wbPlotlyLoading;
}
""".replace("__PLOTLY_SRC__", json.dumps(_plotly_src()))


class PlotlyPreload(JSComponent):
    """Invisible: loads plotly.js once `requested` is set (by the server when the browser reports the page drawn:
    started from the browser side, it could run before the canvas is drawn and delay it), so the other tabs'
    charts are ready when they are opened."""

    requested = param.Boolean(default=False, doc="Load plotly.js now (when the browser is next idle).")

    _esm = _LOAD_PLOTLY_JS + """
    export function render({ model, el }) {
      let asked = false;
      function go() {
        if (!model.requested || asked) return;
        asked = true;
        const load = () => loadPlotly().catch((err) => console.error(err));
        if (window.requestIdleCallback) window.requestIdleCallback(load, {timeout: 500});
        else setTimeout(load, 0);
      }
      model.on("requested", go);
      go();
      const box = document.createElement("div");
      box.style.display = "none";
      return box;
    }
    """


class LiveChart(JSComponent):
    """A Plotly chart that draws every figure it is given, in order, and never skips the latest one.

    Panel's Plotly pane diffs figures into data sources and asks the browser to redraw through a render
    counter that both the server and the browser increment; under frequent updates the two collide and
    the browser stops redrawing (the loss chart froze after the first epoch while the server held the whole
    run). Here the figure is one parameter: every change reaches the browser as a whole figure and is drawn
    with Plotly.react; a figure that arrives while one is being drawn is drawn right after it.

    A chart that draws before plotly.js has arrived (see `PlotlyPreload`) loads it, then draws.
    """

    figure = param.Dict(default={}, doc="Plotly figure as a dict: {data: [...], layout: {...}}.")
    config = param.Dict(default={"displaylogo": False, "responsive": True,
                                 "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"]})
    clicked = param.Dict(default=None, allow_None=True,
                         doc="{x, y, curve, index, customdata} of the last clicked point.")

    _esm = _LOAD_PLOTLY_JS + """
    export function render({ model, el }) {
      const box = document.createElement("div");
      box.className = "wb-live-chart";
      box.style.width = "100%";
      box.style.height = "100%";
      let drawing = false, again = false, hooked = false;
      async function draw() {
        if (!box.isConnected) { again = true; return; }
        if (!window.Plotly) {
          loadPlotly().then(draw, (err) => { console.error(err); setTimeout(draw, 1000); });
          return;
        }
        if (drawing) { again = true; return; }
        drawing = true;
        try {
          do {
            again = false;
            const fig = model.figure || {};
            const layout = Object.assign({}, fig.layout || {});
            if (box.clientWidth) layout.width = box.clientWidth;
            await window.Plotly.react(box, fig.data || [], layout, model.config);
          } while (again);
          if (!hooked && box.on) {
            hooked = true;
            box.on("plotly_click", (ev) => {
              const p = ev.points && ev.points[0];
              if (p) model.clicked = {x: p.x, y: p.y, curve: p.curveNumber, index: p.pointNumber,
                                      customdata: p.customdata === undefined ? null : p.customdata};
            });
          }
        } finally { drawing = false; }
      }
      model.on("figure", draw);
      model.on("config", draw);
      model.on("after_render", draw);
      let width = 0;
      new ResizeObserver(() => {
        if (box.clientWidth && box.clientWidth !== width) { width = box.clientWidth; draw(); }
      }).observe(box);
      return box;
    }
    """
    _stylesheets = [":host { display: block; } .wb-live-chart { min-height: 40px; }",
                    *([_PLOTLY_CSS.read_text(encoding="utf-8")] if _PLOTLY_CSS.exists() else [])]

    def _process_property_change(self, props: dict) -> dict:
        # The figure flows server → browser only. Plotly.react decorates the figure it draws (trace uids), and a
        # browser that re-syncs its document (a notebook comm reconnecting on a busy kernel) would send back an
        # older figure than the one the server holds: the server keeps its own.
        return {k: v for k, v in super()._process_property_change(props).items() if k != "figure"}
