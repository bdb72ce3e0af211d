"""The quantum block model: the fields of a quantum block, their validation and its arithmetic.

The spec (`workbench.spec`) embeds this block among its classical blocks; `workbench.QuantumLayer`
validates the same fields the same way. It lives in the engine so the engine needs nothing from outside.
"""

from __future__ import annotations

from .errors import WorkbenchError

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_QUBITS = 30
PAULI_CHARS = set("IXYZ")
# Upper bounds of a block's fields: a spec is data from files and links, so nothing in it is unbounded.
MAX_GATES_PER_BLOCK = 10_000
MAX_WEIGHT_INDEX = 65_535  # a custom gate's weight or input index
MAX_SHOTS = 10_000_000  # the GUI offers up to the same
MAX_TERMS = 4_096  # observables or Hamiltonian terms of one readout
MAX_MAGNITUDE = 1e6  # any float in a spec (scales, coefficients, angles)
MAX_NAME_CHARS = 200

Shape = tuple[int, ...]

class SpecError(WorkbenchError, ValueError):
    """A spec that cannot be built. `block` and `field` say where; the message says how to fix it."""

    def __init__(self, message: str, block: str | None = None, field: str | None = None):
        super().__init__(message)
        self.block = block
        self.field = field


# Every model refuses unknown fields, NaN and infinities.
STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
Real = Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]


class BlockBase(BaseModel):
    """Fields every block of a spec has."""

    model_config = STRICT
    id: str = Field(min_length=1, max_length=MAX_NAME_CHARS,
                    description="Unique name of the block, used in messages and the GUI.")



class PauliTerm(BaseModel):
    model_config = STRICT
    coeff: Real
    pauli: str = Field(max_length=MAX_QUBITS, description="One character per qubit from I, X, Y, Z; character i acts on qubit i.")


class Readout(BaseModel):
    """How the circuit's result becomes the layer's output."""

    model_config = STRICT
    mode: Literal["estimator", "sampler"] = "estimator"
    observables: list[Annotated[str, Field(max_length=MAX_QUBITS)]] | None = Field(
        None, max_length=MAX_TERMS, description="Estimator: Pauli strings, one output each. Default: Z on each qubit."
    )
    hamiltonian: list[PauliTerm] | None = Field(
        None, max_length=MAX_TERMS, description="Estimator: a weighted Pauli sum; the output is its energy (one value)."
    )
    shots: int | None = Field(None, ge=1, le=MAX_SHOTS, description="Finite shots; None means exact.")
    marginal: list[int] | None = Field(None, max_length=MAX_QUBITS, description="Sampler: qubits whose bitstring probabilities are returned.")


class GateSpec(BaseModel):
    """One gate of a user-given circuit. Parameter sources: a trainable weight, an input feature, or a constant."""

    model_config = STRICT
    gate: Literal["h", "x", "y", "z", "s", "t", "rx", "ry", "rz", "cx", "cz", "swap", "rzz"]
    wires: list[int] = Field(max_length=2)
    source: Literal["weight", "input", "const"] | None = None
    index: int | None = Field(None, ge=0, le=MAX_WEIGHT_INDEX,
                              description="Weight or input feature index for source weight/input.")
    value: Real | None = Field(None, description="Angle for source const.")
    scale: Real = 1.0


class Quantum(BlockBase):
    type: Literal["quantum"] = "quantum"
    role: Literal["intermediate", "output", "parameter_input"] = "intermediate"
    qubits: int = Field(4, ge=1, le=MAX_QUBITS)
    encoding: Literal["angle", "dense_angle", "amplitude", "iqp", "reupload", "none"] = "angle"
    rotation: Literal["rx", "ry", "rz"] = Field("ry", description="Rotation used by angle and re-uploading encodings.")
    input_scaling: Real = Field(1.0, description="Encoded angle = input_scaling * feature.")
    ansatz: Literal["hardware_efficient", "strongly_entangling", "basic_entangler", "custom"] = "hardware_efficient"
    depth: int = Field(2, ge=1, le=64)
    entanglement: Literal["linear", "ring", "all_to_all", "none"] = "ring"
    rotations: list[Literal["rx", "ry", "rz"]] = Field(
        default_factory=lambda: ["ry", "rz"], max_length=9, description="Hardware-efficient ansatz: trainable rotations per qubit per layer."
    )
    gates: list[GateSpec] | None = Field(None, max_length=MAX_GATES_PER_BLOCK, description="The circuit for ansatz=custom.")
    readout: Readout = Field(default_factory=Readout)

    @field_validator("rotations")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one rotation, e.g. ['ry', 'rz']")
        return value


