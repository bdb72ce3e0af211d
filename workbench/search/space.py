"""A search space as data: an architecture spec with choices in place of values.

    {"name": "digits-qblock", "base": {
        "task": "classification", "input_shape": [1, 8, 8],
        "blocks": [
            {"type": "flatten", "id": "flat"},
            {"type": "linear", "id": "fc_in", "out_features": {"fit": "q"}},
            {"type": "activation", "id": "to_angles", "fn": "scaled_tanh"},
            {"type": "quantum", "id": "q", "qubits": 4, "encoding": ["angle", "dense_angle", "reupload"],
             "depth": {"range": [1, 6]}, "role": ["intermediate", "output"]},
            {"type": "linear", "id": "head", "out_features": 10, "optional": true}]}}

Markers (anywhere a spec value goes):
  * a list where the spec expects one value, e.g. ``"encoding": ["angle", "reupload"]``: one of the values;
  * ``{"choice": [...]}``: one of the values, also for fields whose value is itself a list
    (``"rotations": {"choice": [["ry"], ["ry", "rz"]]}``);
  * ``{"range": [low, high]}`` (optionally ``"step"``): an integer from low to high inclusive;
  * ``{"fit": "BLOCK_ID"}``: the number of input features quantum block BLOCK_ID needs under the chosen
    encoding (so the layer before it follows the encoding's width);
  * ``{"same": "PATH"}``: the value chosen for another choice, e.g. ``{"same": "blocks.hidden0.out_features"}``;
  * ``"optional": true`` on a block: the block is present or absent (``"optional": {"same": "blocks.h1.present"}``
    ties its presence to another optional block's).

Training settings can be searched too: ``"train": {"lr": [0.003, 0.03]}`` (paths ``train.lr``).

A candidate is one option index per choice; `SearchSpace.materialise` turns it into a validated spec, or
reports why that combination is not a valid network.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import spec as S

SPACE_VERSION = 1
_MARKER_KEYS = ("choice", "range", "fit", "same")


class SpaceError(ValueError):
    """A search space that cannot be read; the message names the place and the fix."""


def _list_fields() -> set[str]:
    """Names of spec fields whose value is itself a list (a bare list there is a value, not a choice)."""
    models = [S.ArchitectureSpec, S.Readout, S.GateSpec, S.PauliTerm, *S.BLOCK_TYPES.values()]
    names = set()
    for model in models:
        for name, info in model.model_fields.items():
            stack = [info.annotation]
            while stack:
                annotation = stack.pop()
                if typing.get_origin(annotation) is list:
                    names.add(name)
                stack.extend(typing.get_args(annotation))
    return names


LIST_FIELDS = _list_fields()


@dataclass(frozen=True)
class Choice:
    """One decision of the space: `path` names the field ('blocks.q.depth'), `options` its values."""

    path: str
    options: tuple[Any, ...]

    @property
    def bits(self) -> int:
        """Qubits needed to write an option index in binary (0 for a fixed value)."""
        return math.ceil(math.log2(len(self.options))) if len(self.options) > 1 else 0


@dataclass
class Candidate:
    """One point of a space: its option indices, the values they select and the spec (None when invalid)."""

    key: str
    choices: dict[str, Any]
    spec: S.ArchitectureSpec | None
    reason: str | None = None
    index: tuple[int, ...] = field(default=())
    train: dict[str, Any] = field(default_factory=dict)  # training settings this candidate chose

    @property
    def valid(self) -> bool:
        return self.spec is not None


def _is_marker(value: Any) -> bool:
    return isinstance(value, dict) and len(set(value) & set(_MARKER_KEYS)) == 1 and \
        set(value) <= {*_MARKER_KEYS, "step"}


def _marker_options(value: Any, field_name: str, where: str) -> list[Any] | None:
    """The options a value offers, or None when it is a plain value (or a 'fit')."""
    if _is_marker(value):
        if "choice" in value:
            options = value["choice"]
            if not isinstance(options, list) or not options:
                raise SpaceError(f"{where}: 'choice' needs a non-empty list of values, got {options!r}")
            return options
        if "range" in value:
            bounds, step = value["range"], value.get("step", 1)
            if (not isinstance(bounds, list) or len(bounds) != 2 or not all(isinstance(b, int) for b in bounds)
                    or not isinstance(step, int) or step < 1 or bounds[0] > bounds[1]):
                raise SpaceError(f"{where}: 'range' needs two integers [low, high] with low <= high and an integer "
                                 f"step >= 1, e.g. {{\"range\": [1, 6]}}; got {value!r}")
            return list(range(bounds[0], bounds[1] + 1, step))
        return None
    if isinstance(value, list) and field_name not in LIST_FIELDS:
        if not value:
            raise SpaceError(f"{where}: an empty list offers no choice: give at least one value")
        return value
    return None


class SearchSpace(BaseModel):
    """A spec with choices. `base` is a spec dict whose values may be choice markers (see the module doc)."""

    model_config = ConfigDict(extra="forbid")
    version: int = SPACE_VERSION
    name: str = "space"
    description: str = ""
    base: dict[str, Any] = Field(description="An architecture spec whose values may be choices.")
    train: dict[str, Any] = Field(default_factory=dict,
                                  description="Training settings (TrainConfig fields) whose values may be choices.")

    @model_validator(mode="after")
    def _check(self) -> "SearchSpace":
        if self.version != SPACE_VERSION:
            raise ValueError(f"search space version {self.version} is not supported: set \"version\": {SPACE_VERSION}")
        blocks = self.base.get("blocks")
        if not isinstance(blocks, list) or not blocks:
            raise ValueError("base.blocks must be a non-empty list of blocks, as in a spec")
        ids = []
        for i, block in enumerate(blocks):
            if not isinstance(block, dict) or not isinstance(block.get("id"), str):
                raise ValueError(f"base.blocks[{i}] must be a block with a string 'id'")
            if _is_marker(block.get("type")) or isinstance(block.get("type"), list):
                raise ValueError(f"block {block['id']}: the block type cannot be a choice: make two optional blocks")
            ids.append(block["id"])
        if len(set(ids)) != len(ids):
            raise ValueError(f"block ids must be unique, got {ids}")
        quantum = {b["id"] for b in blocks if b.get("type") == "quantum"}
        for path, value in _walk(self.base, ""):
            if _is_marker(value) and "fit" in value and value["fit"] not in quantum:
                raise ValueError(f"{path}: 'fit' must name a quantum block ({', '.join(sorted(quantum)) or 'none'}), "
                                 f"got {value['fit']!r}")
        try:
            paths = {c.path for c in self.choices}
        except SpaceError as err:
            raise ValueError(str(err)) from None
        for path, value in [*_walk(self.base, ""), *_walk(self.train, "train")]:
            if _is_marker(value) and "same" in value and value["same"] not in paths:
                raise ValueError(f"{path}: 'same' must name a choice of this space ({', '.join(sorted(paths))}), "
                                 f"got {value['same']!r}")
        return self

    # -- structure -------------------------------------------------------------------------------
    @property
    def choices(self) -> list[Choice]:
        """Every decision, in a fixed order (top-level fields, then blocks in order)."""
        found: list[Choice] = []
        for key, value in self.base.items():
            if key == "blocks":
                continue
            options = _marker_options(value, key, key)
            if options is not None:
                found.append(Choice(key, tuple(options)))
        for block in self.base["blocks"]:
            prefix = f"blocks.{block['id']}"
            if block.get("optional") is True:
                found.append(Choice(f"{prefix}.present", (True, False)))
            for path, value, name in _fields(block, prefix):
                options = _marker_options(value, name, path)
                if options is not None:
                    found.append(Choice(path, tuple(options)))
        for key, value in self.train.items():
            options = _marker_options(value, key, f"train.{key}")
            if options is not None:
                found.append(Choice(f"train.{key}", tuple(options)))
        return found

    @property
    def size(self) -> int:
        return math.prod(len(c.options) for c in self.choices)

    @property
    def n_bits(self) -> int:
        """Bits of a candidate's binary code (choice indices written one after another, least significant first)."""
        return sum(c.bits for c in self.choices)

    # -- candidates ------------------------------------------------------------------------------
    def materialise(self, index: tuple[int, ...] | list[int]) -> Candidate:
        """The candidate with these option indices: a validated spec, or the reason it is invalid."""
        choices = self.choices
        index = tuple(int(i) for i in index)
        if len(index) != len(choices) or any(not 0 <= i < len(c.options) for i, c in zip(index, choices)):
            raise SpaceError(f"a candidate of space {self.name!r} has {len(choices)} option indices within "
                             f"{[len(c.options) for c in choices]}, got {list(index)}")
        selected = {c.path: c.options[i] for c, i in zip(choices, index)}
        key = ".".join(map(str, index)) or "0"
        data = _resolve(self.base, selected)
        try:
            data = _fit_widths(data)
            spec = S.load_spec(data)
        except S.SpecError as err:
            return Candidate(key, selected, None, str(err), index)
        spec.name = f"{self.name}-{key}"
        train = {k: _replace(v, f"train.{k}", selected) for k, v in self.train.items()}
        return Candidate(key, selected, spec, None, index, train)

    def from_key(self, key: str) -> Candidate:
        return self.materialise([int(part) for part in key.split(".")] if self.choices else [])

    def candidates(self) -> Iterator[Candidate]:
        """Every candidate, valid or not, in index order (the last choice varies fastest)."""
        for index in itertools.product(*(range(len(c.options)) for c in self.choices)):
            yield self.materialise(index)

    def sample(self, rng: random.Random) -> Candidate:
        return self.materialise([rng.randrange(len(c.options)) for c in self.choices])

    def invalid(self) -> list[Candidate]:
        """The invalid candidates with their reasons (walks the whole space)."""
        return [c for c in self.candidates() if not c.valid]

    # -- binary codes (VQE-as-optimiser) ---------------------------------------------------------
    def code_to_index(self, code: int) -> tuple[int, ...] | None:
        """Option indices written in a code, or None when a field holds an index beyond its options."""
        index, shift = [], 0
        for choice in self.choices:
            value = (code >> shift) & ((1 << choice.bits) - 1)
            shift += choice.bits
            if value >= len(choice.options):
                return None
            index.append(value)
        return tuple(index)

    def index_to_code(self, index: tuple[int, ...]) -> int:
        code, shift = 0, 0
        for choice, value in zip(self.choices, index):
            code |= value << shift
            shift += choice.bits
        return code

    # -- files -----------------------------------------------------------------------------------
    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def describe(self) -> str:
        lines = [f"search space {self.name}: {self.size} candidates, {len(self.choices)} choices, {self.n_bits} bits"]
        lines += [f"  {c.path}: {list(c.options)}" for c in self.choices]
        return "\n".join(lines)


