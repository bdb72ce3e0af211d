"""An SVG drawing of a quantum block's circuit, from the gate list of workbench.engine.circuits.build_circuit.

Wires are horizontal lines; each gate is placed in the first column free on every wire it spans.
Rotation boxes show where their angle comes from: an input feature x_i (blue), a trainable weight
θ_i (orange) or a constant (grey). CNOTs are a control dot and a ⊕ target, CZ two dots, SWAP two ×.
"""

from __future__ import annotations

import html
import math

from ..engine.circuits import Circuit, Gate, ReadoutPlan, build_circuit, readout_plan
from ..engine.plan import human_bytes  # noqa: F401  (app.py reads human_bytes here)
from ..engine.plan import ExecutionConfig, resolve, with_noise_engine
from ..spec import Quantum, ansatz_weight_count, encoding_features

COL_W = 54
ROW_H = 50
LEFT = 52
TOP = 34
BOX_W = 42
BOX_H = 36
COLORS = {
    "input": ("#dbeafe", "#2563eb"),
    "input_product": ("#dbeafe", "#2563eb"),
    "weight": ("#ffedd5", "#ea580c"),
    "const": ("#f1f5f9", "#64748b"),
    "fixed": ("#ede9fe", "#7c3aed"),
}
SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _sub(i: int) -> str:
    return str(i).translate(SUBSCRIPT)


def param_label(gate: Gate) -> str:
    p = gate.param
    if p is None:
        return ""
    if p.kind == "const":
        value = p.scale * p.value
        return f"{value / math.pi:.3g}π" if abs(value) > 1e-9 and abs(value / math.pi - round(value / math.pi, 3)) < 1e-9 \
            else f"{value:.3g}"
    source = {"input": f"x{_sub(p.index)}", "input_product": f"x{_sub(p.index)}x{_sub(p.index2)}",
              "weight": f"θ{_sub(p.index)}"}[p.kind]
    if p.scale != 1.0:
        scale = p.scale / math.pi
        prefix = (f"{scale:.3g}π" if abs(scale - round(scale, 3)) < 1e-9 and scale != 0 else f"{p.scale:.3g}")
        prefix = "π" if prefix == "1π" else prefix
        source = f"{prefix}·{source}"
    return source


def layout(circuit: Circuit) -> tuple[list[int], int]:
    """Column of every gate and the number of columns (gates pack left as far as their wires allow)."""
    free = [0] * circuit.n_qubits
    start = 1 if circuit.amplitude_inputs else 0
    free = [start] * circuit.n_qubits
    columns = []
    for gate in circuit.gates:
        wires = range(min(gate.wires), max(gate.wires) + 1) if len(gate.wires) > 1 else gate.wires
        col = max(free[w] for w in wires)
        for w in wires:
            free[w] = col + 1
        columns.append(col)
    return columns, max(free, default=start)


def readout_label(plan: ReadoutPlan) -> str:
    if plan.mode == "sampler":
        return "P(" + ",".join(f"q{q}" for q in plan.marginal) + ")"
    if plan.coefficients is not None:
        return "⟨H⟩"
    return "⟨" + ", ".join(plan.paulis[:4]) + (", …" if len(plan.paulis) > 4 else "") + "⟩"


