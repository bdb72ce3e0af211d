"""The benchmark suites by name, so one call runs any of them: here (`workbench bench <suite>`) or in a job's
worker (`workbench bench <suite> --cluster ...`), with the same keyword arguments.

Example:
    result = run_suite("engine", {"qubits": [4], "repeats": 1}, progress=print)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable

# suite -> (module in workbench.bench, function); every function takes keywords and `progress`.
SUITES = {
    "engine": ("engine", "run_engine"),
    "gradient": ("gradient", "run_gradient"),
    "scaling": ("scaling", "run_scaling"),
    "baseline": ("baseline", "run_baseline"),
    "surrogate": ("surrogate", "run_surrogate"),
    "peers": ("peers", "run_peers"),
}

# Suites that need what only this machine has: the reason, said when one is sent to a cluster.
LOCAL_ONLY = {
    "peers": "the peers suite runs each framework in a virtual environment on this machine "
             "(`workbench bench peers --setup`), which a Ray node does not have: run it without --cluster",
}


def run_suite(suite: str, arguments: dict[str, Any], progress: Callable[[str], None] | None = None) -> dict:
    """Run benchmark suite `suite` with `arguments` (its keyword arguments) and return its JSON-ready result.

    Args:
        suite: one of SUITES.
        arguments: the suite function's keyword arguments (qubits, batch, repeats, template, spec, ...).
        progress: called with each progress message.
    """
    if suite not in SUITES:
        raise ValueError(f"benchmark suite {suite!r}: use one of {', '.join(SUITES)}")
    module, function = SUITES[suite]
    return getattr(import_module(f".{module}", __package__), function)(**arguments, progress=progress)
