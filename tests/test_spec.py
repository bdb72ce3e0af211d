"""The spec: JSON round trips, every named error with its block, field and fix, and model save/load."""

from __future__ import annotations

import io
import json
import os
import pickle

import numpy as np
import pytest
import torch

import workbench as wb
from workbench import templates
from workbench.spec import ArchitectureSpec, SpecError, load_spec


def q(**fields) -> dict:
    return {"type": "quantum", "id": "q1", **fields}


def lin(block_id: str, out: int) -> dict:
    return {"type": "linear", "id": block_id, "out_features": out}


# ------------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("name", templates.names())
def test_template_round_trips_through_json_and_dict(name, tmp_path):
    spec = templates.get(name)
    text = spec.to_json()
    assert json.loads(text)["version"] == 1
    again = load_spec(text)
    assert again == spec
    assert again.to_json() == text
    assert load_spec(spec.to_dict()) == spec
    path = tmp_path / f"{name}.json"
    path.write_text(text)
    assert load_spec(path) == spec
    assert load_spec(str(path)) == spec
    # A loaded spec is a copy, not the same object.
    copy = load_spec(spec)
    assert copy == spec and copy is not spec


@pytest.mark.parametrize("name", templates.names())
def test_template_compiles_and_output_matches_the_spec_shape(name):
    spec = templates.get(name)
    model = wb.compile(spec, seed=0)
    x = torch.rand(3, *spec.input_shape)
    out = model(x)
    assert tuple(out.shape) == (3, *spec.output_shape())
    assert torch.isfinite(out).all()
    text = model.describe(file=io.StringIO())
    for block in spec.blocks:
        assert block.id in text
    info = model.gradient_info()
    assert set(info) == {b.id for b in spec.quantum_blocks()}
    assert all(v["method"] == "adjoint" and v["reason"] for v in info.values())


def test_shapes_are_inferred_per_block():
    spec = load_spec({"input_shape": [1, 8, 8], "blocks": [
        {"type": "conv2d", "id": "c", "out_channels": 2, "kernel_size": 3},
        {"type": "pool", "id": "p", "kernel_size": 2},
        {"type": "flatten", "id": "f"},
        lin("fc", 3),
        {"type": "activation", "id": "a", "fn": "scaled_tanh"},
        q(qubits=3, readout={"mode": "sampler", "marginal": [0, 2]}),
    ]})
    assert spec.shapes() == [((1, 8, 8), (2, 6, 6)), ((2, 6, 6), (2, 3, 3)), ((2, 3, 3), (18,)), ((18,), (3,)),
                             ((3,), (3,)), ((3,), (4,))]


# ------------------------------------------------------------------------------------------------
# Named errors: (spec, block, field, words that must appear in the message)

