"""The workbench in Jupyter: `workbench.Workbench()` shows the same builder and dashboard in a cell, and
`workbench.live(trainer_or_stream)` shows live charts for a training started from code.

Everything loads inline (pn.extension(..., inline=True)), so a notebook works offline. Charts are fed
from the kernel's event loop every ~0.25 s, never from the training thread, so updates reach the
front end in order. `.ipywidget()` gives an ipywidgets-compatible widget (via pn.ipywidget).
"""

from __future__ import annotations

import asyncio
import os
import time

import panel as pn
from panel.viewable import Viewer

from .app import DEFAULT_TEMPLATE, WorkbenchApp
from .dashboard import POLL_MS, LiveDashboard

__all__ = ["LiveView", "Workbench", "live", "load_extension"]


def load_extension() -> None:
    """Load Panel's front end inline (no CDN) once per kernel, with Plotly and the code editor."""
    if not pn.extension._loaded or "plotly" not in pn.extension._loaded_extensions:
        pn.extension("plotly", inline=True)


def _jupyter_dist_url() -> str:
    # Panel's Jupyter server extension serves its static files at <base_url>panel_dist/.
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    return prefix.rstrip("/") + "/panel_dist/"


def _styles_from_this_server() -> None:
    """Point later stylesheet updates of displayed workbench views at the Jupyter server, not the CDN.

    The first render inlines every stylesheet, but when a pane changes Panel re-sends its design stylesheets as
    links, and in a notebook document (which has no dist_url) those links go to cdn.holoviz.org: requests that
    fail offline. With the document's dist_url set, Panel rewrites them to the Jupyter server's copy.
    """
    for _, _, doc, comm in list(pn.state._views.values()):
        if comm is not None and doc is not None:
            doc._template_variables.setdefault("dist_url", _jupyter_dist_url())


class _NotebookView(Viewer):
    """A Viewer whose notebook display takes its later stylesheet updates from the Jupyter server."""

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = super()._repr_mimebundle_(include, exclude)
        _styles_from_this_server()
        return bundle


class Workbench(_NotebookView):
    """The full workbench (builder, circuit, run setup, live training, compare, benchmark, export) in a cell.

    Work with it from code too: `.builder` (add/move/undo…), `.setup` (dataset, optimiser, target…),
    `.train()` and `.spec()`.
    """

    def __init__(self, template: str | None = DEFAULT_TEMPLATE, *, store=None, state: str | None = None, **params):
        super().__init__(**params)
        load_extension()
        self.app = WorkbenchApp(store=store, state=state, notebook=True, template=template)
        self.app.start_polling()

    @property
    def builder(self):
        return self.app.builder

    @property
    def setup(self):
        return self.app.setup

    @property
    def dashboard(self) -> LiveDashboard:
        return self.app.dashboard

    def spec(self):
        """The network on the canvas as a validated ArchitectureSpec (raises SpecError while invalid)."""
        return self.app.builder.spec_object()

    def train(self) -> bool:
        """Press Train: start training in the background (False, with a message in the GUI, if it cannot)."""
        return self.app.start_training()

    def stop(self) -> None:
        self.app.session.stop()

    def code(self) -> str:
        """Python code that rebuilds and trains this network outside the GUI."""
        from .share import generate_code

        return generate_code(self.app.builder.spec, self.app.setup.to_dict())

    def __panel__(self):
        return self.app.main_view()

    def ipywidget(self):
        """The workbench as an ipywidget (jupyter_bokeh), for ipywidgets layouts."""
        return pn.ipywidget(self.__panel__())

    def close(self) -> None:
        self.app.shutdown()


class LiveView(_NotebookView):
    """Live charts of one training run (a Trainer, whose pause/resume/stop buttons it shows, or a MetricStream)."""

    def __init__(self, source, *, poll_ms: int = POLL_MS, **params):
        super().__init__(**params)
        load_extension()
        from ..training import MetricStream

        if isinstance(source, MetricStream):
            trainer, stream = None, source
        elif hasattr(source, "stream") and isinstance(source.stream, MetricStream):
            trainer, stream = source, source.stream
        else:
            raise TypeError("live() takes a workbench Trainer or a MetricStream, e.g. live(trainer) or "
                            "live(trainer.stream)")
        self.trainer, self.stream = trainer, stream
        self.dashboard = LiveDashboard(controls=trainer is not None)
        points = None
        dataset = getattr(trainer, "dataset", None)
        if dataset is not None and tuple(dataset.input_shape) == (2,) and dataset.task == "classification":
            X, y = dataset.X_train[:400], dataset.y_train[:400]
            points = (X[:, 0].tolist(), X[:, 1].tolist(), [str(int(c)) for c in y.tolist()])
        self.dashboard.attach(stream, trainer, points)
        self.dashboard.start_polling(poll_ms)

    @property
    def data(self):
        return self.dashboard.data

    @property
    def points(self) -> int:
        """Data points the charts have received (steps + epochs)."""
        return self.dashboard.data.points

    def refresh(self) -> int:
        """Pull new events now (the periodic callback does this every ~0.25 s); returns how many arrived."""
        return self.dashboard.poll()

    def wait(self, timeout: float = 300.0) -> str:
        """Block until the run ends (for scripts without an event loop); returns the final status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.refresh()
            if self.dashboard.data.status in ("completed", "cancelled", "failed"):
                break
            time.sleep(POLL_MS / 1000)
        self._draw_whole()
        return self.dashboard.data.status

    async def until_done(self, timeout: float = 300.0) -> str:
        """Await the end of the run in a notebook, letting the kernel loop update the charts meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.dashboard.data.status not in ("completed", "cancelled", "failed"):
            await asyncio.sleep(POLL_MS / 1000)
            if not self.polling:
                self.refresh()  # no periodic callback here (no running loop at creation): poll ourselves
        self._draw_whole()
        return self.dashboard.data.status

    def _draw_whole(self) -> None:
        # The state reached is drawn whole now, whatever the periodic callback last managed: the caller's next
        # line (a notebook's next cell) reads the charts.
        self.refresh()
        self.dashboard.render()

    @property
    def polling(self) -> bool:
        """True while the periodic callback on the kernel's (or page's) event loop is feeding the charts."""
        callback = self.dashboard._callback
        return bool(callback is not None and callback.running)

    @property
    def updates(self) -> int:
        """How many times the periodic callback has run."""
        callback = self.dashboard._callback
        return int(callback.counter) if callback is not None else 0

    def __panel__(self):
        return self.dashboard.layout

    def ipywidget(self):
        return pn.ipywidget(self.__panel__())

    def close(self) -> None:
        self.dashboard.stop_polling()


def live(source, *, ipywidget: bool = False, poll_ms: int = POLL_MS):
    """Live charts for a training started from code: `view = workbench.live(trainer); view` then `trainer.start()`.

    With ipywidget=True the charts come back as an ipywidget instead of a Panel object.
    """
    view = LiveView(source, poll_ms=poll_ms)
    return view.ipywidget() if ipywidget else view
