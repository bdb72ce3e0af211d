"""Printing (rich tables), JSON files and self-contained offline HTML reports (Plotly, with plotly.js inlined)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any, Iterable

from ..engine.plan import human_bytes


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1e4:
        return f"{value / 1e3:.1f} s"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def _num(value: Any, fmt: str = "{:.2f}") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return fmt.format(value)
    return str(value)


def _sci(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


# (header, row -> text) per suite
COLUMNS: dict[str, list[tuple[str, Any]]] = {
    "engine": [
        ("n", lambda r: str(r.get("n"))), ("executor", lambda r: r["executor"]), ("gradient", lambda r: r["gradient"]),
        ("forward ms", lambda r: _ms(r.get("forward_ms"))), ("backward ms", lambda r: _ms(r.get("backward_ms"))),
        ("optim ms", lambda r: _ms(r.get("optimizer_ms"))), ("step ms", lambda r: _ms(r.get("step_ms"))),
        ("bwd/fwd", lambda r: _num(r.get("backward_over_forward"))),
        ("note", lambda r: r.get("reason") or (f"batch {r['measured_batch']} scaled" if r.get("extrapolated")
                                               else "")),
    ],
    "gradient": [
        ("n", lambda r: str(r.get("n"))), ("batch", lambda r: str(r["batch"])), ("executor", lambda r: r["executor"]),
        ("gradient", lambda r: r["gradient"]), ("precision", lambda r: r["precision"]),
        ("step ms", lambda r: _ms(r.get("step_ms"))), ("peak mem", lambda r: human_bytes(r.get("peak_bytes"))),
        ("grad err (rel)", lambda r: _sci(r.get("grad_error_rel"))), ("note", lambda r: r.get("reason", "")),
    ],
    "scaling": [
        ("sweep", lambda r: r.get("sweep", "")), ("n", lambda r: str(r["n"])), ("batch", lambda r: str(r["batch"])),
        ("executor", lambda r: f"{r['executor']}/{r['gradient']}"), ("step ms", lambda r: _ms(r.get("step_ms"))),
        ("fwd ms", lambda r: _ms(r.get("forward_ms"))), ("bwd ms", lambda r: _ms(r.get("backward_ms"))),
        ("peak mem", lambda r: human_bytes(r.get("peak_bytes"))), ("sweep ms", lambda r: _ms(r.get("sweep_ms"))),
        ("step/sweep", lambda r: _num(r.get("step_over_sweep"), "{:.0f}")),
        ("fwd BW frac", lambda r: _num(r.get("forward_bandwidth_fraction"))), ("note", lambda r: r.get("reason", "")),
    ],
    "peers": [
        ("n", lambda r: str(r["n"])), ("variant", lambda r: r["variant"]),
        ("cpu ms", lambda r: _ms(r.get("cpu_ms"))), ("step ms", lambda r: _ms(r.get("step_ms"))),
        ("forward ms", lambda r: _ms(r.get("forward_ms"))), ("backward ms", lambda r: _ms(r.get("backward_ms"))),
        ("steps", lambda r: str(r.get("steps_timed", "-"))),
        ("load", lambda r: "-" if not r.get("load_average_1min") else
         "{:.1f}-{:.1f}".format(*r["load_average_1min"])),
        ("status", lambda r: r["status"] if r["status"] != "ok" else ""),
        ("note", lambda r: r.get("reason", "")),
    ],
    "baseline": [
        ("model", lambda r: r["model"]), ("spec", lambda r: r["spec"]), ("parameters", lambda r: str(r["parameters"])),
        ("train acc", lambda r: _num(r["train_accuracy"], "{:.3f}")),
        ("test acc", lambda r: _num(r["test_accuracy"], "{:.3f}")),
        ("train s", lambda r: _num(r["train_seconds"], "{:.1f}")), ("ms/step", lambda r: _ms(r["ms_per_step"])),
    ],
}


def table_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    columns = COLUMNS.get(result["suite"], [])
    rows = list(result.get("rows", [])) + list(result.get("shift_ratio_rows", []))
    return [c[0] for c in columns], [[str(f(r)) for _, f in columns] for r in rows]


def check_rows(result: dict) -> list[list[str]]:
    out = []
    for c in result.get("checks", []):
        where = ", ".join(f"{k}={v}" for k, v in c.items() if k in ("n", "executor", "variant", "peer", "ours"))
        value = c.get("value")
        shown = "-" if value is None else (f"{value:.2e}" if abs(value) < 1e-2 else f"{value:.2f}")
        met = {True: "yes", False: "NO", None: "n/a"}[c.get("met")]
        out.append([c["name"], where, shown, c["target"], met])
    return out


def extra_tables(result: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The peers suite's headline (same-round ratios) and its check against the reference simulator."""
    tables = []
    if result.get("headline"):
        tables.append(("headline: our fastest exact path vs the fastest peer, per round (median, range)",
                       ["n", "CPU ratio", "CPU range", "wall ratio", "wall range", "ours", "fastest peer",
                        "over budget"],
                       [[str(h["n"]), f"{h['cpu_ratio']:.2f}", "{:.2f}-{:.2f}".format(*h["cpu_ratio_range"]),
                         f"{h['wall_ratio']:.2f}", "{:.2f}-{:.2f}".format(*h["wall_ratio_range"]), h["cpu_ours"],
                         h["cpu_peer"], ", ".join(h.get("peers_over_budget", []))] for h in result["headline"]]))
    if result.get("reference_agreement"):
        tables.append(("agreement with the float64 dense-matrix reference (max abs difference)",
                       ["n", "variant", "dtype", "gradient", "output", "tolerance", "status"],
                       [[str(a["n"]), a["variant"], a["dtype"], _sci(a.get("max_abs_grad_diff")),
                         _sci(a.get("max_abs_output_diff")), f"{a['tolerance']:g}",
                         a["status"] if a["status"] != "ok" else
                         ("within" if a["max_abs_grad_diff"] <= a["tolerance"] else "OUTSIDE")]
                        for a in result["reference_agreement"]]))
    return tables


