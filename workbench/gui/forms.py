"""Settings forms generated from the spec's JSON schema (pydantic's model_json_schema via spec.block_schema).

`schema_fields` turns a block type's schema into flat field descriptions (nested objects such as the
quantum readout become dotted paths); `parse_text`/`format_value` convert between the text a user types
and the JSON value the spec stores. The Panel widgets are made in `build_widget`; everything above it
is plain Python, tested without a browser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from ..spec import block_schema

def get_value(data: dict, path: str) -> Any:
    """A dotted-path value of a (nested) dict, None when absent."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# Fields that only mean something for some settings of the block (hidden otherwise).
RELEVANT: dict[tuple[str, str], Callable[[dict], bool]] = {
    ("quantum", "rotation"): lambda b: b.get("encoding", "angle") in ("angle", "reupload"),
    ("quantum", "input_scaling"): lambda b: b.get("encoding", "angle") not in ("none", "amplitude"),
    ("quantum", "entanglement"): lambda b: b.get("ansatz", "hardware_efficient") == "hardware_efficient",
    ("quantum", "rotations"): lambda b: b.get("ansatz", "hardware_efficient") == "hardware_efficient",
    ("quantum", "depth"): lambda b: b.get("ansatz", "hardware_efficient") != "custom",
    ("quantum", "gates"): lambda b: b.get("ansatz") == "custom",
    ("quantum", "readout.observables"): lambda b: (b.get("readout") or {}).get("mode", "estimator") == "estimator",
    ("quantum", "readout.hamiltonian"): lambda b: (b.get("readout") or {}).get("mode", "estimator") == "estimator",
    ("quantum", "readout.marginal"): lambda b: (b.get("readout") or {}).get("mode") == "sampler",
    ("activation", "scale"): lambda b: b.get("fn") == "scaled_tanh",
}

LABELS = {"id": "Block id", "fn": "Function", "p": "Drop probability", "out_features": "Output features",
          "input_scaling": "Input scaling", "readout.mode": "Readout mode", "readout.observables": "Observables",
          "readout.hamiltonian": "Hamiltonian (JSON)", "readout.shots": "Shots (empty = exact)",
          "readout.marginal": "Measured qubits", "gates": "Gates (JSON)"}


@dataclass
class FieldSpec:
    path: str  # dotted path inside the block, e.g. "readout.mode"
    label: str
    kind: str  # enum | int | float | bool | str | enum_list | int_list | str_list | json | opt_int | opt_float
    options: list = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: float | None = None
    default: Any = None
    required: bool = False
    description: str = ""
    group: str = ""  # "" or the nested object's title, e.g. "Readout"


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return schema.get("$defs", {})[name]
    return node


def _kind(schema: dict, node: dict) -> tuple[str, dict]:
    """(kind, the node describing the value) for one property."""
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        inner = _resolve(schema, options[0]) if options else {}
        kind, inner = _kind(schema, inner)
        if kind in ("int", "float"):
            return "opt_" + kind, inner
        return kind, inner
    node = _resolve(schema, node)
    t = node.get("type")
    if "enum" in node:
        return "enum", node
    if t == "integer":
        return "int", node
    if t == "number":
        return "float", node
    if t == "boolean":
        return "bool", node
    if t == "string":
        return "str", node
    if t == "array":
        items = _resolve(schema, node.get("items", {}))
        if "enum" in items:
            return "enum_list", items
        if items.get("type") == "integer":
            return "int_list", items
        if items.get("type") == "string":
            return "str_list", items
        return "json", items
    if t == "object":
        return "object", node
    return "json", node


def schema_fields(block_type: str) -> list[FieldSpec]:
    """Editable fields of a block type, in schema order, nested objects flattened to dotted paths."""
    schema = block_schema(block_type)
    return _fields(schema, schema, "", "")


def _fields(schema: dict, node: dict, prefix: str, group: str) -> list[FieldSpec]:
    out = []
    required = set(node.get("required", []))
    for name, prop in node.get("properties", {}).items():
        if name == "type" and "const" in prop:
            continue
        path = f"{prefix}{name}"
        kind, inner = _kind(schema, prop)
        if kind == "object":
            title = inner.get("title", name.title())
            out.extend(_fields(schema, inner, f"{path}.", title))
            continue
        label = LABELS.get(path) or prop.get("title") or name.replace("_", " ").title()
        spec = FieldSpec(path=path, label=label, kind=kind, default=prop.get("default"), required=name in required,
                         description=prop.get("description", ""), group=group)
        if kind in ("enum", "enum_list"):
            spec.options = list(inner.get("enum", []))
        if kind in ("int", "float", "opt_int", "opt_float"):
            spec.minimum = inner.get("minimum")
            spec.maximum = inner.get("maximum")
            spec.exclusive_maximum = inner.get("exclusiveMaximum")
        out.append(spec)
    return out


def relevant(block: dict, spec: FieldSpec) -> bool:
    rule = RELEVANT.get((block.get("type", ""), spec.path))
    return True if rule is None else bool(rule(block))


