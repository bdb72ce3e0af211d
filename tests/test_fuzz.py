"""Property-based fuzzing (issue 10): generated specs, share links, uploads and tampered model files may
only end in the project's own errors, each within a few seconds (hypothesis' deadline).

Each test tags every example with its outcome (`hypothesis.event`); run
`pytest tests/test_fuzz.py --hypothesis-show-statistics` to see the counts per outcome.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from datetime import timedelta

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench import templates
from workbench.errors import user_errors
from workbench.gui import share
from workbench.spec import load_spec

USER_ERRORS = user_errors()
FUZZ = settings(deadline=timedelta(seconds=5), database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

EXTREME_INTS = [0, -1, 2**31, 2**63, 2**70, 10**12, 10**13, 10**100]
EXTREME_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 1e6, 1e7]
ODD_VALUES = ["3", None, 2.5, True, [2], {}, "", "x" * 300]
# A mutation overwrites one field of one block (or of the spec) with an extreme or ill-typed value.
MUTABLE_FIELDS = ["out_features", "out_channels", "kernel_size", "stride", "padding", "shape", "scale", "p", "qubits",
                  "depth", "input_scaling", "encoding", "ansatz", "entanglement", "rotations", "role", "gates",
                  "readout", "type", "id", "bias", "fn", "mode"]
SPEC_FIELDS = ["input_shape", "task", "version", "name", "blocks"]
QUBITS = st.integers(1, 4)


def _quantum(qubits: int, draw) -> dict:
    readout = draw(st.sampled_from([
        {}, {"shots": draw(st.integers(1, 64))}, {"observables": ["Z" + "I" * (qubits - 1)]},
        {"hamiltonian": [{"coeff": draw(st.floats(-2, 2)), "pauli": "X" * qubits}]},
        {"mode": "sampler", "marginal": [0]}]))
    return {"id": "q", "type": "quantum", "qubits": qubits, "readout": readout,
            "encoding": draw(st.sampled_from(["angle", "iqp", "reupload"])),
            "ansatz": draw(st.sampled_from(["hardware_efficient", "strongly_entangling", "basic_entangler"])),
            "depth": draw(st.integers(1, 3)), "input_scaling": draw(st.floats(-3, 3)),
            "entanglement": draw(st.sampled_from(["linear", "ring", "all_to_all", "none"]))}


@st.composite
def skeletons(draw) -> dict:
    """Specs valid by construction: dense, convolutional or custom-circuit hybrids."""
    qubits = draw(QUBITS)
    kind = draw(st.sampled_from(["dense", "conv", "custom", "classical"]))
    head = [{"id": "act", "type": "activation", "fn": draw(st.sampled_from(["relu", "tanh", "scaled_tanh"])),
             "scale": draw(st.floats(0.1, 4))}, {"id": "head", "type": "linear", "out_features": draw(st.integers(1, 4))}]
    if kind == "dense":
        blocks = [{"id": "in", "type": "linear", "out_features": qubits}, _quantum(qubits, draw), *head]
        return {"input_shape": [draw(st.integers(1, 6))], "blocks": blocks}
    if kind == "conv":
        side = draw(st.integers(3, 6))
        blocks = [{"id": "conv", "type": "conv2d", "out_channels": draw(st.integers(1, 3)),
                   "kernel_size": draw(st.integers(1, 3))}, {"id": "pool", "type": "pool"},
                  {"id": "flat", "type": "flatten"}, {"id": "in", "type": "linear", "out_features": qubits},
                  _quantum(qubits, draw), *head]
        return {"input_shape": [1, side, side], "blocks": blocks}
    if kind == "custom":
        gates = [{"gate": "ry", "wires": [w], "source": "input", "index": w} for w in range(qubits)]
        gates += [{"gate": draw(st.sampled_from(["rx", "rz"])), "wires": [draw(st.integers(0, qubits - 1))],
                   "source": "weight", "index": draw(st.integers(0, 5))} for _ in range(draw(st.integers(0, 3)))]
        if qubits > 1:
            gates.append({"gate": "cx", "wires": [0, 1]})
        quantum = {"id": "q", "type": "quantum", "qubits": qubits, "encoding": "none", "ansatz": "custom",
                   "gates": gates}
        return {"input_shape": [qubits], "blocks": [quantum, *head]}
    return {"input_shape": [draw(st.integers(1, 6))], "task": "regression",
            "blocks": [{"id": "a", "type": "linear", "out_features": draw(st.integers(1, 8))},
                       {"id": "bn", "type": "batchnorm"}, {"id": "drop", "type": "dropout", "p": 0.2}, *head]}


def extreme_values() -> st.SearchStrategy:
    return st.one_of(st.sampled_from(EXTREME_INTS), st.sampled_from(EXTREME_FLOATS), st.sampled_from(ODD_VALUES),
                     st.integers(-3, 40), st.lists(st.sampled_from(EXTREME_INTS + [1, 2, 3]), max_size=4))


@st.composite
def specs(draw) -> dict:
    """A valid skeleton with zero to three fields overwritten by extreme or ill-typed values."""
    spec = draw(skeletons())
    for _ in range(draw(st.integers(0, 3))):
        value = draw(extreme_values())
        if draw(st.integers(0, 5)) == 0:
            spec[draw(st.sampled_from(SPEC_FIELDS))] = value
        elif isinstance(spec.get("blocks"), list) and spec["blocks"]:
            target = spec["blocks"][draw(st.integers(0, len(spec["blocks"]) - 1))]
            if isinstance(target, dict):
                field = draw(st.sampled_from(MUTABLE_FIELDS))
                if field == "readout" and isinstance(target.get("readout"), dict):
                    target["readout"][draw(st.sampled_from(["shots", "marginal", "observables", "mode"]))] = value
                elif field == "gates" and isinstance(target.get("gates"), list) and target["gates"] \
                        and isinstance(target["gates"][0], dict):
                    target["gates"][0][draw(st.sampled_from(["index", "wires", "value", "scale", "gate"]))] = value
                else:
                    target[field] = value
    return spec


def _optional(**fields) -> st.SearchStrategy:
    """A dict with each field present or left out."""
    return st.fixed_dictionaries({}, optional=fields)


def sizes(low: int = 1, high: int = 6) -> st.SearchStrategy:
    return st.one_of(st.integers(low, high), st.sampled_from(EXTREME_INTS))


def reals() -> st.SearchStrategy:
    return st.one_of(st.floats(-4, 4), st.sampled_from(EXTREME_FLOATS))


def _as_json_text(spec: dict) -> str:
    return json.dumps(spec)  # NaN/inf become the non-standard NaN/Infinity tokens: refused as spec text


@pytest.mark.slow
@settings(FUZZ, max_examples=2000)  # >= 2,000 generated specs per run
@given(spec=specs(), as_text=st.booleans())
def test_generated_specs_end_in_a_model_or_a_named_error(spec, as_text):
    try:
        architecture = load_spec(_as_json_text(spec) if as_text else spec)
    except USER_ERRORS as err:
        event(f"load_spec: {type(err).__name__}")
        return
    try:
        model = wb.compile(architecture, target="torch")
        out = model(torch.randn(2, *architecture.input_shape))  # two: batchnorm needs more than one
    except USER_ERRORS as err:
        event(f"compile/forward: {type(err).__name__}")
        return
    assert out.shape == (2, *architecture.output_shape())
    event("built and ran")


def _wrap(raw: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode().rstrip("=")


@pytest.mark.slow
@settings(FUZZ, max_examples=500)
@given(text=st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(_wrap),
    st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                 max_leaves=30).map(lambda value: _wrap(json.dumps(value).encode())),
    st.builds(lambda spec, setup: share.encode_state({"spec": spec, "setup": setup}), specs(),
              _optional(dataset=st.sampled_from(["circles", "tfim", "csv", "nope"]),
                        dataset_options=st.dictionaries(st.sampled_from(["n_samples", "noise", "seed", "path", "pca"]),
                                                        sizes(1, 400) | reals(), max_size=3))),
    st.integers(1, 200).map(lambda depth: _wrap(("[" * depth * 100 + "]" * depth * 100).encode())),
))
def test_share_links_end_in_a_network_or_a_share_error(text):
    try:
        payload = share.decode_state(text)
    except share.ShareError:
        event("decode_state: ShareError")
        return
    try:
        load_spec(payload["spec"])
    except USER_ERRORS as err:
        event(f"spec of a decoded link: {type(err).__name__}")
        return
    event("decoded a valid network")


@pytest.mark.slow
@settings(FUZZ, max_examples=500)
@given(data=st.one_of(
    st.binary(max_size=400),
    specs().map(lambda spec: json.dumps(spec).encode()),
    specs().map(lambda spec: json.dumps({"spec": spec}).encode()),
    st.builds(lambda spec, cut: json.dumps(spec)[:cut].encode(), specs(), st.integers(0, 200)),
    st.sampled_from(["9" * 5000, "[" * 50_000, '{"a":' * 10_000, "NaN", "1e999"]).map(str.encode),
))
def test_uploads_end_in_a_spec_or_a_share_error(data):
    try:
        share.parse_upload(data, "upload.json")
    except share.ShareError:
        event("parse_upload: ShareError")
        return
    event("accepted upload")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    model = wb.compile(templates.get("vqc-circles"), seed=0)
    path = model.save(tmp_path_factory.mktemp("fuzz-model") / "model.pt")
    return torch.load(path, weights_only=True)


json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=12)


@pytest.mark.slow
@settings(FUZZ, max_examples=300)
@given(field=st.sampled_from(["spec", "config", "state_dict", "format", "version", "extra"]),
       value=st.one_of(
           json_values,
           json_values.map(json.dumps),
           st.fixed_dictionaries({}, optional={key: json_values for key in (
               "target", "gradient", "device", "precision", "shots", "noise", "target_options", "emulate", "x")}
           ).map(json.dumps),
           specs().map(json.dumps),
           st.dictionaries(st.sampled_from(["blocks.vqc.weight", "blocks.vqc.bias", "x"]),
                           st.sampled_from([torch.zeros(3), torch.zeros(0), torch.full((12,), math.nan),
                                            torch.zeros(2, 2), torch.zeros(12), 1.5]), max_size=3),
           st.sampled_from(["/etc/shadow", "", "{", "[" * 1000]),
       ))
def test_tampered_model_files_end_in_a_model_or_a_named_error(saved_model, field, value, tmp_path_factory):
    payload = dict(saved_model)
    payload[field] = value
    path = tmp_path_factory.getbasetemp() / "tampered.pt"
    torch.save(payload, path)
    try:
        model = wb.load_model(path)
    except USER_ERRORS as err:
        event(f"load_model: {type(err).__name__}")
        return
    assert model.config["target"] == "torch" and model.config["emulate"] is True
    event("loaded")
