"""Plotly figures of the Quantum state tab, drawn from `workbench.inspect`'s answers: the clickable sample
picker, the entanglement entropy per qubit and stage, and the output probabilities (plain dict figures, like
`gui.charts`)."""

from __future__ import annotations

from .charts import PALETTE, base_layout


def sample_picker_figure(dataset, selected: int, height: int = 300, limit: int = 400) -> dict:
    """The training samples (first two features, or feature 1 against the index), clickable: each point
    carries its sample index as customdata; the chosen one is ringed."""
    X = dataset.X_train[:limit].reshape(min(limit, len(dataset.X_train)), -1)
    y = dataset.y_train[:limit]
    two = X.shape[1] >= 2
    xs = X[:, 0].tolist()
    ys = X[:, 1].tolist() if two else list(range(len(xs)))
    classes = y.tolist() if dataset.task == "classification" and y.dim() == 1 else [0] * len(xs)
    data = []
    for i, cls in enumerate(sorted(set(classes))):
        idx = [k for k, c in enumerate(classes) if c == cls]
        name = dataset.class_names[int(cls)] if dataset.class_names and dataset.task == "classification" else "samples"
        data.append({"type": "scatter", "mode": "markers", "name": f"class {name}", "x": [xs[k] for k in idx],
                     "y": [ys[k] for k in idx], "customdata": idx,
                     "marker": {"size": 7, "color": PALETTE[(1 - i) % len(PALETTE)] if i < 2 else PALETTE[i],
                                "line": {"width": 0.8, "color": "#ffffff"}},
                     "hovertemplate": "sample #%{customdata}<extra></extra>"})
    if 0 <= selected < len(xs):
        data.append({"type": "scatter", "mode": "markers", "name": f"sample #{selected}", "x": [xs[selected]],
                     "y": [ys[selected]], "customdata": [selected], "hoverinfo": "skip",
                     "marker": {"size": 16, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": "#7c3aed"}}})
    names = dataset.feature_names or [f"x{i + 1}" for i in range(X.shape[1])]
    layout = base_layout("Click a sample", height=height, hovermode="closest",
                         xaxis={"title": {"text": names[0]}},
                         yaxis={"title": {"text": names[1] if two else "sample #"}})
    return {"data": data, "layout": layout}


def entropy_figure(view: dict, height: int = 260) -> dict:
    """Entanglement entropy (bits) of every qubit after each stage."""
    stages = view["stages"]
    data = [{"type": "bar", "name": f"q{q}", "x": [s["name"] for s in stages], "y": [s["entropy"][q] for s in stages],
             "marker": {"color": PALETTE[q % len(PALETTE)]}} for q in range(view["qubits"])]
    # Short titles: the two charts share half a card, and a longer title ran past the chart's edge.
    layout = base_layout("Entanglement entropy", height=height, hovermode="closest",
                         barmode="group", yaxis={"range": [0, 1.05], "title": {"text": "bits"}})
    return {"data": data, "layout": layout}


def probability_figure(view: dict, height: int = 260, limit: int = 64) -> dict:
    """Probabilities of the measured bitstrings (q_{n-1}…q_0) of the final state (the largest `limit`)."""
    pairs = sorted(zip(view["labels"], view["probabilities"]), key=lambda p: -p[1])[:limit]
    pairs.sort()
    data = [{"type": "bar", "x": [p[0] for p in pairs], "y": [p[1] for p in pairs],
             "marker": {"color": PALETTE[3]}, "hovertemplate": "|%{x}⟩: %{y:.3f}<extra></extra>"}]
    layout = base_layout("Output probabilities", height=height, hovermode="closest", showlegend=False,
                         xaxis={"type": "category", "tickangle": -90, "tickfont": {"size": 10},
                                "title": {"text": "bitstring (q₀ rightmost)", "standoff": 4}},
                         yaxis={"range": [0, 1]})
    layout["margin"] = {**layout["margin"], "b": 84}
    return {"data": data, "layout": layout}
