"""GUI state, free of any widget: the builder (spec dict + undo/redo history, selection, validation) and the
palette of blocks. The run setup lives in `run_setup.py`.

These classes hold no model logic. Validation, shapes, gradient choice and target availability all
come from the engine (workbench.spec, workbench.engine); the state only records
what the user did and what the engine said about it, so a browser session, a notebook and a test
drive exactly the same code.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import param

from .. import templates
from ..spec import BLOCK_TYPES, ArchitectureSpec, SpecError, infer_shapes, load_spec

if TYPE_CHECKING:
    from .run_setup import RunSetup

HISTORY_LIMIT = 200
INPUT = -1  # selection index of the input node

# ---------------------------------------------------------------------------------------------
# The palette: what can be dragged onto the canvas.


@dataclass(frozen=True)
class PaletteItem:
    key: str
    label: str
    group: str  # classical | quantum | readout
    hint: str
    block: dict


def _quantum(**fields: Any) -> dict:
    return {"type": "quantum", "role": "intermediate", "qubits": 4, "encoding": "angle", "rotation": "ry",
            "ansatz": "hardware_efficient", "depth": 2, "entanglement": "ring", **fields}


PALETTE: tuple[PaletteItem, ...] = (
    PaletteItem("linear", "Linear", "classical", "Dense layer: set the number of output features",
                {"type": "linear", "out_features": 4}),
    PaletteItem("relu", "ReLU", "classical", "Rectified linear activation", {"type": "activation", "fn": "relu"}),
    PaletteItem("tanh", "Tanh", "classical", "Hyperbolic tangent activation", {"type": "activation", "fn": "tanh"}),
    PaletteItem("scaled_tanh", "Scaled tanh → angles", "classical",
                "scale·tanh(x): maps features to rotation angles before a quantum layer",
                {"type": "activation", "fn": "scaled_tanh", "scale": math.pi}),
    PaletteItem("dropout", "Dropout", "classical", "Randomly zeroes features while training",
                {"type": "dropout", "p": 0.1}),
    PaletteItem("batchnorm", "BatchNorm", "classical", "Normalises each feature over the batch",
                {"type": "batchnorm"}),
    PaletteItem("conv2d", "Conv2d", "classical", "2-D convolution over (channels, height, width)",
                {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "stride": 1, "padding": 0}),
    PaletteItem("pool", "Pool", "classical", "Max or average pooling", {"type": "pool", "mode": "max", "kernel_size": 2}),
    PaletteItem("flatten", "Flatten", "classical", "Images → a flat feature vector", {"type": "flatten"}),
    PaletteItem("reshape", "Reshape", "classical", "Features → a new shape (same number of values)",
                {"type": "reshape", "shape": [4]}),
    PaletteItem("q_angle", "Angle · hardware-efficient", "quantum",
                "One feature per qubit as a rotation angle; RY/RZ layers with a CNOT ring", _quantum()),
    PaletteItem("q_reupload", "Re-uploading · hardware-efficient", "quantum",
                "Features encoded again before every layer (more expressive)", _quantum(encoding="reupload", depth=3)),
    PaletteItem("q_dense", "Dense angle · hardware-efficient", "quantum",
                "Two features per qubit (RY and RZ)", _quantum(encoding="dense_angle")),
    PaletteItem("q_amplitude", "Amplitude · hardware-efficient", "quantum",
                "Up to 2ⁿ features as the amplitudes of the state", _quantum(encoding="amplitude", qubits=3)),
    PaletteItem("q_iqp", "IQP · hardware-efficient", "quantum",
                "Hadamards, RZ(x) and ZZ(x·x) feature map", _quantum(encoding="iqp", qubits=3)),
    PaletteItem("q_strong", "Angle · strongly entangling", "quantum",
                "RZ·RY·RZ per qubit, CNOTs of growing reach", _quantum(ansatz="strongly_entangling")),
    PaletteItem("q_basic", "Angle · basic entangler", "quantum",
                "One RX per qubit and a CNOT ring per layer", _quantum(ansatz="basic_entangler")),
    PaletteItem("q_param", "Parameter input (VQE)", "quantum",
                "The incoming features are the circuit's angles (one per parameter)",
                _quantum(role="parameter_input", encoding="none", entanglement="linear")),
    PaletteItem("q_custom", "Custom gate list", "quantum", "Your own gates with weight/input/const angles",
                _quantum(qubits=2, ansatz="custom", encoding="none", gates=[
                    {"gate": "ry", "wires": [0], "source": "input", "index": 0},
                    {"gate": "ry", "wires": [1], "source": "input", "index": 1},
                    {"gate": "cx", "wires": [0, 1]},
                    {"gate": "ry", "wires": [0], "source": "weight", "index": 0},
                    {"gate": "ry", "wires": [1], "source": "weight", "index": 1}])),
    PaletteItem("r_expect", "⟨Z⟩ per qubit (output)", "readout",
                "Quantum output layer: one ⟨Zᵢ⟩ score per qubit",
                _quantum(role="output", readout={"mode": "estimator"})),
    PaletteItem("r_logit", "Single logit ⟨Z₀⟩ (output)", "readout",
                "Binary classifier: ⟨Z⟩ of qubit 0 is the logit",
                _quantum(role="output", readout={"mode": "estimator", "observables": ["ZIII"]})),
    PaletteItem("r_sampler", "Bitstring probabilities (output)", "readout",
                "Sampler: probabilities of the measured bitstrings of qubits 0 and 1",
                _quantum(role="output", readout={"mode": "sampler", "marginal": [0, 1]})),
    PaletteItem("r_energy", "Energy ⟨H⟩ (output)", "readout",
                "Estimator of a weighted Pauli sum: one value, the energy",
                _quantum(role="output", readout={"mode": "estimator", "hamiltonian": [
                    {"coeff": 1.0, "pauli": "ZZII"}, {"coeff": 1.0, "pauli": "IZZI"}, {"coeff": 1.0, "pauli": "IIZZ"},
                    {"coeff": 0.5, "pauli": "XIII"}]})),
)
PALETTE_BY_KEY = {item.key: item for item in PALETTE}

ID_PREFIX = {"linear": "fc", "conv2d": "conv", "pool": "pool", "flatten": "flat", "reshape": "reshape",
             "activation": "act", "dropout": "drop", "batchnorm": "bn", "quantum": "q"}


def palette_payload() -> list[dict]:
    """The palette as plain dicts for the front-end component."""
    return [{"key": p.key, "label": p.label, "group": p.group, "hint": p.hint} for p in PALETTE]


def unique_id(blocks: list[dict], block_type: str, prefix: str | None = None) -> str:
    taken = {b.get("id") for b in blocks}
    prefix = prefix or ID_PREFIX.get(block_type, block_type)
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def _fit_readout(block: dict) -> dict:
    """Keep a palette readout's Pauli strings as long as the block's qubit count."""
    n = block.get("qubits", 4)
    readout = block.get("readout") or {}
    if readout.get("observables"):
        readout["observables"] = [p[:n].ljust(n, "I") for p in readout["observables"]]
    if readout.get("hamiltonian"):
        readout["hamiltonian"] = [{**t, "pauli": t["pauli"][:n].ljust(n, "I")} for t in readout["hamiltonian"]]
    if readout.get("marginal"):
        readout["marginal"] = [q for q in readout["marginal"] if q < n] or [0]
    return block


# ---------------------------------------------------------------------------------------------
# Block summaries for the canvas cards.


def block_summary(block: dict) -> str:
    t = block.get("type")
    if t == "linear":
        return f"→ {block.get('out_features', '?')} features" + ("" if block.get("bias", True) else ", no bias")
    if t == "conv2d":
        return (f"{block.get('out_channels', '?')} ch · k{block.get('kernel_size', 3)} s{block.get('stride', 1)} "
                f"p{block.get('padding', 0)}")
    if t == "pool":
        k = block.get("kernel_size", 2)
        return f"{block.get('mode', 'max')} {k}×{k}"
    if t == "reshape":
        return "→ (" + ", ".join(map(str, block.get("shape", []))) + ")"
    if t == "activation":
        fn = block.get("fn", "relu")
        return _scaled_tanh_label(block.get("scale", math.pi)) if fn == "scaled_tanh" else fn
    if t == "dropout":
        return f"p = {block.get('p', 0.1)}"
    if t == "quantum":
        ansatz = {"hardware_efficient": "HEA", "strongly_entangling": "strongly ent.", "basic_entangler": "basic ent.",
                  "custom": "custom"}.get(block.get("ansatz", "hardware_efficient"), block.get("ansatz"))
        parts = [f"{block.get('qubits', 4)} qubits", block.get("encoding", "angle").replace("_", " "),
                 ansatz if block.get("ansatz") == "custom" else f"{ansatz} ×{block.get('depth', 2)}"]
        readout = block.get("readout") or {}
        if readout.get("mode") == "sampler":
            parts.append("P(bitstrings)")
        elif readout.get("hamiltonian"):
            parts.append("⟨H⟩")
        elif readout.get("observables"):
            obs = readout["observables"]
            parts.append("⟨" + ", ".join(obs[:3]) + (", …" if len(obs) > 3 else "") + "⟩")
        else:
            parts.append("⟨Z⟩ each")
        return " · ".join(parts)
    return ""


def _scaled_tanh_label(scale: float) -> str:
    """π·tanh, π/2·tanh, 2π·tanh or 1.5·tanh: multiples of π as people write them."""
    ratio = scale / math.pi
    for text, value in (("π", 1.0), ("π/2", 0.5), ("π/4", 0.25), ("2π", 2.0)):
        if math.isclose(ratio, value, rel_tol=1e-9):
            return f"{text}·tanh"
    return f"{scale:.3g}·tanh"


def block_group(block: dict) -> str:
    if block.get("type") != "quantum":
        return "classical"
    role = block.get("role", "intermediate")
    return {"output": "readout", "parameter_input": "param"}.get(role, "quantum")


def shape_text(shape) -> str:
    if shape is None:
        return "?"
    shape = tuple(shape)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


# ---------------------------------------------------------------------------------------------
# Validation


EMPTY_MESSAGE = "The network is empty: drag blocks from the palette onto the canvas, or open a template."


def validate_spec(spec: dict) -> tuple[dict | None, list[list | None]]:
    """(error or None, per-block [in_shape, out_shape] or None where unknown), from the engine's checks."""
    blocks = spec.get("blocks") or []
    if not blocks:
        return {"message": EMPTY_MESSAGE, "block": None, "field": "blocks"}, []
    try:
        checked = load_spec(copy.deepcopy(spec))
        return None, [[list(i), list(o)] for i, o in checked.shapes()]
    except SpecError as err:
        error = {"message": str(err), "block": err.block, "field": err.field}
    index = error_block_index(blocks, error)
    shapes: list[list | None] = [None] * len(blocks)
    # Shapes up to the offending block are still known: infer them on the valid prefix.
    if index is not None and index > 0:
        prefix = {**spec, "task": "classification", "blocks": blocks[:index]}
        try:
            partial = infer_shapes(ArchitectureSpec.model_validate(prefix))
            for i, (a, b) in enumerate(partial):
                shapes[i] = [list(a), list(b)]
            shapes[index] = [list(partial[-1][1]), None]
        except Exception:  # the prefix has its own problem: leave the shapes unknown
            pass
    elif index == 0:
        shapes[0] = [list(spec.get("input_shape") or []), None]
    return error, shapes


