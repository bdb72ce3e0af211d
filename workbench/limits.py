"""Upper bounds on what a spec, a link or a file may ask for, checked before anything is built.

A spec is data from anywhere (a file, an upload, a shared link), so everything it can make the
workbench allocate or compute is bounded here, up front, with a message that gives the numbers:
the JSON text itself (size, nesting, digits), the classical layers' parameter memory and
activations, the quantum layers' gate count and, for the native torch engines, the work of
building the circuit program. The quantum state memory is checked by the engine itself.

Example:
    >>> parse_json('{"a": [1, 2]}', "spec text", ValueError)
    {'a': [1, 2]}
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any, Callable

# The quantum block's own bounds live with the block in the engine; the rest are here.
from .engine.block import (MAX_GATES_PER_BLOCK, MAX_MAGNITUDE, MAX_NAME_CHARS, MAX_SHOTS,  # noqa: F401
                           MAX_TERMS, MAX_WEIGHT_INDEX)

if TYPE_CHECKING:
    from .spec import ArchitectureSpec, Quantum

# JSON text (specs, model files' spec field, share-link payloads, uploads).
MAX_JSON_CHARS = 2_000_000  # a spec of the largest allowed size is far below this
MAX_JSON_DEPTH = 32  # a spec nests 6 levels deep
MAX_NUMBER_CHARS = 40  # digits of one JSON number: every bound below fits in far fewer

# Spec fields (used by spec.py's field definitions).
MAX_BLOCKS = 1_000
MAX_SIZE = 1 << 24  # any one feature count, dimension or reshape size
MAX_DIMS = 4  # input_shape / reshape rank
MAX_CHANNELS = 4_096
MAX_KERNEL = 64  # conv/pool kernel, stride and padding
MAX_DESCRIPTION_CHARS = 10_000

# Whole-spec budgets.
MAX_CLASSICAL_BYTES = 2 << 30  # weights + gradients + two optimizer moments, float32
MAX_ACTIVATIONS_PER_SAMPLE = 1 << 24  # values flowing out of all blocks for one sample
MAX_TOTAL_GATES = 100_000
# Native engines build per-gate programs over the state: about gates x 2**qubits amplitude updates.
# 2**29 is 1.5-3 s on one CPU core here; 18 qubits, depth 18, all-to-all (9e8) is beyond it.
MAX_TORCH_COMPILE_WORK = 1 << 29

_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def parse_json(text: str, what: str, error: type[Exception],
               invalid: Callable[[json.JSONDecodeError], str] | None = None) -> Any:
    """`json.loads` with bounds on size, nesting and number length; NaN and infinities refused.

    Args:
        text: the JSON text.
        what: how messages name the text, e.g. "spec text" or "the link".
        error: the exception class to raise (the caller's named error).
        invalid: the message for text that is not JSON at all (default: "<what> is not valid JSON: ...").
    """
    if len(text) > MAX_JSON_CHARS:
        raise error(f"{what} is {len(text):,} characters long; a workbench spec is at most {MAX_JSON_CHARS:,}: "
                    "check that this is the right file")
    depth = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise error(f"{what} nests brackets more than {MAX_JSON_DEPTH} levels deep; a workbench spec nests "
                            "about 6: this is not a spec")
        elif token in "]}":
            depth -= 1
    try:
        return json.loads(text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        message = invalid(err) if invalid else f"{what} is not valid JSON: {err}: check brackets, quotes and commas there"
        raise error(message) from None
    except ValueError as err:  # from the number hooks below
        raise error(f"{what}: {err}") from None


def _bounded_int(token: str) -> int:
    if len(token) > MAX_NUMBER_CHARS:
        raise ValueError(f"the number {token[:12]}… has {len(token):,} digits; spec numbers have at most "
                         f"{MAX_NUMBER_CHARS}")
    return int(token)


def _finite_float(token: str) -> float:
    if len(token) > MAX_NUMBER_CHARS:
        raise ValueError(f"the number {token[:12]}… has {len(token):,} characters; spec numbers have at most "
                         f"{MAX_NUMBER_CHARS}")
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"the number {token} is too large for a float: use a finite value")
    return value


def _no_constant(token: str) -> float:
    raise ValueError(f"{token} is not a number a spec may hold: use a finite value")


def check_shots(shots: Any, what: str = "shots") -> int | None:
    """None (exact) or a shot count in 1..MAX_SHOTS; OptionError otherwise."""
    from .errors import OptionError

    if shots is None:
        return None
    if isinstance(shots, bool) or not isinstance(shots, int) or not 1 <= shots <= MAX_SHOTS:
        raise OptionError(f"{what} must be a whole number from 1 to {MAX_SHOTS:,} (or none for exact results), "
                          f"got {shots!r}")
    return shots


# -- whole-spec estimates --------------------------------------------------------------------


def estimated_gates(block: Quantum) -> int:
    """About how many gates the block's circuit has (encoding plus ansatz), without building it."""
    n, depth = block.qubits, block.depth
    pairs = {"linear": n - 1, "ring": n if n > 2 else n - 1, "all_to_all": n * (n - 1) // 2, "none": 0}
    encoding = {"angle": n, "dense_angle": 2 * n, "iqp": n + n * (n - 1) // 2, "reupload": n * depth,
                "amplitude": 0, "none": 0}[block.encoding]  # amplitude: a prepared state, no gates
    if block.role == "parameter_input":
        encoding = 0
    if block.ansatz == "custom":
        return encoding + len(block.gates or [])
    per_layer = {"hardware_efficient": n * len(block.rotations) + pairs[block.entanglement],
                 "strongly_entangling": 3 * n + n, "basic_entangler": n + pairs[block.entanglement]}[block.ansatz]
    return encoding + depth * per_layer


def _classical_parameters(block: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    kind = block.type
    if kind == "linear":
        return in_shape[0] * block.out_features + (block.out_features if block.bias else 0)
    if kind == "conv2d":
        return in_shape[0] * block.out_channels * block.kernel_size**2 + block.out_channels
    if kind == "batchnorm":
        return 4 * in_shape[0]  # weight, bias, running mean and variance
    return 0


def check_spec_budget(spec: ArchitectureSpec, shapes: list[tuple[tuple[int, ...], tuple[int, ...]]]) -> None:
    """Refuse a spec whose classical memory, activations or gate count exceed the bounds, with numbers."""
    from .spec import Quantum, SpecError

    parameters = [_classical_parameters(b, i, o) for b, (i, o) in zip(spec.blocks, shapes)]
    need = 4 * 4 * sum(parameters)  # float32 weights, gradients and two Adam moments
    if need > MAX_CLASSICAL_BYTES:
        block, count = max(zip(spec.blocks, parameters), key=lambda pair: pair[1])
        raise SpecError(f"the classical layers have {sum(parameters):,} parameters, needing about {_gib(need)} for "
                        f"weights, gradients and optimizer state (limit {_gib(MAX_CLASSICAL_BYTES)}); the largest is "
                        f"block {block.id} with {count:,}: reduce its size", block.id, "out_features")
    activations = sum(math.prod(out) for _, out in shapes) + math.prod(spec.input_shape)
    if activations > MAX_ACTIVATIONS_PER_SAMPLE:
        block, (_, out) = max(zip(spec.blocks, shapes), key=lambda pair: math.prod(pair[1][1]))
        raise SpecError(f"one sample flows through {activations:,} values (limit {MAX_ACTIVATIONS_PER_SAMPLE:,}); "
                        f"block {block.id} alone outputs {math.prod(out):,} {out}: use smaller inputs, fewer channels "
                        "or more pooling", block.id, "type")
    gates = [(b, estimated_gates(b)) for b in spec.blocks if isinstance(b, Quantum)]
    total = sum(count for _, count in gates)
    if total > MAX_TOTAL_GATES:
        block, count = max(gates, key=lambda pair: pair[1])
        raise SpecError(f"the quantum blocks have about {total:,} gates together (limit {MAX_TOTAL_GATES:,}); "
                        f"block {block.id} has {count:,}: use fewer qubits, a smaller depth or less entanglement",
                        block.id, "depth")


def check_torch_compile_work(spec: ArchitectureSpec, target: str, device: Any = "cpu") -> None:
    """For the native torch engines on the CPU: refuse circuits whose program would take too long to build
    (on a GPU the same work takes a small fraction of the time, and the engine's memory check applies)."""
    from .spec import SpecError

    if target not in ("torch", "torch-density") or getattr(device, "type", device) != "cpu":
        return
    for block in spec.quantum_blocks():
        gates = estimated_gates(block)
        work = gates * 2**block.qubits
        if work > MAX_TORCH_COMPILE_WORK:
            raise SpecError(f"block {block.id}: about {gates:,} gates on {block.qubits} qubits mean about {work:.2g} "
                            f"amplitude updates per sample to build and run on target {target!r} (limit "
                            f"{MAX_TORCH_COMPILE_WORK:.2g}): use fewer qubits, a smaller depth, linear or ring "
                            "entanglement, or a CUDA-Q GPU target", block.id, "depth")


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"