def format_value(spec: FieldSpec, value: Any) -> Any:
    """The widget value for a stored value."""
    if spec.kind in ("int_list", "str_list"):
        return ", ".join(map(str, value)) if value else ""
    if spec.kind == "json":
        return json.dumps(value, indent=1) if value is not None else ""
    if spec.kind in ("opt_int", "opt_float"):
        return "" if value is None else str(value)
    if spec.kind == "enum_list":
        return list(value or [])
    return value


def parse_text(spec: FieldSpec, raw: Any) -> Any:
    """The stored value for what the user typed; raises ValueError with a message to show next to the field."""
    if spec.kind == "int_list":
        text = str(raw or "").strip().strip("[]()")
        if not text:
            if spec.required:
                raise ValueError(f"{spec.label}: enter numbers separated by commas, e.g. 1, 8, 8")
            return None
        try:
            return [int(part) for part in text.replace(" ", ",").split(",") if part.strip()]
        except ValueError:
            raise ValueError(f"{spec.label}: “{raw}” is not a list of whole numbers, e.g. 1, 8, 8") from None
    if spec.kind == "str_list":
        text = str(raw or "").strip().strip("[]")
        items = [part.strip().strip("'\"").upper() for part in text.replace(" ", ",").split(",") if part.strip()]
        return items or None
    if spec.kind == "json":
        text = str(raw or "").strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{spec.label}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") \
                from None
        if not isinstance(value, list):
            raise ValueError(f"{spec.label}: expected a JSON list, e.g. [{{\"gate\": \"h\", \"wires\": [0]}}]")
        return value
    if spec.kind in ("opt_int", "opt_float"):
        text = str(raw if raw is not None else "").strip()
        if not text:
            return None
        try:
            value = int(text) if spec.kind == "opt_int" else float(text)
        except ValueError:
            kind = "a whole number" if spec.kind == "opt_int" else "a number"
            raise ValueError(f"{spec.label}: “{raw}” is not {kind} (leave it empty for the default)") from None
        if spec.minimum is not None and value < spec.minimum:
            raise ValueError(f"{spec.label}: must be at least {spec.minimum:g}")
        return value
    if spec.kind == "str":
        text = str(raw or "").strip()
        if spec.required and not text:
            raise ValueError(f"{spec.label}: must not be empty")
        return text
    return raw


# ---------------------------------------------------------------------------------------------
# Dataset options: a form from dataset_options(name) defaults.


def dataset_option_kind(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    return "text"  # None, lists, strings: typed as JSON or plain text


def parse_option_text(text: str) -> Any:
    """'' -> None, JSON values as JSON (numbers, lists), anything else as a plain string (paths)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def format_option(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


# ---------------------------------------------------------------------------------------------
# Panel widgets


def build_widget(spec: FieldSpec, value: Any):
    """A Panel widget for one field, showing `value`."""
    import panel as pn

    common = {"label": spec.label, "sizing_mode": "stretch_width", "css_classes": [f"wb-field-{spec.path.replace('.', '-')}"]}
    if spec.description:
        common["description"] = spec.description
    shown = format_value(spec, value if value is not None else spec.default)
    if spec.kind == "enum":
        return pn.widgets.Select(options=spec.options, value=shown if shown in spec.options else spec.options[0],
                                 **common)
    if spec.kind == "int":
        low = int(spec.minimum) if spec.minimum is not None else None
        high = int(spec.maximum) if spec.maximum is not None else None
        return pn.widgets.IntInput(value=int(shown) if shown is not None else (low or 0), start=low, end=high, **common)
    if spec.kind == "float":
        high = spec.maximum if spec.maximum is not None else (
            spec.exclusive_maximum - 1e-6 if spec.exclusive_maximum is not None else None)
        return pn.widgets.FloatInput(value=float(shown) if shown is not None else 0.0, start=spec.minimum, end=high,
                                     step=0.05, **common)
    if spec.kind == "bool":
        common.pop("description", None)
        return pn.widgets.Checkbox(value=bool(shown), **common)
    if spec.kind == "enum_list":
        return pn.widgets.MultiChoice(options=spec.options, value=list(shown or []), **common)
    if spec.kind == "json":
        return pn.widgets.TextAreaInput(value=shown or "", height=160, **common)
    return pn.widgets.TextInput(value="" if shown is None else str(shown), **common)


def block_defaults(block_type: str) -> dict:
    """Every field's default for a block type (default factories called, nested models as dicts)."""
    from pydantic import BaseModel

    from ..spec import BLOCK_TYPES

    out: dict[str, Any] = {}
    for name, info in BLOCK_TYPES[block_type].model_fields.items():
        if info.is_required():
            continue
        value = info.get_default(call_default_factory=True)
        out[name] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return out


def with_defaults(block: dict) -> dict:
    """The block as the engine reads it: missing fields shown with their defaults."""
    from ..spec import BLOCK_TYPES

    if block.get("type") not in BLOCK_TYPES:
        return dict(block)
    merged = {**block_defaults(block["type"]), **block}
    if isinstance(merged.get("readout"), dict):
        merged["readout"] = {**block_defaults("quantum")["readout"], **merged["readout"]}
    return merged
