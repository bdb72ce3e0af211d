"""Train tab: the live dashboard of the session's run (loss and metric charts, gradient heatmap, variance,
decision boundary, step time) and why a run could not start.

A `pn.viewable.Viewer` over the shared BuilderState, RunSetup and TrainingSession. The sidebar's Train,
Step and Reset buttons call `start` and `reset`; the app calls `dashboard.poll()` from its periodic callback.
"""

from __future__ import annotations

import html
from typing import Callable

import panel as pn
from panel.viewable import Viewer

from ..dashboard import LiveDashboard
from ..session import StartError

IN_PROGRESS = "a run is in progress"


def _html_note(text: str, kind: str = "note") -> str:
    return f"<div class='wb-{kind}'>{text}</div>"


def boundary_points(dataset, test: bool = False) -> tuple[list, list, list] | None:
    """(x, y, label) of up to 400 samples of a 2-D classification dataset for the boundary chart, else None."""
    if dataset is None or tuple(dataset.input_shape) != (2,) or dataset.task != "classification":
        return None
    X, y = (dataset.X_test[:400], dataset.y_test[:400]) if test else (dataset.X_train[:400], dataset.y_train[:400])
    names = dataset.class_names or []
    labels = [names[int(c)] if int(c) < len(names) else str(int(c)) for c in y.tolist()]
    return X[:, 0].tolist(), X[:, 1].tolist(), labels


class TrainTab(Viewer):
    """The live dashboard of one session's run, and the start/step/reset actions behind the sidebar."""

    def __init__(self, builder, setup, session, is_visible: Callable[[], bool] = lambda: True, **params):
        super().__init__(**params)
        self.builder, self.setup, self.session = builder, setup, session
        self.message = pn.widgets.StaticText(value="", sizing_mode="stretch_width",
                                             css_classes=["wb-train-message"], margin=(4, 8))
        self.dashboard = LiveDashboard(controls=False, idle_text="No run yet: press Train.")
        self.dashboard.is_visible = is_visible
        self._layout = pn.Column(self.message, self.dashboard.layout, sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    def blockers(self) -> list[str]:
        """Why Train is disabled (empty when it may start)."""
        reasons = []
        if not self.builder.valid:
            reasons.append("Fix the network: " + self.builder.error["message"])
            return reasons
        problem, _ = self.setup.dataset_problem(self.builder.spec)
        if problem:
            reasons.append(problem)
        explanation = self.setup.gradient_explanation(self.builder.spec)
        if not explanation["ok"]:
            reasons.append(explanation["error"])
        if self.session.status in ("running", "paused"):
            reasons.append(IN_PROGRESS)
        return reasons

    def start(self, step: bool = False) -> bool:
        """Train (or Step: one optimiser step of the paused run, or of a new run that then waits).
        True when a new run started."""
        if step and self.session.status == "paused":
            self.session.step(self.builder.spec, self.setup)
            return False
        blockers = [b for b in self.blockers() if b != IN_PROGRESS]
        if blockers:
            self.message.value = _html_note(html.escape(blockers[0]), "alert")
            return False
        try:
            trainer = (self.session.step if step else self.session.start)(self.builder.spec, self.setup)
        except StartError as err:
            self.message.value = _html_note(html.escape(str(err)), "alert")
            return False
        dataset = self.session.dataset
        self.dashboard.attach(self.session.stream, trainer, boundary_points(dataset),
                              boundary_points(dataset, test=True))
        self.message.value = ""
        return True

    def reset(self) -> None:
        """Playground reset: stop and forget the run, clear the charts, and draw new initial weights (next seed)."""
        self.session.reset()
        self.dashboard.attach(None)
        self.setup.seed = (self.setup.seed + 1) % (2**31 - 1)
        self.message.value = ""
