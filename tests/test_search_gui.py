"""The Search tab without a browser: its Viewer over a real store and builder, driven as a user would
(start, watch points appear, click one, open it in the builder), with what it shows checked against the
store. A standalone served test drives it in Chromium."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from workbench.gui.state import BuilderState
from workbench.gui.tabs.search import SearchTab
from workbench.search import SearchResults
from workbench.store import RunStore


def _wait(tab: SearchTab, timeout: float = 120) -> None:
    tab.live.join(timeout)
    assert tab.live.status == "completed", tab.live.message
    tab.refresh()


@pytest.fixture
def tab(tmp_path):
    state = SimpleNamespace(store=RunStore(tmp_path / "runs.sqlite3"), builder=BuilderState())
    tab = SearchTab(state)
    tab.space_select.value = "circles-vqc"
    tab.dataset_options.value = '{"n_samples": 60}'
    tab.budget.value, tab.epochs.value, tab.strategy.value = 4, 2, "random"
    return tab


def test_points_appear_as_candidates_finish_and_the_front_is_marked(tab):
    seen = []
    tab.live.param.watch(lambda e: seen.append(len(tab.live.completed_rows())), "revision")
    assert tab.start()
    _wait(tab)
    assert seen[:4] == [1, 2, 3, 4]  # one redraw signal per finished candidate
    figure = tab.scatter.figure
    points = {k for trace in figure["data"][:2] for k in trace["customdata"]}
    results = SearchResults.load(tab.live.search_id, tab.state.store)
    assert points == {r["key"] for r in results.final_rows()}
    front = set(figure["data"][1]["customdata"])
    assert front == {r["key"] for r in results.pareto("parameters", "val_accuracy")}
    assert "4/4" in tab.status.object and "completed" in tab.status.object
    assert tab.progress.value == tab.progress.max == 4


def test_click_shows_curves_and_open_loads_the_builder(tab):
    tab.start()
    _wait(tab)
    key = tab.scatter.figure["data"][0]["customdata"][0] if tab.scatter.figure["data"][0]["customdata"] else \
        tab.scatter.figure["data"][1]["customdata"][0]
    tab.scatter.clicked = {"customdata": key, "x": 0, "y": 0, "curve": 0, "index": 0}
    row = next(r for r in tab.live.completed_rows() if r["key"] == key)
    epochs = tab.state.store.events(row["run_id"], "epoch")
    curves = tab.curves.figure
    assert curves["data"][0]["y"] == [e["loss"] for e in epochs]
    assert curves["data"][1]["y"] == [e["val_loss"] for e in epochs]
    assert not tab.open_button.disabled
    tab.open_in_builder()
    assert tab.state.builder.spec == tab.state.store.get_run(row["run_id"]).spec
    assert tab.scatter.figure["data"][-1]["name"] == "selected"


def test_bad_space_json_is_explained_and_nothing_starts(tab):
    tab.space_json.value = '{"name": "x", "base": {"blocks": []}}'
    assert not tab.start()
    assert "Cannot start" in tab.status.object and "non-empty list of blocks" in tab.status.object
    assert tab.live.status == "idle"


def test_stop_leaves_a_resumable_search(tab):
    tab.budget.value = 6
    tab.live.param.watch(lambda e: tab.live.stop() if tab.live.done >= 1 else None, "revision")
    tab.start()
    tab.live.join(120)
    assert tab.live.status == "stopped" and tab.live.search_id in tab.live.message


def test_without_a_store_searching_is_disabled():
    tab = SearchTab(SimpleNamespace(store=None, builder=BuilderState()))
    assert tab.start_button.disabled and "run store" in tab.status.object
