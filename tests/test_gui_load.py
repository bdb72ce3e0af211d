"""How a served page loads, without a browser: it starts with the open tab's content only, every other tab
gets its content when opened or in the background, and plotly.js comes from this server after the page.

The browser side (every tab shows its content and charts after load) is in test_gui_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import panel as pn

from workbench.gui import components
from workbench.gui.app import TAB, TAB_NAMES, WorkbenchApp


def filled(app: WorkbenchApp) -> list[str]:
    """The tabs whose slot holds their view's layout (what the browser is sent)."""
    return [name for name in TAB_NAMES
            if [id(obj) for obj in app._slots[name].objects] == [id(app.views[name].__panel__())]]


def test_a_served_page_starts_with_the_open_tab_and_fills_the_rest_once_each():
    app = WorkbenchApp(store=False, defer_tabs=True)
    try:
        assert filled(app) == ["Build"]
        waiting = app._slots["Compare"]
        assert waiting.objects == [] and waiting.loading  # an early click shows a spinner, not a blank tab
        assert not app.plotly_preload.requested  # plotly.js waits until the browser has drawn the page
        app.tabs.active = TAB["Train"]  # opened before its turn: filled at once
        assert filled(app) == ["Build", "Train"]
        order = []
        while (name := app.fill_next()) is not None:
            order.append(name)
        assert order == [name for name in TAB_NAMES if name not in ("Build", "Train")]
        assert filled(app) == list(TAB_NAMES)
        assert not any(app._slots[name].loading for name in TAB_NAMES)
        train = app._slots["Train"].objects[0]
        app.tabs.active = TAB["Build"]
        app.tabs.active = TAB["Train"]  # going back keeps the same content (no re-render, no blank flash)
        assert app._slots["Train"].objects[0] is train
        assert app.fill_tabs() is None and app.plotly_preload.requested  # nothing left to schedule
    finally:
        app.shutdown()


def test_an_app_outside_a_server_has_every_tab_from_the_start():
    app = WorkbenchApp(store=False)  # notebooks and tests: no page load to speed up
    try:
        assert filled(app) == list(TAB_NAMES)
    finally:
        app.shutdown()


def test_charts_load_plotly_from_a_file_this_server_serves():
    src = components._plotly_src()
    assert not src.startswith(("http:", "https:", "//")), src  # never a CDN
    prefix = "static/extensions/panel/"
    assert src.startswith(prefix)
    assert (Path(pn.__file__).parent / "dist" / src[len(prefix):]).is_file()
    assert src in components.LiveChart._esm and src in components.PlotlyPreload._esm