def encoding_features(block: Quantum) -> int | None:
    """How many input features the encoding consumes; None means 'up to 2**qubits' (amplitude)."""
    n = block.qubits
    if block.role == "parameter_input":
        return ansatz_weight_count(block)
    return {"angle": n, "iqp": n, "reupload": n, "dense_angle": 2 * n, "amplitude": None, "none": 0}[block.encoding]


def ansatz_weight_count(block: Quantum) -> int:
    n, depth = block.qubits, block.depth
    if block.ansatz == "hardware_efficient":
        return depth * n * len(block.rotations)
    if block.ansatz == "strongly_entangling":
        return depth * n * 3
    if block.ansatz == "basic_entangler":
        return depth * n
    gates = block.gates or []
    indices = [g.index for g in gates if g.source == "weight" and g.index is not None]
    return max(indices) + 1 if indices else 0


def readout_width(block: Quantum) -> int:
    readout = block.readout
    if readout.mode == "sampler":
        return 2 ** len(readout.marginal) if readout.marginal else 2**block.qubits
    if readout.hamiltonian:
        return 1
    return len(readout.observables) if readout.observables else block.qubits


def check_quantum(block: Quantum, incoming: Shape, previous: str | None, is_last: bool) -> None:
    n = block.qubits
    where = f"block {block.id}"
    readout = block.readout
    for name in ("observables",):
        for pauli in getattr(readout, name) or []:
            _check_pauli(block, pauli, f"readout.{name}")
    for term in readout.hamiltonian or []:
        _check_pauli(block, term.pauli, "readout.hamiltonian")
    if readout.mode == "sampler" and (readout.observables or readout.hamiltonian):
        raise SpecError(f"{where}: sampler readout returns bitstring probabilities and takes no observables: "
                        "remove readout.observables/hamiltonian or set readout.mode='estimator'", block.id, "readout.mode")
    if readout.observables and readout.hamiltonian:
        raise SpecError(f"{where}: give readout.observables or readout.hamiltonian, not both", block.id, "readout")
    for name in ("observables", "hamiltonian", "marginal"):
        if getattr(readout, name) is not None and len(getattr(readout, name)) == 0:
            raise SpecError(f"{where}: readout.{name} is an empty list: give at least one entry or remove the field",
                            block.id, f"readout.{name}")
    for q in readout.marginal or []:
        if not 0 <= q < n:
            raise SpecError(f"{where}: readout.marginal names qubit {q} but the block has {n} qubits (0..{n - 1})",
                            block.id, "readout.marginal")
    if readout.marginal and len(set(readout.marginal)) != len(readout.marginal):
        raise SpecError(f"{where}: readout.marginal {readout.marginal} names a qubit twice: list each qubit once",
                        block.id, "readout.marginal")
    if block.ansatz == "custom":
        if not block.gates:
            raise SpecError(f"{where}: ansatz 'custom' needs a gate list in 'gates'", block.id, "gates")
        for i, gate in enumerate(block.gates):
            _check_gate(block, i, gate)
    elif block.gates:
        raise SpecError(f"{where}: 'gates' is only used with ansatz='custom'", block.id, "gates")
    if block.role == "parameter_input" and block.encoding != "none":
        raise SpecError(f"{where}: role parameter_input feeds the incoming features into the circuit's parameters, "
                        "so it takes no data encoding: set encoding='none'", block.id, "encoding")
    if block.role != "parameter_input" and block.encoding == "none" and block.ansatz != "custom":
        raise SpecError(f"{where}: encoding 'none' leaves the circuit without its input: choose angle, dense_angle, "
                        "amplitude, iqp or reupload, or set role='parameter_input'", block.id, "encoding")
    if block.role == "output" and not is_last:
        raise SpecError(f"{where}: role 'output' must be the last block: move it to the end or set role='intermediate'",
                        block.id, "role")
    if len(incoming) != 1:
        raise SpecError(f"{where}: a quantum layer needs flat features but gets shape {incoming}: "
                        "add a flatten block before it", block.id, "encoding")
    features = incoming[0]
    src = f"block {previous}" if previous else "the input"
    if block.role == "parameter_input":
        if any(g.source == "input" for g in block.gates or []):
            i = next(j for j, g in enumerate(block.gates) if g.source == "input")
            raise SpecError(f"{where}: with role parameter_input the incoming features are the circuit's parameters: "
                            f"gates[{i}] should use source 'weight' (parameter index), not 'input'",
                            block.id, f"gates.{i}.source")
        need = ansatz_weight_count(block)
        if features != need:
            fix = f"set {previous} out_features={need}" if previous else f"set input_shape=[{need}]"
            raise SpecError(f"{where}: parameter input needs {need} features (one per circuit parameter) but {src} "
                            f"gives {features}: {fix}", block.id, "role")
        return
    if block.encoding == "amplitude":
        if features > 2**n:
            raise SpecError(f"{where}: amplitude encoding of {n} qubits holds at most {2 ** n} features but {src} gives "
                            f"{features}: use {math.ceil(math.log2(features))} qubits or reduce the features",
                            block.id, "qubits")
        return
    need = encoding_features(block)
    inputs = [g.index for g in block.gates or [] if g.source == "input" and g.index is not None]
    if block.ansatz == "custom" and block.encoding == "none":
        need = max(inputs) + 1 if inputs else 0
    elif inputs and max(inputs) >= features:
        i = next(j for j, g in enumerate(block.gates) if g.source == "input" and g.index == max(inputs))
        raise SpecError(f"{where}: gates[{i}] reads input feature {max(inputs)} but {src} gives {features} features "
                        f"(0..{features - 1}): use an index below {features}", block.id, f"gates.{i}.index")
    if features != need:
        fix = f"set {previous} out_features={need}" if previous else f"set input_shape=[{need}]"
        alt = " or use amplitude encoding" if block.encoding != "amplitude" and features <= 2**n else ""
        alt = alt or (f" or use {features} qubits" if block.encoding in ("angle", "iqp", "reupload") else "")
        raise SpecError(f"{where}: {block.encoding.replace('_', ' ')} encoding needs {need} features but {src} gives "
                        f"{features}: {fix}{alt}", block.id, "encoding")