def print_result(result: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    headers, rows = table_rows(result)
    table = Table(title=f"workbench bench {result['suite']}", show_lines=False)
    for h in headers:
        table.add_column(h, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    checks = check_rows(result)
    if checks:
        ctable = Table(title="targets")
        for h in ("check", "where", "value", "target", "met"):
            ctable.add_column(h, overflow="fold")
        for row in checks:
            style = "red" if row[-1] == "NO" else None
            ctable.add_row(*row, style=style)
        console.print(ctable)
    for title, headers_, rows_ in extra_tables(result):
        extra = Table(title=title)
        for h in headers_:
            extra.add_column(h, overflow="fold")
        for row in rows_:
            extra.add_row(*row)
        console.print(extra)
    for note in result.get("notes", []):
        console.print(note)
    bandwidth = result.get("bandwidth")
    if bandwidth:
        console.print(f"memory bandwidth (copy, read+write): {bandwidth['gb_per_s']:.1f} GB/s")


def write_json(result: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str))
    return path


# ---------------------------------------------------------------------------------------------
# HTML


def _figures(result: dict) -> list:
    import plotly.graph_objects as go

    suite = result["suite"]
    rows = [r for r in result.get("rows", []) if r.get("status", "ok") == "ok"]
    figs = []
    if suite == "engine":
        fig = go.Figure()
        for key in sorted({(r["executor"], r["gradient"]) for r in rows}):
            mine = [r for r in rows if (r["executor"], r["gradient"]) == key and r.get("step_ms")]
            fig.add_bar(name=f"{key[0]} / {key[1]}", x=[str(r["n"]) for r in mine], y=[r["step_ms"] for r in mine])
        fig.update_layout(title="Time per training step", xaxis_title="qubits", yaxis_title="ms (log)",
                          yaxis_type="log", barmode="group")
        figs.append(fig)
        fig = go.Figure()
        for key in sorted({(r["executor"], r["gradient"]) for r in rows}):
            mine = [r for r in rows if (r["executor"], r["gradient"]) == key and r.get("forward_ms")]
            fig.add_scatter(name=f"{key[0]} / {key[1]}", x=[r["n"] for r in mine],
                            y=[r["backward_ms"] / r["forward_ms"] for r in mine], mode="lines+markers")
        fig.add_hline(y=3, line_dash="dash", annotation_text="adjoint target: backward ≤ 3 × forward")
        fig.update_layout(title="Backward / forward", xaxis_title="qubits", yaxis_title="ratio")
        figs.append(fig)
    elif suite == "peers":
        fig = go.Figure()
        for variant in dict.fromkeys(r["variant"] for r in rows):
            mine = [r for r in rows if r["variant"] == variant and r.get("cpu_ms")]
            fig.add_bar(name=variant, x=[str(r["n"]) for r in mine], y=[r["cpu_ms"] for r in mine])
        fig.update_layout(title="CPU time per training step (median, full batch): workbench vs peers",
                          xaxis_title="qubits",
                          yaxis_title="ms (log)", yaxis_type="log", barmode="group")
        figs.append(fig)
    elif suite == "gradient":
        fig = go.Figure()
        for key in dict.fromkeys((r["executor"], r["gradient"], r["precision"]) for r in rows):
            mine = [r for r in rows if (r["executor"], r["gradient"], r["precision"]) == key and r.get("step_ms")]
            fig.add_scatter(name="/".join(key), x=[r["step_ms"] for r in mine],
                            y=[max(r.get("grad_error_rel") or 1e-17, 1e-17) for r in mine], mode="markers",
                            text=[f"n={r['n']} batch={r['batch']}" for r in mine], marker={"size": 10})
        fig.update_layout(title="Gradient error against time per step", xaxis_title="ms per step (log)",
                          yaxis_title="relative gradient error (log)", xaxis_type="log", yaxis_type="log")
        figs.append(fig)
    elif suite == "scaling":
        for sweep, axis in (("qubits", "n"), ("batch", "batch")):
            mine_rows = [r for r in rows if r.get("sweep") == sweep]
            if not mine_rows:
                continue
            fig = go.Figure()
            for key in dict.fromkeys((r["executor"], r["gradient"]) for r in mine_rows):
                mine = [r for r in mine_rows if (r["executor"], r["gradient"]) == key and r.get("step_ms")]
                fig.add_scatter(name=f"{key[0]} / {key[1]}", x=[r[axis] for r in mine], y=[r["step_ms"] for r in mine],
                                mode="lines+markers")
            limit = {}
            for r in mine_rows:
                if r["executor"] in ("torch", "torch-density"):
                    limit[r[axis]] = r["sweep_ms"]
            if limit:
                xs = sorted(limit)
                fig.add_scatter(name="one statevector sweep at copy bandwidth (complex64)", x=xs,
                                y=[limit[x] for x in xs], mode="lines", line={"dash": "dash"})
            fig.update_layout(title=f"Time per step vs {sweep}", xaxis_title=sweep, yaxis_title="ms (log)",
                              yaxis_type="log", xaxis_type="log" if sweep == "batch" else "linear")
            figs.append(fig)
            fig = go.Figure()
            for key in dict.fromkeys((r["executor"], r["gradient"]) for r in mine_rows):
                mine = [r for r in mine_rows if (r["executor"], r["gradient"]) == key and r.get("peak_bytes")]
                fig.add_scatter(name=f"{key[0]} / {key[1]}", x=[r[axis] for r in mine],
                                y=[r["peak_bytes"] / 2**20 for r in mine], mode="lines+markers")
            fig.update_layout(title=f"Peak memory per step vs {sweep}", xaxis_title=sweep, yaxis_title="MiB (log)",
                              yaxis_type="log", xaxis_type="log" if sweep == "batch" else "linear")
            figs.append(fig)
    elif suite == "baseline":
        fig = go.Figure()
        fig.add_bar(name="test accuracy", x=[r["model"] for r in rows], y=[r["test_accuracy"] for r in rows])
        fig.add_bar(name="train accuracy", x=[r["model"] for r in rows], y=[r["train_accuracy"] for r in rows])
        fig.update_layout(title="Accuracy: hybrid vs matched classical", yaxis_title="accuracy", barmode="group")
        figs.append(fig)
        fig = go.Figure()
        fig.add_bar(x=[r["model"] for r in rows], y=[r["ms_per_step"] for r in rows])
        fig.update_layout(title="Time per training step", yaxis_title="ms")
        figs.append(fig)
    return figs


def _html_table(headers: list[str], rows: Iterable[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f3f3f3; }
td:nth-child(n+2) { font-variant-numeric: tabular-nums; }
.no { color: #b00; font-weight: 600; }
pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
"""


def write_html(results: dict | list[dict], path: str | Path) -> Path:
    """One self-contained page (plotly.js inlined: opens offline) for one or several suite results."""
    results = [results] if isinstance(results, dict) else list(results)
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>workbench benchmarks</title>",
             f"<style>{_STYLE}</style></head><body><h1>Hybrid Quantum Workbench benchmarks</h1>"]
    first = True
    for result in results:
        parts.append(f"<h2>{html.escape(result['suite'])}</h2>")
        machine = result.get("machine", {})
        parts.append(f"<p>{html.escape(result.get('created', ''))} · {html.escape(str(machine.get('cpu', '')))} · "
                     f"{machine.get('cores')} cores · torch {html.escape(str(machine.get('torch')))} · cudaq "
                     f"{html.escape(str(machine.get('cudaq')))} · load {machine.get('load_average')}</p>")
        for note in result.get("notes", []):
            parts.append(f"<p><b>{html.escape(note)}</b></p>")
        checks = check_rows(result)
        if checks:
            parts.append("<h3>Targets</h3>")
            parts.append(_html_table(["check", "where", "value", "target", "met"], checks))
        for fig in _figures(result):
            parts.append(fig.to_html(include_plotlyjs=True if first else False, full_html=False))
            first = False
        headers, rows = table_rows(result)
        parts.append("<h3>Measurements</h3>")
        parts.append(_html_table(headers, rows))
        for title, headers_, rows_ in extra_tables(result):
            parts.append(f"<h3>{html.escape(title)}</h3>")
            parts.append(_html_table(headers_, rows_))
        parts.append("<details><summary>configuration and machine</summary><pre>"
                     + html.escape(json.dumps({"config": result.get("config"), "machine": machine}, indent=1,
                                              default=str))
                     + "</pre></details>")
    parts.append("</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path
