"""The root of the project's error hierarchy. It lives in the engine, the bottom layer, so that the
engine's own errors (a spec block that cannot be built, a gradient method that does not fit, a target
that cannot run here, a state that does not fit in memory) are user errors like every other.
`workbench.errors` re-exports it with the errors of the layers above."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error the workbench raises for bad input, files, links, stores or settings."""