def circuit_svg(circuit: Circuit, plan: ReadoutPlan | None = None, max_gates: int = 600, fit: bool = False) -> str:
    """The circuit as a standalone <svg> string; fit=True lets it shrink to its container (down to 820 px)."""
    gates = circuit.gates[:max_gates]
    shown = Circuit(circuit.n_qubits, gates, circuit.n_inputs, circuit.n_weights, circuit.amplitude_inputs)
    columns, n_cols = layout(shown)
    n = circuit.n_qubits
    readout_cols = 1 if plan is not None else 0
    width = LEFT + (n_cols + readout_cols) * COL_W + 30
    height = TOP + n * ROW_H + 44
    y = [TOP + q * ROW_H + ROW_H / 2 for q in range(n)]
    x = [LEFT + c * COL_W + COL_W / 2 for c in range(n_cols + readout_cols)]
    style = f' style="max-width:100%;height:auto;min-width:{min(width, 820)}px"' if fit else ""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="wb-circuit" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif"{style}>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    wire_end = LEFT + (n_cols + readout_cols) * COL_W + 10
    for q in range(n):
        out.append(f'<text x="{LEFT - 12}" y="{y[q] + 4}" font-size="13" text-anchor="end" fill="#334155">'
                   f'q{_sub(q)}</text>')
        out.append(f'<line x1="{LEFT - 6}" y1="{y[q]}" x2="{wire_end}" y2="{y[q]}" stroke="#94a3b8" stroke-width="1.2"/>')
    if circuit.amplitude_inputs:
        top, bottom = y[0] - BOX_H / 2, y[-1] + BOX_H / 2
        out.append(f'<rect class="wb-gate" data-gate="amplitude" x="{x[0] - BOX_W / 2}" y="{top}" width="{BOX_W}" '
                   f'height="{bottom - top}" rx="5" fill="#dbeafe" stroke="#2563eb" stroke-width="1.4"/>')
        out.append(f'<text x="{x[0]}" y="{(top + bottom) / 2 - 2}" font-size="11" font-weight="600" '
                   f'text-anchor="middle" fill="#1e3a8a">|x⟩</text>')
        out.append(f'<text x="{x[0]}" y="{(top + bottom) / 2 + 12}" font-size="9" text-anchor="middle" '
                   f'fill="#1e3a8a">amp·{circuit.amplitude_inputs}</text>')
    for gate, col in zip(gates, columns):
        cx = x[col]
        if gate.name in ("cx", "cz", "swap"):
            a, b = gate.wires
            out.append(f'<line x1="{cx}" y1="{y[a]}" x2="{cx}" y2="{y[b]}" stroke="#334155" stroke-width="1.6"/>')
            if gate.name == "cx":
                out.append(f'<circle class="wb-gate" data-gate="cx-control" cx="{cx}" cy="{y[a]}" r="4.5" '
                           'fill="#334155"/>')
                out.append(f'<circle class="wb-gate" data-gate="cx-target" cx="{cx}" cy="{y[b]}" r="11" fill="#ffffff" '
                           'stroke="#334155" stroke-width="1.6"/>')
                out.append(f'<line x1="{cx - 11}" y1="{y[b]}" x2="{cx + 11}" y2="{y[b]}" stroke="#334155" '
                           'stroke-width="1.6"/>')
                out.append(f'<line x1="{cx}" y1="{y[b] - 11}" x2="{cx}" y2="{y[b] + 11}" stroke="#334155" '
                           'stroke-width="1.6"/>')
            elif gate.name == "cz":
                for w in (a, b):
                    out.append(f'<circle class="wb-gate" data-gate="cz" cx="{cx}" cy="{y[w]}" r="4.5" fill="#334155"/>')
            else:
                for w in (a, b):
                    out.append(f'<g class="wb-gate" data-gate="swap" stroke="#334155" stroke-width="1.8">'
                               f'<line x1="{cx - 7}" y1="{y[w] - 7}" x2="{cx + 7}" y2="{y[w] + 7}"/>'
                               f'<line x1="{cx - 7}" y1="{y[w] + 7}" x2="{cx + 7}" y2="{y[w] - 7}"/></g>')
            continue
        q = gate.wires[0]
        kind = gate.param.kind if gate.param is not None else "fixed"
        fill, stroke = COLORS[kind]
        label = param_label(gate)
        out.append(f'<rect class="wb-gate" data-gate="{gate.name}" data-source="{kind}" x="{cx - BOX_W / 2}" '
                   f'y="{y[q] - BOX_H / 2}" width="{BOX_W}" height="{BOX_H}" rx="5" fill="{fill}" stroke="{stroke}" '
                   'stroke-width="1.4"/>')
        name_y = y[q] - (3 if label else -4)
        out.append(f'<text x="{cx}" y="{name_y}" font-size="12" font-weight="600" text-anchor="middle" '
                   f'fill="#0f172a">{html.escape(gate.name.upper())}</text>')
        if label:
            size = 10 if len(label) <= 6 else 8
            out.append(f'<text x="{cx}" y="{y[q] + 12}" font-size="{size}" text-anchor="middle" fill="{stroke}">'
                       f'{html.escape(label)}</text>')
    if plan is not None:
        cx = x[-1]
        top, bottom = y[0] - BOX_H / 2, y[-1] + BOX_H / 2
        out.append(f'<rect class="wb-readout" x="{cx - BOX_W / 2}" y="{top}" width="{BOX_W}" height="{bottom - top}" '
                   'rx="6" fill="#ccfbf1" stroke="#0d9488" stroke-width="1.4"/>')
        meter_y = (top + bottom) / 2
        out.append(f'<path d="M{cx - 12} {meter_y + 6} A 12 12 0 0 1 {cx + 12} {meter_y + 6}" fill="none" '
                   'stroke="#0f766e" stroke-width="1.6"/>')
        out.append(f'<line x1="{cx}" y1="{meter_y + 6}" x2="{cx + 8}" y2="{meter_y - 6}" stroke="#0f766e" '
                   'stroke-width="1.6"/>')
        out.append(f'<text x="{cx}" y="{bottom + 14}" font-size="10" text-anchor="middle" fill="#0f766e">'
                   f'{html.escape(readout_label(plan))}</text>')
    legend_y = height - 12
    lx = LEFT
    for text, kind in (("input feature xᵢ", "input"), ("trainable θᵢ", "weight"), ("constant", "const"),
                       ("fixed gate", "fixed")):
        fill, stroke = COLORS[kind]
        out.append(f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" rx="2" fill="{fill}" stroke="{stroke}"/>')
        out.append(f'<text x="{lx + 17}" y="{legend_y}" font-size="11" fill="#475569">{text}</text>')
        lx += 20 + 7 * len(text) + 16
    if len(circuit.gates) > max_gates:
        out.append(f'<text x="{width - 10}" y="{legend_y}" font-size="11" text-anchor="end" fill="#b91c1c">'
                   f'first {max_gates} of {len(circuit.gates)} gates shown</text>')
    out.append("</svg>")
    return "".join(out)


def block_circuit(block: dict, n_features: int | None = None) -> tuple[Circuit, ReadoutPlan, Quantum]:
    """Build the circuit of a quantum block dict (n_features defaults to what its encoding consumes)."""
    quantum = Quantum.model_validate(block)
    if n_features is None:
        need = encoding_features(quantum)
        n_features = need if need is not None else 2**quantum.qubits
    return build_circuit(quantum, n_features), readout_plan(quantum), quantum


def circuit_stats(circuit: Circuit, quantum: Quantum, *, batch: int,
                  execution: ExecutionConfig | dict | None = None) -> dict:
    """Qubits, parameters, gate counts and the simulation memory estimate shown next to the drawing.

    The state size and the memory of a training batch are the execution plan's (`resolve(...)`), for the
    run setup's target, gradient, noise and precision (`execution`; the torch engine's defaults when None).
    """
    columns, depth = layout(circuit)
    plan = resolve(with_noise_engine(ExecutionConfig.from_any(execution)), quantum, circuit)
    weights = ansatz_weight_count(quantum)
    return {
        "qubits": circuit.n_qubits,
        "trainable": 0 if quantum.role == "parameter_input" else weights,
        "circuit_parameters": weights,
        "angles": len(circuit.rotation_gates),
        "input_angles": sum(1 for g in circuit.gates if g.param is not None and g.param.kind.startswith("input")),
        "gates": len(circuit.gates),
        "two_qubit": sum(1 for g in circuit.gates if len(g.wires) == 2),
        "depth": depth,
        "state_bytes": plan.state_bytes,
        "batch": batch,
        "batch_bytes": plan.memory_estimate(batch),
        "representation": "density matrix" if plan.density else "statevector",
    }
