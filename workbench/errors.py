"""The project's error hierarchy: every mistake a user can make ends in a `WorkbenchError`.

Front ends catch `WorkbenchError` in one clause and show the message as it is: each message says what is wrong and how to fix it. Anything
else is a bug and is reported with the place its full traceback was written.

Every concrete error also derives from the built-in class it always was (ValueError, RuntimeError),
so code that caught those keeps working.
"""

from __future__ import annotations

from .engine.errors import WorkbenchError
from .engine.gradients.base import GradientError
from .engine.plan import ResourceError
from .engine.targets import TargetError

__all__ = ["GradientError", "ModelFileError", "OptionError", "ResourceError", "TargetError", "WorkbenchError",
           "user_errors"]


class OptionError(WorkbenchError, ValueError):
    """A compile or training option outside what the workbench accepts (e.g. shots <= 0)."""


class ModelFileError(WorkbenchError, ValueError):
    """A saved model file that is not ours, is damaged, or asks for more than a file may choose."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean "the user's input was wrong", for one except clause: every project
    error, the engine's own (out of memory, impossible gradient method, unknown target) included."""
    return (WorkbenchError,)
