"""The qubit mapping file that CUDA-Q's `iqm` target needs (`target_options={'mapping_file': PATH}`).

CUDA-Q reads it in its qubit-mapping pass (`qubit-mapping{device=file(...)}` in targets/iqm.yml): a header
with the node count, then one line per qubit listing the qubits it couples to. A 3-qubit line:

    Number of nodes: 3
    Number of edges: ?
    0 --> {1}
    1 --> {0, 2}
    2 --> {1}

`parse_mapping` checks a file's text against that format before it is stored, so a wrong upload gets one
message here instead of a compiler failure inside a training job.

Example:
    >>> parse_mapping("Number of nodes: 2\\nNumber of edges: ?\\n0 --> {1}\\n1 --> {0}\\n")
    2
"""

from __future__ import annotations

import re

from .targets import TargetError

MAX_NODES = 4096  # far above any QPU's qubit count: a larger header is not a device description
MAX_MAPPING_CHARS = 64 * 1024  # a MAX_NODES device with a few couplers per qubit fits well within this
_HEADER = re.compile(r"Number of nodes:\s*(\d+)$")
_EDGES = re.compile(r"Number of edges:\s*(\d+|\?)$")
_NODE = re.compile(r"(\d+)\s*-->\s*\{\s*((?:\d+\s*(?:,\s*\d+\s*)*)?)\}$")
FORMAT = "'Number of nodes: N', 'Number of edges: ?', then one 'i --> {j, k}' line per qubit"
FILE_OPTIONS = ("mapping_file",)  # target options whose value is the path of a file CUDA-Q reads


def parse_mapping(text: str, name: str = "the mapping file") -> int:
    """The number of qubits the mapping describes; TargetError naming the first line that does not fit.

    Args:
        text: the file's content.
        name: how messages refer to the file.
    """
    if len(text) > MAX_MAPPING_CHARS:
        raise TargetError(f"{name} is longer than a device description ({MAX_MAPPING_CHARS:,} characters at most)")
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines or not (header := _HEADER.match(lines[0][1])):
        raise TargetError(f"{name} does not start with 'Number of nodes: N': CUDA-Q's iqm mapping file is {FORMAT}")
    nodes = int(header.group(1))
    if not 1 <= nodes <= MAX_NODES:
        raise TargetError(f"{name} declares {nodes} nodes: a device has between 1 and {MAX_NODES} qubits")
    body = lines[1:]
    if body and _EDGES.match(body[0][1]):
        body = body[1:]
    for number, line in body:
        match = _NODE.match(line)
        if not match:
            raise TargetError(f"{name}, line {number}: {line[:60]!r} is not a 'i --> {{j, k}}' line ({FORMAT})")
        wires = [int(match.group(1))] + [int(w) for w in match.group(2).replace(",", " ").split()]
        outside = [w for w in wires if w >= nodes]
        if outside:
            raise TargetError(f"{name}, line {number}: qubit {outside[0]} is outside the {nodes} declared nodes")
    return nodes


def read_mapping(path: str, target: str = "iqm") -> str:
    """The text of the mapping file at `path`, checked; TargetError naming the path when it cannot be read or
    does not fit the format."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_MAPPING_CHARS + 1)
    except (OSError, UnicodeDecodeError) as err:
        raise TargetError(f"target {target!r}: mapping_file {path!r} cannot be read ({err}): pass the path of "
                          "the device's qubit mapping text file") from None
    parse_mapping(text, f"mapping_file {path!r}")
    return text
