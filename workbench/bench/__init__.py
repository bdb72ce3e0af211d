"""Benchmarks of the workbench: engine speed, gradient methods, scaling, peer frameworks, classical baseline.

Command line: `workbench bench <suite> ...` or `python -m workbench.bench <suite> ...`. Python:

    from workbench.bench import run_engine, run_gradient, run_scaling, run_peers, run_baseline, recommend
    result = run_engine(qubits=[4, 8])          # a JSON-ready dict: rows, checks, skipped, notes, machine
    advice = recommend(spec, batch=32)          # {"target", "gradient", "precision", "sentence", "rows"}
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_engine", "run_gradient", "run_scaling", "run_peers", "run_baseline", "recommend", "standard_spec",
           "standard_spec_dict", "write_json", "write_html", "print_result"]

_WHERE = {
    "run_engine": "engine", "run_gradient": "gradient", "recommend": "gradient", "run_scaling": "scaling",
    "run_peers": "peers", "run_baseline": "baseline", "standard_spec": "common", "standard_spec_dict": "common",
    "write_json": "report", "write_html": "report", "print_result": "report",
}


def __getattr__(name: str) -> Any:  # keep `import workbench.bench` light: suites load on first use
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(name)