BAD_SPECS = {
    "unknown block type": (
        {"input_shape": [4], "blocks": [{"type": "lstm", "id": "rnn"}]},
        "rnn", "type", ["block rnn", "'lstm'", "use one of", "linear", "quantum"]),
    "missing block type": (
        {"input_shape": [4], "blocks": [{"id": "mystery"}]},
        "mystery", "type", ["block mystery", "missing block type", "use one of"]),
    "duplicate ids": (
        {"input_shape": [4], "blocks": [lin("a", 4), lin("a", 4)]},
        "a", "id", ["block a", "used twice", "own id"]),
    "linear on unflattened input": (
        {"input_shape": [1, 8, 8], "blocks": [lin("fc", 4)]},
        "fc", "type", ["block fc", "(1, 8, 8)", "add a flatten block"]),
    "quantum on unflattened input": (
        {"input_shape": [1, 2, 2], "blocks": [q(qubits=4)]},
        "q1", "encoding", ["block q1", "flat features", "add a flatten block"]),
    "bad Pauli character": (
        {"input_shape": [3], "blocks": [q(qubits=3, readout={"observables": ["ZIQ"]})]},
        "q1", "readout.observables", ["block q1", "'ZIQ'", "I/X/Y/Z", "3 characters", "'ZII'"]),
    "Pauli string too short": (
        {"input_shape": [3], "blocks": [q(qubits=3, readout={"observables": ["ZZ"]})]},
        "q1", "readout.observables", ["'ZZ'", "3 characters"]),
    "lowercase Pauli": (
        {"input_shape": [2], "blocks": [q(qubits=2, readout={"observables": ["zz"]})]},
        "q1", "readout.observables", ["'zz'", "I/X/Y/Z"]),
    "bad Hamiltonian term": (
        {"input_shape": [2], "blocks": [q(qubits=2, readout={"hamiltonian": [{"coeff": 1.0, "pauli": "XA"}]})]},
        "q1", "readout.hamiltonian", ["'XA'", "I/X/Y/Z"]),
    "empty Hamiltonian": (
        {"input_shape": [2], "blocks": [q(qubits=2, readout={"hamiltonian": []})]},
        "q1", "readout.hamiltonian", ["empty", "at least one"]),
    "observables and Hamiltonian": (
        {"input_shape": [2], "blocks": [q(qubits=2, readout={"observables": ["ZI"],
                                                             "hamiltonian": [{"coeff": 1, "pauli": "ZZ"}]})]},
        "q1", "readout", ["not both"]),
    "sampler with observables": (
        {"input_shape": [2], "blocks": [q(qubits=2, readout={"mode": "sampler", "observables": ["ZI"]})]},
        "q1", "readout.mode", ["sampler", "estimator"]),
    "marginal qubit out of range": (
        {"input_shape": [2], "blocks": [q(qubits=2, readout={"mode": "sampler", "marginal": [2]})]},
        "q1", "readout.marginal", ["qubit 2", "2 qubits"]),
    "marginal qubit twice": (
        {"input_shape": [2], "blocks": [q(qubits=2, readout={"mode": "sampler", "marginal": [1, 1]})]},
        "q1", "readout.marginal", ["twice", "each qubit once"]),
    "output role not last": (
        {"input_shape": [4], "blocks": [q(qubits=4, role="output"), lin("head", 2)]},
        "q1", "role", ["block q1", "must be the last block", "role='intermediate'"]),
    "parameter_input with wrong feature count": (
        {"input_shape": [1], "blocks": [lin("to_params", 10),
                                        q(qubits=2, role="parameter_input", encoding="none", depth=2)]},
        "q1", "role", ["block q1", "needs 8 features", "block to_params gives 10", "set to_params out_features=8"]),
    "parameter_input with an encoding": (
        {"input_shape": [8], "blocks": [q(qubits=2, role="parameter_input", encoding="angle", depth=2)]},
        "q1", "encoding", ["encoding='none'"]),
    "encoding none without parameter input": (
        {"input_shape": [2], "blocks": [q(qubits=2, encoding="none")]},
        "q1", "encoding", ["role='parameter_input'"]),
    "amplitude encoding too small": (
        {"input_shape": [20], "blocks": [q(qubits=4, encoding="amplitude")]},
        "q1", "qubits", ["at most 16 features", "gives 20", "use 5 qubits"]),
    "dense angle feature count": (
        {"input_shape": [3], "blocks": [q(qubits=2, encoding="dense_angle")]},
        "q1", "encoding", ["dense angle encoding needs 4 features", "the input gives 3", "input_shape=[4]"]),
    "custom without gates": (
        {"input_shape": [2], "blocks": [q(qubits=2, ansatz="custom")]},
        "q1", "gates", ["gate list"]),
    "custom gate on a missing qubit": (
        {"input_shape": [2], "blocks": [q(qubits=2, ansatz="custom", gates=[{"gate": "cx", "wires": [0, 2]}])]},
        "q1", "gates.0.wires", ["gates[0]", "outside 0..1"]),
    "custom rotation without source": (
        {"input_shape": [2], "blocks": [q(qubits=2, ansatz="custom", gates=[{"gate": "rx", "wires": [0]}])]},
        "q1", "gates.0.source", ["set source"]),
    "custom gate reading a missing input": (
        {"input_shape": [2], "blocks": [q(qubits=2, ansatz="custom", gates=[
            {"gate": "rx", "wires": [0], "source": "weight", "index": 0},
            {"gate": "ry", "wires": [1], "source": "input", "index": 5}])]},
        "q1", "gates.1.index", ["gates[1]", "input feature 5", "index below 2"]),
    "unknown custom gate": (
        {"input_shape": [2], "blocks": [q(qubits=2, ansatz="custom", gates=[{"gate": "toffoli", "wires": [0]}])]},
        "q1", "gates.0.gate", ["block q1", "gates.0.gate"]),
    "qubits out of range": (
        {"input_shape": [2], "blocks": [q(qubits=0)]},
        "q1", "qubits", ["block q1", "qubits", "greater than or equal to 1"]),
    "too many qubits": (
        {"input_shape": [2], "blocks": [q(qubits=31)]},
        "q1", "qubits", ["less than or equal to 30"]),
    "unknown block field": (
        {"input_shape": [4], "blocks": [q(qubits=4, colour="red")]},
        "q1", "colour", ["block q1", "colour"]),
    "energy task not ending in a quantum block": (
        {"task": "energy", "input_shape": [4], "blocks": [q(qubits=4), lin("head", 1)]},
        "head", "type", ["block head", "energy", "quantum block last"]),
    "conv2d on flat input": (
        {"input_shape": [16], "blocks": [{"type": "conv2d", "id": "conv", "out_channels": 2}]},
        "conv", "type", ["block conv", "(channels, height, width)"]),
    "kernel larger than input": (
        {"input_shape": [1, 2, 2], "blocks": [{"type": "conv2d", "id": "conv", "out_channels": 2,
                                               "kernel_size": 3}]},
        "conv", "kernel_size", ["larger than the 2x2 input"]),
    "reshape to the wrong size": (
        {"input_shape": [6], "blocks": [{"type": "reshape", "id": "r", "shape": [4, 2]}]},
        "r", "shape", ["cannot reshape", "6 values"]),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_bad_spec_gives_a_named_error(case):
    spec, block, field, words = BAD_SPECS[case]
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    err = info.value
    assert (err.block, err.field) == (block, field), str(err)
    for word in words:
        assert word in str(err), (word, str(err))


def test_the_issue_example_message_exactly():
    spec = {"input_shape": [8], "blocks": [lin("fc1", 16), q(qubits=4, encoding="angle")]}
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert str(info.value) == ("block q1: angle encoding needs 4 features but block fc1 gives 16: "
                               "set fc1 out_features=4 or use amplitude encoding")
    assert (info.value.block, info.value.field) == ("q1", "encoding")


def test_the_fix_the_message_names_works():
    spec = {"input_shape": [8], "blocks": [lin("fc1", 16), q(qubits=4, encoding="angle")]}
    spec["blocks"][0]["out_features"] = 4  # "set fc1 out_features=4"
    assert load_spec(spec).output_shape() == (4,)
    spec["blocks"][0]["out_features"] = 16
    spec["blocks"][1]["encoding"] = "amplitude"  # "or use amplitude encoding"
    assert load_spec(spec).output_shape() == (4,)


def test_feature_count_message_names_the_input_when_there_is_no_previous_block():
    with pytest.raises(SpecError, match=r"angle encoding needs 3 features but the input gives 5: set input_shape=\[3\]"):
        load_spec({"input_shape": [5], "blocks": [q(qubits=3)]})


def test_validation_does_not_depend_on_construction_path():
    bad = {"input_shape": [1, 8, 8], "blocks": [lin("fc", 4)]}
    with pytest.raises(SpecError):
        load_spec(bad)
    spec = ArchitectureSpec.model_validate(bad)  # field-valid, shape-invalid
    problems = spec.validate_all()
    assert len(problems) == 1 and problems[0].block == "fc"
    with pytest.raises(SpecError):
        wb.compile(spec)


@pytest.mark.parametrize("text, words", [
    ('{"input_shape": [4], "blocks": [', ["not valid JSON", "line 1"]),
    ('{"input_shape": [4] "blocks": []}', ["not valid JSON", "delimiter"]),
    ("[1, 2", ["not valid JSON"]),
    ("[]", ["JSON object", "input_shape", "blocks"]),
])
def test_malformed_json_text(text, words):
    with pytest.raises(SpecError) as info:
        load_spec(text)
    for word in words:
        assert word in str(info.value)


def test_malformed_json_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"input_shape": [4], "blocks": [}')
    with pytest.raises(SpecError, match="broken.json is not a JSON spec"):
        load_spec(path)
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(SpecError, match="is not a JSON spec"):
        load_spec(path)


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_wrong_spec_version(version):
    spec = templates.get("vqc-circles").to_dict()
    spec["version"] = version
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert "version" in str(info.value) and "reads version 1" in str(info.value)
    assert info.value.field == "version"


def test_spec_file_not_found(tmp_path):
    missing = tmp_path / "nope" / "spec.json"
    with pytest.raises(SpecError, match="does not exist: check the path"):
        load_spec(missing)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(str(missing))


# ------------------------------------------------------------------------------------------------
# Save and load


def _vqe_like_spec() -> dict:
    return {"name": "saved", "task": "regression", "input_shape": [3], "blocks": [
        lin("fc", 4), {"type": "activation", "id": "act", "fn": "scaled_tanh"},
        q(qubits=2, encoding="dense_angle", depth=2,
          readout={"hamiltonian": [{"coeff": 0.5, "pauli": "ZZ"}, {"coeff": -1.25, "pauli": "XY"}]}),
        lin("head", 2)]}


@pytest.mark.parametrize("precision", ["single", "double"])
def test_save_and_load_keep_spec_settings_and_weights(tmp_path, precision):
    model = wb.compile(_vqe_like_spec(), precision=precision, gradient="parameter_shift", seed=3)
    x = torch.randn(5, 3)
    before = model(x).detach()
    path = model.save(tmp_path / "sub" / "model.pt")
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    loaded = wb.load_model(path)
    assert loaded.spec == model.spec
    assert loaded.config == model.config
    assert loaded.gradient_info() == model.gradient_info()
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and v1.dtype == v2.dtype and torch.equal(v1, v2)
    assert torch.equal(loaded(x), before)
    # A different seed gives different weights, so the equality above is not a coincidence.
    other = wb.compile(_vqe_like_spec(), precision=precision, gradient="parameter_shift", seed=4)
    assert not torch.equal(other(x), before)


def test_load_with_overrides_changes_only_the_setting(tmp_path):
    model = wb.compile(templates.get("vqc-circles"), seed=1)
    path = model.save(tmp_path / "m.pt")
    loaded = wb.load_model(path, gradient="parameter_shift")
    assert loaded.gradient_info()["vqc"]["method"] == "parameter_shift"
    x = torch.randn(4, 2)
    torch.testing.assert_close(loaded(x), model(x))


class _Payload:
    """An object whose unpickling runs code: loading must refuse it, never run it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_loading_a_pickle_with_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        pickle.dump(_Payload(str(marker)), fh, protocol=2)
    with pytest.raises(ValueError, match="not a saved workbench model"):
        wb.load_model(evil)
    assert not marker.exists()
    # Hidden inside an otherwise well-formed payload, too.
    sneaky = tmp_path / "sneaky.pt"
    model = wb.compile(templates.get("vqc-circles"))
    torch.save({"format": "workbench-model", "version": 1, "spec": model.spec.to_json(), "config": "{}",
                "state_dict": {}, "extra": _Payload(str(marker))}, sneaky)
    with pytest.raises(ValueError, match="not a saved workbench model"):
        wb.load_model(sneaky)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"just some text\n", b"", json.dumps({"format": "workbench-model"}).encode()])
def test_loading_a_file_that_is_not_a_model(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a saved workbench model"):
        wb.load_model(path)


def test_loading_other_torch_files(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a saved workbench model"):
        wb.load_model(path)
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="not a saved workbench model"):
        wb.load_model(path)
    torch.save({"format": "workbench-model", "version": 1}, path)
    with pytest.raises(ValueError, match="incomplete"):
        wb.load_model(path)


def test_loading_a_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        wb.load_model(tmp_path / "missing.pt")


def test_model_rejects_input_of_the_wrong_shape():
    model = wb.compile(templates.get("vqc-circles"))
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 2\)"):
        model(torch.zeros(3, 5))


def test_spec_weights_are_plain_numbers_in_json():
    spec = templates.get("vqe-parameter-input")
    data = json.loads(spec.to_json())
    quantum = [b for b in data["blocks"] if b["type"] == "quantum"][0]
    assert quantum["role"] == "parameter_input" and quantum["encoding"] == "none"
    n_params = quantum["qubits"] * len(quantum["rotations"]) * quantum["depth"]
    assert np.prod(spec.shapes()[-1][0]) == n_params