def load_space(source: str | Path | dict | SearchSpace) -> SearchSpace:
    """A space from a dict, JSON text, a JSON file path, a template name, or a space (copied)."""
    from pydantic import ValidationError

    from .templates import SPACE_TEMPLATES, get_space

    if isinstance(source, SearchSpace):
        return source.model_copy(deep=True)
    if isinstance(source, str) and source in SPACE_TEMPLATES:
        return get_space(source)
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
        path = Path(source)
        if not path.exists():
            raise SpaceError(f"search space file {path} does not exist: give a JSON file or a template name "
                             f"({', '.join(SPACE_TEMPLATES)})")
        try:
            source = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SpaceError(f"{path} is not a JSON search space ({err})") from err
    elif isinstance(source, str):
        try:
            source = json.loads(source)
        except json.JSONDecodeError as err:
            raise SpaceError(f"search space text is not valid JSON: {err}") from err
    if not isinstance(source, dict):
        raise SpaceError("a search space is a JSON object with 'name' and 'base' (a spec with choices)")
    try:
        return SearchSpace.model_validate(source)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "space"
        raise SpaceError(f"search space {where}: {first['msg'].removeprefix('Value error, ')}") from None


# -- helpers ------------------------------------------------------------------------------------


def _fields(value: Any, prefix: str, name: str = "") -> Iterator[tuple[str, Any, str]]:
    """(path, value, field name) of every leaf or marker inside a block, depth first."""
    if isinstance(value, dict) and not _is_marker(value):
        for key, inner in value.items():
            if key in ("id", "type", "optional"):
                continue
            yield from _fields(inner, f"{prefix}.{key}", key)
    else:
        yield prefix, value, name


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _walk(inner, f"{path}[{i}]")


