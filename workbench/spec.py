"""The architecture spec: a versioned, JSON round-trippable description of a hybrid network.

A spec is data, not code. It is an ordered list of blocks; validation infers the shape
flowing out of every block and reports each problem against the block and field that
causes it, with a fix the user can apply.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, ValidationError

# The quantum block and its validation belong to the engine; the spec embeds the block among its classical ones.
from .engine.block import (MAX_QUBITS, PAULI_CHARS, GateSpec, PauliTerm, Quantum, Readout, Shape, SpecError,
                           ansatz_weight_count, check_quantum, encoding_features, readout_width)
from .engine.block import STRICT, Real
from .engine.block import BlockBase as _Block

from . import limits as L

SPEC_VERSION = 1

__all__ = ["MAX_QUBITS", "PAULI_CHARS", "SPEC_VERSION", "ArchitectureSpec", "GateSpec", "PauliTerm", "Quantum",
           "Readout", "SpecError", "ansatz_weight_count", "block_schema", "encoding_features", "infer_shapes",
           "load_spec", "readout_width"]


# Every model refuses NaN and infinities; every number and list has an upper bound (see limits.py).
_STRICT = STRICT
Size = Annotated[int, Field(ge=1, le=L.MAX_SIZE)]


class Linear(_Block):
    type: Literal["linear"] = "linear"
    out_features: int = Field(ge=1, le=L.MAX_SIZE, description="Number of output features.")
    bias: bool = True


class Conv2d(_Block):
    type: Literal["conv2d"] = "conv2d"
    out_channels: int = Field(ge=1, le=L.MAX_CHANNELS)
    kernel_size: int = Field(3, ge=1, le=L.MAX_KERNEL)
    stride: int = Field(1, ge=1, le=L.MAX_KERNEL)
    padding: int = Field(0, ge=0, le=L.MAX_KERNEL)


class Pool(_Block):
    type: Literal["pool"] = "pool"
    mode: Literal["max", "avg"] = "max"
    kernel_size: int = Field(2, ge=1, le=L.MAX_KERNEL)


class Flatten(_Block):
    type: Literal["flatten"] = "flatten"


class Reshape(_Block):
    type: Literal["reshape"] = "reshape"
    shape: list[Size] = Field(min_length=1, max_length=L.MAX_DIMS, description="Shape without the batch dimension.")


class Activation(_Block):
    type: Literal["activation"] = "activation"
    fn: Literal["relu", "tanh", "sigmoid", "gelu", "scaled_tanh"] = "relu"
    scale: Real = Field(math.pi, description="Only for scaled_tanh: output = scale * tanh(x), mapping features to angles.")


class Dropout(_Block):
    type: Literal["dropout"] = "dropout"
    p: float = Field(0.1, ge=0.0, lt=1.0)


class BatchNorm(_Block):
    type: Literal["batchnorm"] = "batchnorm"


Block = Annotated[
    Union[Linear, Conv2d, Pool, Flatten, Reshape, Activation, Dropout, BatchNorm, Quantum],
    Field(discriminator="type"),
]
BLOCK_TYPES: dict[str, type[_Block]] = {
    cls.model_fields["type"].default: cls
    for cls in (Linear, Conv2d, Pool, Flatten, Reshape, Activation, Dropout, BatchNorm, Quantum)
}


class ArchitectureSpec(BaseModel):
    model_config = _STRICT
    version: int = SPEC_VERSION
    name: str = Field("untitled", max_length=L.MAX_NAME_CHARS)
    description: str = Field("", max_length=L.MAX_DESCRIPTION_CHARS)
    task: Literal["classification", "regression", "energy"] = "classification"
    input_shape: list[Size] = Field(min_length=1, max_length=L.MAX_DIMS,
                                    description="Shape of one sample, without the batch dimension.")
    blocks: list[Block] = Field(min_length=1, max_length=L.MAX_BLOCKS)

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def block(self, block_id: str) -> _Block:
        for block in self.blocks:
            if block.id == block_id:
                return block
        raise KeyError(block_id)

    def quantum_blocks(self) -> list[Quantum]:
        return [b for b in self.blocks if isinstance(b, Quantum)]

    def shapes(self) -> list[tuple[Shape, Shape]]:
        """(input shape, output shape) of every block; raises SpecError for the first problem."""
        return infer_shapes(self)

    def validate_all(self) -> list[SpecError]:
        """Every problem found (shape inference stops at the first shape error)."""
        try:
            infer_shapes(self)
        except SpecError as err:
            return [err]
        return []

    def output_shape(self) -> Shape:
        return self.shapes()[-1][1]


def load_spec(source: str | Path | dict | ArchitectureSpec) -> ArchitectureSpec:
    """A spec from a dict, a JSON string, a path to a JSON file, or a spec (copied). Validates shapes too.

    Text and files are bounded in size, nesting and number length before they are parsed, and the
    whole spec is checked against the memory and gate budgets in `limits` before anything is built.
    """
    if isinstance(source, ArchitectureSpec):
        return source.model_copy(deep=True)
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        source = L.parse_json(_read_spec_file(source), f"spec file {source}", SpecError, lambda err: (
            f"{source} is not a JSON spec ({err}): export one with spec.to_json() or the GUI's download"))
    elif isinstance(source, str):
        source = L.parse_json(source, "spec text", SpecError, lambda err: (
            f"spec text is not valid JSON: {err}: check brackets, quotes and commas there, or export the spec "
            "with spec.to_json()"))
    if not isinstance(source, dict):
        raise SpecError("a spec must be a JSON object with 'input_shape' and 'blocks'")
    version = source.get("version", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise SpecError(f"spec version {version!r} is not supported (this workbench reads version {SPEC_VERSION}): "
                        f"set \"version\": {SPEC_VERSION} after converting the spec", None, "version")
    try:
        spec = ArchitectureSpec.model_validate(source)
    except ValidationError as err:
        raise _spec_error_from_pydantic(err, source) from None
    _check_unique_ids(spec)
    L.check_spec_budget(spec, infer_shapes(spec))
    return spec


def _read_spec_file(source: str | Path) -> str:
    """The text of a spec file; SpecError for anything that is not a readable, reasonably sized file."""
    if isinstance(source, str):
        text = source.strip()
        if not text:
            raise SpecError("the spec is empty: give a JSON object such as {\"input_shape\": [2], \"blocks\": [...]} "
                            "or the path of a spec JSON file")
        if len(text) > 4096 or any(c in text for c in "\n\r\x00"):
            raise SpecError(f"the spec text ({len(text):,} characters, starting {text[:20]!r}) is neither JSON (a spec "
                            "starts with '{') nor a file path: check what was passed")
    path = Path(source)
    try:
        if path.is_dir():
            raise SpecError(f"{path} is a directory: give the path of a spec JSON file inside it")
        if not path.exists():
            raise SpecError(f"spec file {path} does not exist: check the path")
        if not path.is_file():
            raise SpecError(f"{path} is not a regular file (a device, pipe or socket): give a spec JSON file")
        size = path.stat().st_size
        if size > L.MAX_JSON_CHARS:
            raise SpecError(f"{path} is {size:,} bytes; a spec file is at most {L.MAX_JSON_CHARS:,}: "
                            "check that this is the right file")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path} is not a JSON spec ({err}): export one with spec.to_json() or the GUI's download") \
            from None
    except OSError as err:
        raise SpecError(f"cannot read spec file {path}: {err.strerror or err}") from None


def _spec_error_from_pydantic(err: ValidationError, source: dict) -> SpecError:
    first = err.errors()[0]
    loc = first["loc"]
    block_id = None
    if len(loc) >= 2 and loc[0] == "blocks" and isinstance(loc[1], int):
        blocks = source.get("blocks") or []
        raw = blocks[loc[1]] if loc[1] < len(blocks) else {}
        block_id = raw.get("id", f"#{loc[1]}") if isinstance(raw, dict) else f"#{loc[1]}"
        field_path = [str(p) for p in loc[2:] if not (isinstance(p, str) and p in BLOCK_TYPES)]
        field = ".".join(field_path) or "type"
        if first["type"] == "union_tag_invalid" or first["type"] == "union_tag_not_found":
            kinds = ", ".join(BLOCK_TYPES)
            given = raw.get("type") if isinstance(raw, dict) else None
            what = f"unknown block type {given!r}" if given is not None else "missing block type"
            return SpecError(f"block {block_id}: field type: {what}: use one of {kinds}", block_id, "type")
        return SpecError(f"block {block_id}: field {field}: {first['msg']}", block_id, field)
    field = ".".join(str(p) for p in loc)
    return SpecError(f"spec field {field}: {first['msg']}", None, field)


def _check_unique_ids(spec: ArchitectureSpec) -> None:
    seen: set[str] = set()
    for block in spec.blocks:
        if block.id in seen:
            raise SpecError(f"block {block.id}: the id is used twice: give each block its own id", block.id, "id")
        seen.add(block.id)



def infer_shapes(spec: ArchitectureSpec) -> list[tuple[Shape, Shape]]:
    """Walk the blocks, returning (in, out) shapes; raise SpecError naming block, field and fix."""
    _check_unique_ids(spec)
    if any(d < 1 for d in spec.input_shape):
        raise SpecError(f"input_shape {spec.input_shape} must have positive sizes", None, "input_shape")
    shape: Shape = tuple(spec.input_shape)
    previous: str | None = None
    previous_sizing: str | None = None  # last block that sets a feature count (so fixes can name it)
    result: list[tuple[Shape, Shape]] = []
    for position, block in enumerate(spec.blocks):
        is_last = position == len(spec.blocks) - 1
        out = _block_output(block, shape, previous_sizing, is_last)
        result.append((shape, out))
        shape = out
        previous = block.id
        if isinstance(block, (Linear, Quantum)):
            previous_sizing = block.id
        elif isinstance(block, (Conv2d, Pool, Flatten, Reshape)):
            previous_sizing = None
    del previous
    if spec.task == "energy" and not isinstance(spec.blocks[-1], Quantum):
        last = spec.blocks[-1]
        raise SpecError(f"block {last.id}: an energy task ends with a quantum block whose readout is the energy "
                        "(or its Pauli terms): move the quantum block last", last.id, "type")
    return result


def _block_output(block: _Block, shape: Shape, previous: str | None, is_last: bool) -> Shape:
    where = f"block {block.id}"
    if isinstance(block, Linear):
        if len(shape) != 1:
            raise SpecError(f"{where}: linear needs flat features but gets shape {shape}: add a flatten block before it",
                            block.id, "type")
        return (block.out_features,)
    if isinstance(block, Conv2d):
        if len(shape) != 3:
            raise SpecError(f"{where}: conv2d needs (channels, height, width) but gets {shape}: "
                            "set input_shape like [1, 8, 8] or add a reshape block", block.id, "type")
        c, h, w = shape
        oh = (h + 2 * block.padding - block.kernel_size) // block.stride + 1
        ow = (w + 2 * block.padding - block.kernel_size) // block.stride + 1
        if oh < 1 or ow < 1:
            raise SpecError(f"{where}: kernel_size {block.kernel_size} is larger than the {h}x{w} input: "
                            "reduce kernel_size or add padding", block.id, "kernel_size")
        return (block.out_channels, oh, ow)
    if isinstance(block, Pool):
        if len(shape) != 3:
            raise SpecError(f"{where}: pooling needs (channels, height, width) but gets {shape}", block.id, "type")
        c, h, w = shape
        if h < block.kernel_size or w < block.kernel_size:
            raise SpecError(f"{where}: kernel_size {block.kernel_size} is larger than the {h}x{w} input: "
                            "reduce kernel_size", block.id, "kernel_size")
        return (c, h // block.kernel_size, w // block.kernel_size)
    if isinstance(block, Flatten):
        return (math.prod(shape),)
    if isinstance(block, Reshape):
        if any(d < 1 for d in block.shape) or math.prod(block.shape) != math.prod(shape):
            raise SpecError(f"{where}: cannot reshape {shape} ({math.prod(shape)} values) to {tuple(block.shape)}: "
                            f"choose a shape with {math.prod(shape)} values", block.id, "shape")
        return tuple(block.shape)
    if isinstance(block, BatchNorm):
        if len(shape) not in (1, 3):
            raise SpecError(f"{where}: batchnorm needs flat features or (channels, h, w), got {shape}", block.id, "type")
        return shape
    if isinstance(block, (Activation, Dropout)):
        return shape
    if isinstance(block, Quantum):
        check_quantum(block, shape, previous, is_last)
        return (readout_width(block),)
    raise SpecError(f"{where}: unknown block type", block.id, "type")



def block_schema(block_type: str) -> dict[str, Any]:
    """JSON schema of one block type, for generated forms."""
    return BLOCK_TYPES[block_type].model_json_schema()