def error_block_index(blocks: list[dict], error: dict | None) -> int | None:
    """Index of the block an error belongs to (for a duplicated id: the second use)."""
    if not error or error.get("block") is None:
        return None
    if error.get("field") == "id":
        matches = [i for i, b in enumerate(blocks) if b.get("id") == error["block"]]
        if len(matches) > 1:
            return matches[1]
    return block_index(blocks, error["block"])


def block_index(blocks: list[dict], block_id: str | None) -> int | None:
    if block_id is None:
        return None
    for i, b in enumerate(blocks):
        if b.get("id") == block_id:
            return i
    if block_id.startswith("#") and block_id[1:].isdigit():  # pydantic errors on blocks without an id
        return int(block_id[1:])
    return None


# ---------------------------------------------------------------------------------------------
# Nested dict paths (form fields such as "readout.mode")


def get_path(data: dict, path: str, default: Any = None) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_path(data: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


# ---------------------------------------------------------------------------------------------
# The builder


def empty_spec(input_shape: list[int] | None = None, task: str = "classification") -> dict:
    return {"version": 1, "name": "untitled", "description": "", "task": task,
            "input_shape": list(input_shape or [2]), "blocks": []}


class BuilderState(param.Parameterized):
    """The network on the canvas, its undo/redo history, the selected block and the engine's verdict."""

    spec = param.Dict(default=None, doc="The current spec as a JSON-ready dict (may be invalid).")
    selected = param.Integer(default=None, allow_None=True, doc="Index of the selected block; -1 is the input node.")
    error = param.Dict(default=None, allow_None=True, doc="{message, block, field} from SpecError, or None.")
    shapes = param.List(default=[], doc="Per block [in_shape, out_shape]; None where unknown.")
    can_undo = param.Boolean(default=False)
    can_redo = param.Boolean(default=False)
    revision = param.Integer(default=0, doc="Increments on every change (form sync, URL updates).")
    last_action = param.String(default="")

    def __init__(self, spec: dict | None = None, **params):
        super().__init__(**params)
        self._history: list[tuple[dict, int | None, int | None]] = []
        self._position = -1
        self._commit(copy.deepcopy(spec) if spec is not None else empty_spec(), None, "new")

    # -- derived ---------------------------------------------------------------------------------
    @property
    def valid(self) -> bool:
        return self.error is None

    @property
    def blocks(self) -> list[dict]:
        return self.spec.get("blocks", [])

    @property
    def selected_block(self) -> dict | None:
        if self.selected is None or self.selected < 0 or self.selected >= len(self.blocks):
            return None
        return self.blocks[self.selected]

    @property
    def error_index(self) -> int | None:
        return error_block_index(self.blocks, self.error)

    def spec_object(self) -> ArchitectureSpec:
        """The validated spec (raises SpecError while invalid)."""
        return load_spec(copy.deepcopy(self.spec))

    # -- history ---------------------------------------------------------------------------------
    def _commit(self, spec: dict, selected: int | None, action: str, undo_select: Any = "same") -> None:
        """Record a new state. `undo_select`: the selection to restore when this action is undone
        (default: the selection it was made with)."""
        del self._history[self._position + 1:]
        before = self.selected if undo_select == "same" else undo_select
        self._history.append((copy.deepcopy(spec), selected, before))
        if len(self._history) > HISTORY_LIMIT:
            del self._history[0]
        self._position = len(self._history) - 1
        self._apply(spec, selected, action)

    def _apply(self, spec: dict, selected: int | None, action: str) -> None:
        error, shapes = validate_spec(spec)
        n = len(spec.get("blocks", []))
        if selected is not None and selected >= n:
            selected = n - 1 if n else None
        with param.parameterized.batch_call_watchers(self):
            self.spec = spec
            self.error = error
            self.shapes = shapes
            self.selected = selected
            self.can_undo = self._position > 0
            self.can_redo = self._position < len(self._history) - 1
            self.last_action = action
            self.revision += 1

    def undo(self) -> bool:
        if self._position <= 0:
            return False
        _, _, select = self._history[self._position]
        self._position -= 1
        spec = self._history[self._position][0]
        self._apply(copy.deepcopy(spec), select, "undo")
        return True

    def redo(self) -> bool:
        if self._position >= len(self._history) - 1:
            return False
        self._position += 1
        spec, selected, _ = self._history[self._position]
        self._apply(copy.deepcopy(spec), selected, "redo")
        return True

    # -- edits -----------------------------------------------------------------------------------
    def _edited(self) -> dict:
        return copy.deepcopy(self.spec)

    def add(self, key: str, index: int | None = None) -> dict:
        """Insert a palette block at `index` (default: the end); returns the new block."""
        if key not in PALETTE_BY_KEY:
            raise KeyError(f"unknown palette block {key!r}")
        spec = self._edited()
        blocks = spec.setdefault("blocks", [])
        block = copy.deepcopy(PALETTE_BY_KEY[key].block)
        block = {"id": unique_id(blocks, block["type"]), **block}
        if block["type"] == "quantum":
            _fit_readout(block)
        if index is None:
            index = _append_position(blocks, block)
        index = max(0, min(int(index), len(blocks)))
        blocks.insert(index, block)
        self._commit(spec, index, f"add {block['id']}", undo_select=None)
        return block

    def apply_readout(self, index: int, key: str) -> None:
        """Give quantum block `index` the readout of palette item `key` and make it the output layer."""
        item = PALETTE_BY_KEY[key]
        spec = self._edited()
        block = spec["blocks"][index]
        if block.get("type") != "quantum":
            raise ValueError(f"block {block.get('id')} is not a quantum block: a readout belongs to a quantum block")
        block["readout"] = copy.deepcopy(item.block["readout"])
        block["role"] = "output"
        _fit_readout(block)
        self._commit(spec, index, f"readout {block['id']}", undo_select=index)

    def move(self, source: int, target: int) -> None:
        """Move block `source` so that it lands before the block now at `target` (len = the end)."""
        spec = self._edited()
        blocks = spec["blocks"]
        if not 0 <= source < len(blocks):
            return
        target = max(0, min(int(target), len(blocks)))
        block = blocks.pop(source)
        if target > source:
            target -= 1
        if target == source:
            return
        blocks.insert(target, block)
        self._commit(spec, target, f"move {block.get('id')}", undo_select=source)

    def duplicate(self, index: int) -> None:
        spec = self._edited()
        blocks = spec["blocks"]
        if not 0 <= index < len(blocks):
            return
        clone = copy.deepcopy(blocks[index])
        clone["id"] = unique_id(blocks, clone.get("type", "block"), prefix=_id_stem(clone.get("id", "block")))
        blocks.insert(index + 1, clone)
        self._commit(spec, index + 1, f"duplicate {blocks[index].get('id')}", undo_select=index)

    def delete(self, index: int) -> None:
        spec = self._edited()
        blocks = spec["blocks"]
        if not 0 <= index < len(blocks):
            return
        removed = blocks.pop(index)
        selected = min(index, len(blocks) - 1) if blocks else None
        self._commit(spec, selected, f"delete {removed.get('id')}", undo_select=index)

    def clear(self) -> None:
        spec = self._edited()
        spec["blocks"] = []
        spec["name"] = "untitled"
        spec["description"] = ""
        self._commit(spec, INPUT, "clear")

    def select(self, index: int | None) -> None:
        if index is not None and not (index == INPUT or 0 <= index < len(self.blocks)):
            return
        self.selected = index

    def set_field(self, index: int, path: str, value: Any) -> None:
        """Set a (dotted) field of block `index`; None removes an optional field."""
        spec = self._edited()
        block = spec["blocks"][index]
        if get_path(block, path) == value:
            return
        set_path(block, path, value)
        if path == "readout.mode" and value == "sampler":
            # A sampler takes no observables: drop them so the switch alone is a valid edit.
            for key in ("observables", "hamiltonian"):
                block.get("readout", {}).pop(key, None)
        self._commit(spec, index, f"edit {block.get('id')}.{path}", undo_select=index)

    def set_spec_field(self, name: str, value: Any) -> None:
        """Set a top-level field: name, description, task or input_shape."""
        if name not in ("name", "description", "task", "input_shape"):
            raise KeyError(name)
        if self.spec.get(name) == value:
            return
        spec = self._edited()
        spec[name] = value
        self._commit(spec, self.selected, f"edit {name}")

    def load(self, spec: dict | ArchitectureSpec, action: str = "load") -> None:
        """Replace the whole network (templates, uploads, shared links); undo brings the old one back."""
        if isinstance(spec, ArchitectureSpec):
            spec = spec.to_dict()
        if not isinstance(spec, dict) or not isinstance(spec.get("blocks", []), list):
            raise SpecError("a spec must be a JSON object with 'input_shape' and a list of 'blocks'")
        spec = copy.deepcopy(spec)
        spec.setdefault("version", 1)
        spec.setdefault("blocks", [])
        self._commit(spec, None, action)

    def load_template(self, name: str) -> None:
        self.load(templates.get(name).to_dict(), action=f"template {name}")

    # -- the front-end's messages ----------------------------------------------------------------
    def dispatch(self, message: dict) -> None:
        """Apply one action sent by the canvas component: {action, ...}."""
        action = message.get("action")
        if action == "add":
            self.add(message["key"], message.get("index"))
        elif action == "apply_readout":
            self.apply_readout(int(message["index"]), message["key"])
        elif action == "move":
            self.move(int(message["from"]), int(message["to"]))
        elif action == "duplicate":
            self.duplicate(int(message["index"]))
        elif action == "delete":
            self.delete(int(message["index"]))
        elif action == "select":
            self.select(int(message["index"]))
        elif action == "undo":
            self.undo()
        elif action == "redo":
            self.redo()
        else:
            raise ValueError(f"unknown builder action {action!r}")

    def canvas_payload(self) -> dict:
        """What the canvas draws: blocks with summaries, shapes and the error on the offending block."""
        error_index = self.error_index
        blocks = []
        for i, block in enumerate(self.blocks):
            shapes = self.shapes[i] if i < len(self.shapes) else None
            blocks.append({
                "index": i, "id": str(block.get("id", f"#{i}")), "type": block.get("type", "?"),
                "summary": block_summary(block), "group": block_group(block),
                "in": shape_text(shapes[0]) if shapes and shapes[0] is not None else "?",
                "out": shape_text(shapes[1]) if shapes and shapes[1] is not None else "?",
                "error": self.error["message"] if (self.error and error_index == i) else "",
                "selected": self.selected == i,
            })
        input_error = self.error["message"] if (self.error and self.error.get("block") is None and
                                                self.error.get("field") != "blocks") else ""
        out = self.shapes[-1][1] if self.shapes and self.shapes[-1] and self.valid else None
        status = {"ok": self.valid,
                  "text": (f"Valid network · {len(self.blocks)} block{'s' * (len(self.blocks) != 1)} · output "
                           f"{shape_text(out)}") if self.valid else self.error["message"]}
        return {
            "blocks": blocks,
            "input_node": {"shape": shape_text(self.spec.get("input_shape")), "task": self.spec.get("task", ""),
                           "name": self.spec.get("name", ""), "error": input_error,
                           "selected": self.selected == INPUT},
            "output_node": {"shape": shape_text(out) if out else "?"},
            "status": status,
        }


def _is_output_layer(block: dict) -> bool:
    return block.get("type") == "quantum" and block.get("role") == "output"


def _append_position(blocks: list[dict], block: dict) -> int:
    """Where "add to the end" puts a block: before a trailing quantum output layer, which must stay last
    (only another output layer goes after it)."""
    if blocks and _is_output_layer(blocks[-1]) and not _is_output_layer(block):
        return len(blocks) - 1
    return len(blocks)


def _id_stem(block_id: str) -> str:
    stem = block_id.rstrip("0123456789").rstrip("_")
    return stem or block_id


def session_payload(builder: BuilderState, setup: RunSetup) -> dict:
    """Everything a shared link restores."""
    return {"v": 1, "spec": copy.deepcopy(builder.spec), "setup": setup.to_dict()}


def schema_types() -> list[str]:
    return list(BLOCK_TYPES)