def _resolve(base: dict, selected: dict[str, Any]) -> dict:
    """The base with every choice replaced by its selected value and absent optional blocks dropped."""
    data = {k: _replace(v, k, selected) for k, v in base.items() if k != "blocks"}
    blocks = []
    for block in base["blocks"]:
        prefix = f"blocks.{block['id']}"
        optional = block.get("optional")
        present_path = optional["same"] if _is_marker(optional) else f"{prefix}.present"
        if optional and not selected[present_path]:
            continue
        blocks.append(_replace(block, prefix, selected))
    data["blocks"] = blocks
    return data


def _replace(value: Any, path: str, selected: dict[str, Any]) -> Any:
    if path in selected:
        return copy.deepcopy(selected[path])
    if _is_marker(value) and "same" in value:
        return copy.deepcopy(selected[value["same"]])
    if isinstance(value, dict) and not _is_marker(value):
        return {k: _replace(v, f"{path}.{k}", selected) for k, v in value.items() if k != "optional"}
    return copy.deepcopy(value)


def _fit_widths(data: dict) -> dict:
    """Replace {"fit": id} by the feature count quantum block `id` needs under its chosen settings."""
    blocks = {b["id"]: b for b in data["blocks"]}
    for block in data["blocks"]:
        for key, value in list(block.items()):
            if _is_marker(value) and "fit" in value:
                target = blocks.get(value["fit"])
                if target is None:
                    raise S.SpecError(f"block {block['id']}: field {key} fits block {value['fit']} which this "
                                      "candidate leaves out", block["id"], key)
                try:
                    quantum = S.Quantum.model_validate(target)
                except Exception as err:  # pydantic's message, reported as the candidate's reason
                    raise S.SpecError(f"block {target['id']}: {err}", target["id"]) from None
                need = S.encoding_features(quantum)
                if need is None:
                    need = 2**quantum.qubits
                block[key] = need
    return data
