"""How the command line ends on an error: a user's mistake is one line and exit code 2; anything
else is a short message, exit code 1, and the full traceback in a log file whose path is printed.

Example:
    app = typer.Typer(cls=GuardedGroup)  # every command of the app and its sub-apps is guarded
"""

from __future__ import annotations

import json
import os
import tempfile
import traceback
from datetime import datetime, timezone
from pathlib import Path

import platformdirs
import typer
from typer.core import TyperGroup

from .errors import OptionError, user_errors

USER_ERROR_EXIT = 2
FAILURE_EXIT = 1


def log_dir() -> Path:
    """$WORKBENCH_LOG_DIR if set, else the user's log directory for the workbench."""
    override = os.environ.get("WORKBENCH_LOG_DIR")
    return Path(override).expanduser() if override else Path(platformdirs.user_log_dir("workbench"))


def one_line(message: object) -> str:
    """The message with its line breaks and runs of spaces folded, for a one-line report."""
    return " ".join(str(message).split())


def write_traceback(error: BaseException) -> Path:
    """Write the error's full traceback to a new file in `log_dir()` (or the temp dir) and return its path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    for directory in (log_dir(), Path(tempfile.gettempdir())):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"workbench-error-{stamp}-{os.getpid()}.txt"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    raise error


def parse_key_values(pairs: list[str], option: str, example: str) -> dict:
    """`key=value` command-line pairs as a dict; a value that reads as JSON (numbers, lists) is decoded.
    OptionError (one line, exit 2) for a pair without '='."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise OptionError(f"{option} {pair!r} must look like key=value, e.g. {example}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


class GuardedGroup(TyperGroup):
    """A command group whose commands (and sub-groups' commands) end every error as described above."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except user_errors() as err:
            typer.echo(f"error: {one_line(err)}", err=True)
            raise typer.Exit(USER_ERROR_EXIT) from None
        except Exception as err:
            if _from_the_cli_framework(err):  # Exit, Abort, usage errors: the framework reports them
                raise
            path = write_traceback(err)  # a bug, not a mistake: keep the evidence, say where it is
            typer.echo(f"error: unexpected {type(err).__name__}: {one_line(err)[:300]} "
                       f"(full traceback in {path}; please report it)", err=True)
            raise typer.Exit(FAILURE_EXIT) from None


def _from_the_cli_framework(error: Exception) -> bool:
    return type(error).__module__.split(".")[0] in ("typer", "click")
