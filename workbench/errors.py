"""The project's error hierarchy: every mistake a user can make ends in a `WorkbenchError`.

Front ends catch `WorkbenchError` (and `user_errors()`, which adds the engine's own errors) in one
clause and show the message as it is: each message says what is wrong and how to fix it. Anything
else is a bug and is reported with the place its full traceback was written.

Every concrete error also derives from the built-in class it always was (ValueError, RuntimeError),
so code that caught those keeps working.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error the workbench raises for bad input, files, links, stores or settings."""


class OptionError(WorkbenchError, ValueError):
    """A compile or training option outside what the workbench accepts (e.g. shots <= 0)."""


class ModelFileError(WorkbenchError, ValueError):
    """A saved model file that is not ours, is damaged, or asks for more than a file may choose."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean "the user's input was wrong", for one except clause.

    The quantum engine's errors (out of memory, impossible gradient method, unknown target) are
    defined with the engine; they are looked up here so this module imports nothing heavy.
    """
    from .gradients import GradientError
    from .layers import ResourceError
    from ._cudaq import TargetError

    return (WorkbenchError, ResourceError, GradientError, TargetError)
