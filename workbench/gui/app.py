"""The workbench GUI: composes the tabs of gui/tabs/ (one Viewer each) around one session's state objects.

`WorkbenchApp` is built once per browser session (or notebook display), so every session has its
own builder, settings, runs and charts. All state lives in the param classes of .state and .session;
each tab follows it by itself. This module holds the state objects, the tab table (`TABS`), the sidebar's
training controls, the reactions between tabs, the share link in the address bar, and polling and the
session's lifecycle. A served page starts with the open tab's content only and receives the other tabs
once the browser has drawn it (`fill_tabs`): the page is usable in about half the time.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import panel as pn
import param

from .. import templates
from ..store import RunStore, StoreError
from . import icons, share
from .components import PlotlyPreload, UrlState, control_button
from .dashboard import POLL_MS
from .session import TrainingSession
from .run_setup import RunSetup
from .state import BuilderState, session_payload, shape_text
from .tabs.benchmark import BenchmarkTab
from .tabs.build import BuildTab
from .tabs.circuit import CircuitTab
from .tabs.compare import CompareTab
from .tabs.export import ExportTab
from .tabs.quantum_state import QuantumStateView
from .tabs.search import SearchTab
from .tabs.setup import SetupTab
from .tabs.train import TrainTab

TITLE = "Hybrid Quantum Workbench"
# The tabs in order: (title, how a session's app makes the view over its state objects). Adding a panel is one
# new file in gui/tabs/ and one line here; a view may use the views made before it (`app.views`).
TABS = (
    ("Build", lambda app: BuildTab(app.builder, lambda: app.views["Run setup"].match_dataset(),
                                   notebook=app.notebook)),
    ("Circuit", lambda app: CircuitTab(app.builder, app.setup)),
    ("Run setup", lambda app: SetupTab(app.builder, app.setup)),
    ("Train", lambda app: TrainTab(app.builder, app.setup, app.session, is_visible=lambda: app.shows("Train"))),
    ("Quantum state", lambda app: QuantumStateView(app._inspected_model, app._inspected_dataset)),
    ("Compare", lambda app: CompareTab(app.store, app.builder, app.setup, app.session, app.views["Train"].dashboard,
                                       is_visible=lambda: app.shows("Compare"))),
    ("Search", lambda app: SearchTab(app)),
    ("Benchmark", lambda app: BenchmarkTab(app.builder, app.setup)),
    ("Export & share", lambda app: ExportTab(app.builder, app.setup, app.session)),
)
TAB_NAMES = tuple(name for name, _ in TABS)
TAB = {name: i for i, name in enumerate(TAB_NAMES)}
DEFAULT_TEMPLATE = "vqc-circles"
EMPTY_TAB_HEIGHT = 400  # a tab opened before its content arrived shows Panel's spinner in this much space
SPEEDS = {"fastest": 0.0, "fast · 20 steps/s": 0.05, "medium · 5 steps/s": 0.2, "slow · 1 step/s": 1.0}

CSS = (Path(__file__).with_name("workbench.css")).read_text(encoding="utf-8")


def _html_note(text: str, kind: str = "note") -> str:
    return f"<div class='wb-{kind}'>{text}</div>"


def default_store() -> RunStore:
    return RunStore(os.environ.get("WORKBENCH_STORE") or None)


class WorkbenchApp(param.Parameterized):
    """Everything one user sees and does; create one per session."""

    active_tab = param.Integer(default=0)

    def __init__(self, *, store: RunStore | None | bool = None, state: str | None = None, notebook: bool = False,
                 template: str | None = DEFAULT_TEMPLATE, defer_tabs: bool = False, **params):
        super().__init__(**params)
        self.notebook = notebook
        # defer_tabs: the page starts with only the open tab's content (see `fill_tabs`); the rest comes later.
        self.defer_tabs = defer_tabs
        try:
            # store=False: no run history at all (warm-up, previews); None: $WORKBENCH_STORE or the user's store.
            self.store = None if store is False else (store if store is not None else default_store())
        except StoreError as err:
            self.store = None
            self._store_error = str(err)
        else:
            self._store_error = ""
        self.builder = BuilderState()
        self.setup = RunSetup()
        self.session = TrainingSession(store=self.store)
        self._url_enabled = False
        self.restore_message = ""

        restored = False
        if state:
            restored = self.restore(state)
        if not restored and template:
            self.open_template(template)
        self._build()
        self._refresh_all()

    # ==============================================================================================
    # State actions (also used by tests and the notebook API)

    def open_template(self, name: str) -> None:
        self.builder.load_template(name)
        self.setup.use_template_dataset(name)

    def restore(self, text: str) -> bool:
        """Restore network and settings from a shared link's state; False (and a message) if unreadable."""
        try:
            payload = share.decode_state(text)
            self.builder.load(payload["spec"], action="restore link")
        except (share.ShareError, ValueError) as err:
            self.restore_message = f"Could not open the shared link: {err}"
            return False
        problems = self.setup.update_from(payload.get("setup") or {})
        self.restore_message = "Restored the network and settings from the link." + (
            " " + "; ".join(problems) if problems else "")
        return True

    def state_token(self) -> str:
        return share.encode_state(session_payload(self.builder, self.setup))

    def train_blockers(self) -> list[str]:
        """Why Train is disabled (empty when it may start)."""
        return self.train.blockers()

    def start_training(self, step: bool = False) -> bool:
        """Press Train (or Step: one optimiser step, of the paused run or of a new one that then waits)."""
        stepping_paused = step and self.session.status == "paused"
        started = self.train.start(step)
        if started:
            self.compare.forget_baseline()  # a finished baseline belongs to the run it was trained against
            self.tabs.active = TAB["Train"]
        self._update_controls()
        return started or stepping_paused

    def reset_training(self) -> None:
        """Playground reset: stop and forget the run, clear the charts, and draw new initial weights (next seed)."""
        self.train.reset()
        self._update_controls()

    # ==============================================================================================
    # Layout

    def _build(self) -> None:
        pn.config.raw_css = [*pn.config.raw_css, CSS] if CSS not in pn.config.raw_css else pn.config.raw_css
        self._build_sidebar()
        self.views: dict = {}
        for name, make in TABS:
            self.views[name] = make(self)
        # The views the app itself reaches (polling, cross-tab reactions, tests and the notebook API).
        (self.build, self.circuit, self.setup_tab, self.train, self.state_view, self.compare, self.search, self.bench,
         self.export) = (self.views[name] for name in TAB_NAMES)
        self.dashboard = self.train.dashboard
        # Each tab's content sits in a slot of its own, so it can be sent to the browser after the page is up.
        self._slots = {name: pn.Column(sizing_mode="stretch_width", margin=0, css_classes=["wb-tab-slot"],
                                       loading=True, min_height=EMPTY_TAB_HEIGHT) for name in TAB_NAMES}
        self.tabs = pn.Tabs(*self._slots.items(), sizing_mode="stretch_width", css_classes=["wb-tabs"], margin=(0, 0))
        for name in TAB_NAMES if not self.defer_tabs else TAB_NAMES[self.tabs.active:self.tabs.active + 1]:
            self._fill(name)
        self.tabs.param.watch(self._on_tab, "active")
        self.search.param.watch(lambda _: setattr(self.tabs, "active", TAB["Build"]), "opened")
        # Views follow the state objects: the builder, the run setup and the training session.
        pn.bind(self._on_builder, self.builder.param.revision, self.builder.param.selected, watch=True)
        self.setup.param.watch(self._on_setup, list(RunSetup.FIELDS))  # needs to know which settings changed
        pn.bind(lambda *_: self._update_controls(), self.session.param.status, self.session.param.message,
                watch=True)

    # ---------------------------------------------------------------------------------------- sidebar
    def _build_sidebar(self) -> None:
        self.template_buttons = []
        for name in templates.names():
            button = pn.widgets.Button(label=name, color="light", sizing_mode="stretch_width",
                                       css_classes=["wb-template", f"wb-template-{name}"], margin=(2, 4))
            button.on_click(lambda _, n=name: self._on_template(n))
            self.template_buttons.append(button)
        self.network_status = pn.widgets.StaticText(value="", sizing_mode="stretch_width",
                                                    css_classes=["wb-network-status"], margin=(4, 6))
        self.train_button = control_button(label="Train", icon=icons.PLAY, color="success", sizing_mode="stretch_width",
                                              css_classes=["wb-train"], height=40, margin=(6, 4))
        self.train_button.on_click(lambda _: self.start_training())
        self.pause_button = control_button(label="Pause", icon=icons.PAUSE, color="warning", css_classes=["wb-pause"],
                                              sizing_mode="stretch_width", margin=(2, 2))
        self.resume_button = control_button(label="Resume", icon=icons.PLAY, color="primary", css_classes=["wb-resume"],
                                               sizing_mode="stretch_width", margin=(2, 2))
        self.stop_button = control_button(label="Stop", icon=icons.STOP, color="danger", css_classes=["wb-stop"],
                                             sizing_mode="stretch_width", margin=(2, 2))
        self.step_button = control_button(label="Step", icon=icons.STEP,
                                             css_classes=["wb-step"], sizing_mode="stretch_width", margin=(2, 2))
        self.reset_button = control_button(label="Reset", icon=icons.UNDO,
                                              css_classes=["wb-reset"], sizing_mode="stretch_width", margin=(2, 2))
        self.step_button.on_click(lambda _: self.start_training(step=True))
        self.reset_button.on_click(lambda _: self.reset_training())
        self.speed = pn.widgets.Select.from_param(self.session.param.step_delay, name="Speed", options=SPEEDS,
                                                  sizing_mode="stretch_width", css_classes=["wb-speed"])
        self.until_paused = pn.widgets.Checkbox.from_param(self.setup.param.until_paused,
                                                           name="Train until paused (ignore epochs)",
                                                           css_classes=["wb-until-paused"])
        self.pause_button.on_click(lambda _: (self.session.pause(), self._update_controls()))
        self.resume_button.on_click(lambda _: (self.session.resume(), self._update_controls()))
        self.stop_button.on_click(lambda _: (self.session.stop(), self._update_controls()))
        self.run_status = pn.widgets.StaticText(value="", sizing_mode="stretch_width", css_classes=["wb-run-status"],
                                                margin=(4, 6))
        self.train_blocker = pn.widgets.StaticText(value="", sizing_mode="stretch_width",
                                                   css_classes=["wb-train-blocker"], margin=(4, 6))
        self.url_state = UrlState(param_name=share.STATE_PARAM, height=0, width=0, margin=0, visible=True)
        self.url_state.param.watch(lambda _: self._update_url(), "page")
        self.plotly_preload = PlotlyPreload(height=0, width=0, margin=0)
        self.sidebar = pn.Column(
            pn.pane.HTML("<div class='wb-section-title'>Starter templates</div>"
                         "<div class='wb-muted'>Open a network with its dataset in one click.</div>",
                         margin=(0, 6)),
            *self.template_buttons,
            pn.layout.Divider(margin=(8, 4)),
            pn.pane.HTML("<div class='wb-section-title'>Network</div>", margin=(0, 6)),
            self.network_status,
            pn.layout.Divider(margin=(8, 4)),
            pn.pane.HTML("<div class='wb-section-title'>Training</div>", margin=(0, 6)),
            self.train_button, self.train_blocker,
            pn.Row(self.pause_button, self.resume_button, self.stop_button, sizing_mode="stretch_width"),
            pn.Row(self.step_button, self.reset_button, sizing_mode="stretch_width"),
            self.speed, self.until_paused,
            self.run_status, self.url_state, self.plotly_preload,
            sizing_mode="stretch_width", css_classes=["wb-sidebar"])

    def _on_template(self, name: str) -> None:
        self.open_template(name)
        self.tabs.active = TAB["Build"]

    # ---------------------------------------------------------------------------------------- export
    def apply_upload(self, data: bytes, filename: str = "upload.json") -> str:
        """Upload without a browser (tests, notebooks); returns the message shown."""
        return self.export.apply_upload(data, filename)

    # ==============================================================================================
    # Reactions

    def _on_builder(self, *events) -> None:
        self._refresh_builder_views()
        self._update_url()

    def _on_setup(self, *events) -> None:
        self._update_controls()
        self._update_url()

    def _inspected_model(self):
        """(model, key) for the quantum state view: the run's model while/after training, else the canvas network
        compiled with fresh weights (key: what its weights depend on)."""
        trainer = self.session.trainer
        if trainer is not None:
            model, key = self.session.run_model()
            if model is not None:
                return model, (id(trainer), key)
        if not self.builder.valid:
            return None, None
        key = ("canvas", self.builder.revision)
        if getattr(self, "_canvas_model_key", None) != key:
            from .. import compile as wb_compile

            try:
                self._canvas_model = wb_compile(self.builder.spec_object())
            except Exception:  # a network the torch engine cannot build: the view says there is nothing to show
                self._canvas_model = None
            self._canvas_model_key = key
        return self._canvas_model, key

    def _inspected_dataset(self):
        if self.session.trainer is not None and self.session.dataset is not None:
            return self.session.dataset
        problem, data = self.setup.dataset_problem(self.builder.spec)
        return None if problem else data

    def shows(self, name: str) -> bool:
        """Whether the tab `name` is on screen (in a notebook every tab's charts keep drawing)."""
        return self.notebook or (hasattr(self, "tabs") and self.tabs.active == TAB[name])

    def _fill(self, name: str) -> bool:
        """Put tab `name`'s content into its slot (once; it then stays, so going back never redraws it)."""
        slot = self._slots[name]
        if slot.objects:
            return False
        slot.param.update(objects=[self.views[name]], loading=False, min_height=None)
        return True

    def fill_next(self) -> str | None:
        """Fill the first tab still empty; its name, or None when every tab has its content."""
        return next((name for name in TAB_NAMES if self._fill(name)), None)

    def fill_tabs(self, delay_ms: int = 300):
        """Once the browser has drawn the page: load plotly.js, and send the tabs not yet on the page, one every
        `delay_ms`, so the browser draws them (hidden) in small steps between the user's clicks; a tab opened
        before its turn was filled when it was opened. Returns the periodic callback (None: nothing left)."""
        self.plotly_preload.requested = True
        waiting = sum(not slot.objects for slot in self._slots.values())
        return pn.state.add_periodic_callback(self.fill_next, period=delay_ms, count=waiting) if waiting else None

    def _on_tab(self, event) -> None:
        self.active_tab = event.new
        self._fill(TAB_NAMES[event.new])
        if event.new == TAB["Quantum state"]:
            self.state_view.refresh(force=True)
        if event.new == TAB["Train"]:
            self.dashboard.render()
        if event.new == TAB["Compare"]:
            self.compare.shown()

    def _refresh_builder_views(self) -> None:
        b = self.builder
        if b.valid:
            self.network_status.value = _html_note(f"✓ {len(b.blocks)} blocks · output "
                                                   f"{shape_text(b.shapes[-1][1])}", "success")
        else:
            where = f"<b>{html.escape(str(b.error['block']))}</b>: " if b.error.get("block") else ""
            self.network_status.value = _html_note("✗ " + where + html.escape(b.error["message"]), "alert")
        self._update_controls()

    def _refresh_all(self) -> None:
        self._refresh_builder_views()
        if self.restore_message:
            kind = "success" if self.restore_message.startswith("Restored") else "alert"
            self.build.last_action.value = f"<span class='wb-muted'>{html.escape(self.restore_message)}</span>"
            self.export.upload_message.value = _html_note(html.escape(self.restore_message), kind)
        if self._store_error:
            self.compare.show_store_error(self._store_error)
        self._update_url()

    def _update_controls(self) -> None:
        s = self.session
        blockers = self.train_blockers()
        running = s.status in ("running", "paused")
        self.train_button.disabled = bool(blockers)
        self.train_blocker.value = ("<div class='wb-muted' style='color:#b91c1c'>" + html.escape(blockers[0]) +
                                    "</div>") if blockers and not running else ""
        self.step_button.disabled = (bool(blockers) and not running) or s.status == "running"
        self.reset_button.disabled = s.trainer is None
        self.pause_button.disabled = s.status != "running"
        self.resume_button.disabled = s.status != "paused"
        self.stop_button.disabled = not running
        status = {"idle": "No run yet.", "running": "Training… " + s.message, "queued": "Queued: " + s.message,
                  "paused": "Paused.", "completed": "Completed.", "cancelled": "Stopped.",
                  "failed": "Failed: " + s.message}.get(s.status, s.status)
        self.run_status.value = f"<span class='wb-muted'>{html.escape(status)}</span>"

    def _update_url(self) -> None:
        token = self.state_token()
        base = self._base_url()
        self.export.share_url.value = f"{base}?{share.STATE_PARAM}={token}"
        if self._url_enabled and token != self.url_state.value:
            self.url_state.value = token

    def _base_url(self) -> str:
        """The page's address (as the browser reports it; before that, from the page request)."""
        if self.url_state.page:
            return self.url_state.page
        try:
            host = pn.state.headers.get("Host") if pn.state.curdoc and pn.state.curdoc.session_context else None
        except Exception:
            host = None
        if not host:
            return "http://localhost:5006/"
        path = "/"
        try:
            request = pn.state.curdoc.session_context.request
            path = request.path or "/"
        except Exception:
            pass
        if path.endswith("/ws"):  # a websocket callback: the page itself is one level up
            path = path[:-2]
        return f"http://{host}{path}"

    # ==============================================================================================
    # Polling (one periodic callback per session)

    def poll(self) -> None:
        self.session.refresh()
        self.dashboard.poll()
        if self.tabs.active == TAB["Quantum state"]:
            self.state_view.refresh()
        self.compare.poll()
        self.bench.poll()
        self.circuit.poll()

    def start_polling(self, period_ms: int = POLL_MS):
        self._poller = pn.state.add_periodic_callback(self.poll, period=period_ms)
        return self._poller

    def shutdown(self, wait: float | None = None) -> None:
        """End this session's work: polling, benchmark and training (the tab closed or the notebook let go)."""
        poller = getattr(self, "_poller", None)
        if poller is not None:
            poller.stop()
        self.bench.cancel()
        self.session.shutdown(wait=wait)

    # ==============================================================================================
    # Views

    def main_view(self):
        """The tabs without a page template (notebooks)."""
        header = pn.pane.HTML(f"<div style='font-size:20px;font-weight:700;color:#0f172a'>{TITLE}</div>",
                              margin=(4, 8))
        # Stacked, not side by side: at a notebook's width a sidebar left the canvas a 60 px column.
        controls = pn.Accordion(("Templates and training controls", self.sidebar), active=[0],
                                sizing_mode="stretch_width", css_classes=["wb-notebook-controls"], margin=(4, 8))
        return pn.Column(header, controls, self.tabs, sizing_mode="stretch_width", css_classes=["wb-notebook"])

    def page(self):
        """The full page for `panel serve` (Bootstrap template: no external fonts or icons)."""
        template = pn.template.BootstrapTemplate(title=TITLE, sidebar=[self.sidebar], main=[self.tabs],
                                                 header_background="#1e1b4b", sidebar_width=290,
                                                 raw_css=[CSS], busy_indicator=None)
        return template


