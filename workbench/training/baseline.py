"""The matched classical baseline: the same network with each quantum block replaced by dense layers
with at least as many trainable parameters, so hybrid and classical compare on equal footing."""

from __future__ import annotations

import math

from .. import spec as S


def quantum_parameter_count(block: S.Quantum) -> int:
    return 0 if block.role == "parameter_input" else S.ansatz_weight_count(block)


def matched_classical_spec(spec: S.ArchitectureSpec) -> S.ArchitectureSpec:
    """A classical spec with each quantum block swapped for Linear(+tanh) layers of ≥ its parameter count."""
    if spec.task == "energy":
        raise S.SpecError("an energy (VQE) network has no classical counterpart: its output is a quantum energy",
                          None, "task")
    shapes = spec.shapes()
    blocks: list[dict] = []
    for block, (in_shape, out_shape) in zip(spec.blocks, shapes):
        if not isinstance(block, S.Quantum):
            blocks.append(block.model_dump(mode="json"))
            continue
        n_in, n_out = in_shape[0], out_shape[0]
        budget = quantum_parameter_count(block)
        direct = n_in * n_out + n_out
        last = block.role == "output"
        if direct >= budget:
            blocks.append({"type": "linear", "id": f"{block.id}_dense", "out_features": n_out})
        else:
            # One hidden layer of width h: (n_in + 1) h + (h + 1) n_out ≥ budget.
            hidden = max(1, math.ceil((budget - n_out) / (n_in + 1 + n_out)))
            blocks += [{"type": "linear", "id": f"{block.id}_hidden", "out_features": hidden},
                       {"type": "activation", "id": f"{block.id}_hidden_act", "fn": "tanh"},
                       {"type": "linear", "id": f"{block.id}_dense", "out_features": n_out}]
        if not last:
            # Quantum expectations lie in [-1, 1]; tanh keeps the replacement's range the same.
            blocks.append({"type": "activation", "id": f"{block.id}_act", "fn": "tanh"})
    data = spec.to_dict()
    data.update(name=f"{spec.name}-classical", blocks=blocks,
                description=f"Matched classical baseline of {spec.name}: quantum blocks replaced by dense layers.")
    return S.load_spec(data)