def _check_pauli(block: Quantum, pauli: str, field: str) -> None:
    if len(pauli) != block.qubits or not set(pauli) <= PAULI_CHARS:
        raise SpecError(f"block {block.id}: {field} entry {pauli!r} must have one of I/X/Y/Z per qubit "
                        f"({block.qubits} characters), e.g. {'Z' + 'I' * (block.qubits - 1)!r}", block.id, field)


def _check_gate(block: Quantum, i: int, gate: GateSpec) -> None:
    arity = 2 if gate.gate in ("cx", "cz", "swap", "rzz") else 1
    where = f"block {block.id}: gates[{i}] ({gate.gate})"
    if len(gate.wires) != arity or len(set(gate.wires)) != arity:
        raise SpecError(f"{where} acts on {arity} distinct qubit(s) but wires={gate.wires}", block.id, f"gates.{i}.wires")
    if any(not 0 <= w < block.qubits for w in gate.wires):
        raise SpecError(f"{where}: wires {gate.wires} outside 0..{block.qubits - 1}", block.id, f"gates.{i}.wires")
    parametric = gate.gate in ("rx", "ry", "rz", "rzz")
    if parametric and gate.source is None:
        raise SpecError(f"{where} is a rotation: set source to weight, input or const", block.id, f"gates.{i}.source")
    if not parametric and gate.source is not None:
        raise SpecError(f"{where} takes no parameter: remove source", block.id, f"gates.{i}.source")
    if gate.source in ("weight", "input") and gate.index is None:
        raise SpecError(f"{where}: source {gate.source} needs an index", block.id, f"gates.{i}.index")
    if gate.source == "const" and gate.value is None:
        raise SpecError(f"{where}: source const needs a value", block.id, f"gates.{i}.value")



def quantum_block(**fields) -> Quantum:
    """A Quantum block from its fields, validated like a spec block (SpecError naming block and field).

    Example:
        >>> quantum_block(qubits=4, encoding="angle", depth=2).ansatz
        'hardware_efficient'
    """
    data = {"id": "quantum", "type": "quantum", **fields}
    block_id = str(data["id"])
    if data["type"] != "quantum":
        raise SpecError(f"block {block_id}: a quantum layer needs a block of type 'quantum', not {data['type']!r}",
                        block_id, "type")
    try:
        return Quantum.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "type"
        raise SpecError(f"block {block_id}: field {field}: {first['msg']}", block_id, field) from None