def _serve_resources_locally() -> None:
    """Make every stylesheet of this session's document point at this server from the start.

    Panel rewrites CDN stylesheet URLs to local ones when it renders the HTML page. A session that Bokeh
    re-creates when the browser connects late (a busy machine, the page took longer than the unused-session
    lifetime) gets no page render, so its stylesheets would stay on the CDN; setting the document's dist_url
    first makes Panel patch them as it creates the models (the same value the page render would set).
    """
    from panel.io.resources import LOCAL_DIST

    doc = pn.state.curdoc
    if doc is None or doc.session_context is None or "dist_url" in doc._template_variables:
        return
    rel = pn.state.rel_path
    doc._template_variables["dist_url"] = f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST


def create_app(store: RunStore | None = None):
    """The per-session entry point for `panel serve` / pn.serve: a fresh app for every browser tab."""
    # A spinner (local CSS) covers the page until the document has rendered: no blank page while it loads.
    # No "plotly" extension: plotly.js is not in the page; `fill_tabs` has it loaded once the page is drawn.
    pn.extension(global_loading_spinner=True)
    _serve_resources_locally()
    state = None
    args = pn.state.session_args or {}
    if args.get(share.STATE_PARAM):
        state = args[share.STATE_PARAM][0].decode("ascii", errors="replace")
    served = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    # Served: the page opens with the open tab only, the others follow once the browser has drawn it.
    app = WorkbenchApp(store=store, state=state, defer_tabs=served)
    app._url_enabled = True
    app._update_url()
    if served:
        # Poll only once the page has loaded: nothing changes the document before the browser has it.
        pn.state.onload(app.start_polling)
        pn.state.onload(app.fill_tabs)
        pn.state.on_session_destroyed(lambda context: app.shutdown())
    else:
        app.start_polling()
    template = app.page()
    template._workbench_app = app  # reachable from tests and debugging
    return template
