"""Issue 10: every bad input gets a named error, no file or link reaches beyond its purpose, a damaged
or read-only store is never used silently. One test per defect found by the hostile-user review."""

from __future__ import annotations

import base64
import json
import os
import pickle
import sqlite3
import subprocess
import sys
import time
import zlib
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

import workbench as wb
from workbench import templates
from workbench.cli import app
from workbench.cli_errors import GuardedGroup
from workbench.data import Dataset, DatasetError, check_dataset_options, load_dataset
from workbench.errors import ModelFileError, OptionError, WorkbenchError
from workbench.gui import share
from workbench.spec import SpecError, load_spec
from workbench.store import RunStore, StoreError
from workbench.training import TrainConfig, Trainer, TrainingError, train

from browser_support import ARGS, CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
DEEP = "[" * 100_000 + "]" * 100_000
HUGE_NUMBER = '{"input_shape": [2], "blocks": [{"id": "a", "type": "linear", "out_features": ' + "9" * 5000 + "}]}"


def small_spec(**quantum) -> dict:
    return {"input_shape": [2], "blocks": [{"id": "q", "type": "quantum", "qubits": 2, **quantum}]}


def one_error_line(result) -> str:
    """The single 'error:' line of a CLI result; fails on a traceback or several lines."""
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and len(lines) == 1, result.output
    return errors[0]


# -- spec and CLI input ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, words", [(DEEP, ["nests brackets", "32"]), (HUGE_NUMBER, ["5,000 digits"])])
def test_deep_nesting_and_huge_numbers_are_spec_errors_everywhere(tmp_path, text, words):
    with pytest.raises(SpecError) as error:
        load_spec(text)
    assert all(word in str(error.value) for word in words)
    path = tmp_path / "spec.json"
    path.write_text(text)
    result = runner.invoke(app, ["describe", str(path)])
    assert result.exit_code == 2 and all(word in one_error_line(result) for word in words)
    with pytest.raises(share.ShareError) as error:
        share.parse_upload(text.encode(), "spec.json")
    assert all(word in str(error.value) for word in words)


@pytest.mark.parametrize("source, words", [
    ("", ["empty"]), (".", ["is a directory"]), ("   ", ["empty"]),
    ("x" * 5000, ["neither JSON", "5,000 characters"]), ("a\nb", ["neither JSON"]),
    ("/dev/zero", ["not a regular file"]),
])
def test_strings_that_are_neither_json_nor_files_are_named(source, words):
    with pytest.raises(SpecError) as error:
        load_spec(source)
    assert all(word in str(error.value) for word in words)


def test_describe_a_directory_exits_2_with_one_line(tmp_path):
    result = runner.invoke(app, ["describe", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a directory" in one_error_line(result)


@pytest.mark.parametrize("spec, field", [
    ({"input_shape": [2], "blocks": [{"id": "a", "type": "linear", "out_features": 10**12}]}, "out_features"),
    ({"input_shape": [2], "blocks": [{"id": "a", "type": "linear", "out_features": 2**63}]}, "out_features"),
    ({"input_shape": [10**13], "blocks": [{"id": "a", "type": "flatten"}]}, "input_shape.0"),
    ({"input_shape": [1, 8, 8], "blocks": [{"id": "a", "type": "conv2d", "out_channels": 10**9}]}, "out_channels"),
    ({"input_shape": [1, 8, 8], "blocks": [{"id": "a", "type": "conv2d", "out_channels": 2, "kernel_size": 10**6}]},
     "kernel_size"),
    (small_spec(encoding="none", role="parameter_input", ansatz="custom",
                gates=[{"gate": "rx", "wires": [0], "source": "weight", "index": 10**12}]), "gates.0.index"),
    (small_spec(readout={"shots": 2**70}), "readout.shots"),
    ({"input_shape": [2], "blocks": [{"id": f"b{i}", "type": "dropout"} for i in range(5000)]}, "blocks"),
])
def test_unbuildable_sizes_are_refused_by_field(spec, field):
    start = time.process_time()
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert error.value.field == field
    assert "less than or equal" in str(error.value) or "at most 1000 items" in str(error.value)
    assert time.process_time() - start < 5


def test_classical_memory_is_estimated_and_refused_with_numbers():
    spec = {"input_shape": [4096], "blocks": [{"id": "wide", "type": "linear", "out_features": 100_000}]}
    with pytest.raises(SpecError) as error:
        load_spec(spec)
    assert "409,700,000 parameters" in str(error.value) and "6.11 GiB" in str(error.value)
    assert error.value.block == "wide"
    conv = {"input_shape": [3, 1000, 1000], "blocks": [{"id": "c", "type": "conv2d", "out_channels": 4000}]}
    with pytest.raises(SpecError, match=r"block c alone outputs 3,984,016,000 \(4000, 998, 998\)"):
        load_spec(conv)


def test_compile_work_is_estimated_and_refused_with_numbers():
    spec = {"input_shape": [18], "blocks": [{"id": "q", "type": "quantum", "qubits": 18, "depth": 18,
                                              "entanglement": "all_to_all"}]}
    start = time.process_time()
    with pytest.raises(SpecError) as error:
        wb.compile(spec, target="torch")
    assert time.process_time() - start < 5
    # 18 angle-encoding gates + 18 layers x (36 rotations + 153 CX) = 3,420 gates, x 2**18 amplitudes.
    assert "3,420 gates on 18 qubits" in str(error.value) and "9e+08" in str(error.value)
    load_spec(spec)  # the spec itself is fine: CUDA-Q targets do not build the dense program


@pytest.mark.parametrize("spec", [
    small_spec(input_scaling=float("nan")), small_spec(input_scaling=float("inf")),
    {"input_shape": [2], "blocks": [{"id": "a", "type": "activation", "fn": "scaled_tanh", "scale": float("inf")}]},
    small_spec(readout={"hamiltonian": [{"coeff": float("nan"), "pauli": "ZZ"}]}),
    small_spec(ansatz="custom", encoding="none", gates=[{"gate": "rx", "wires": [0], "source": "const",
                                                         "value": float("-inf")}]),
])
def test_nan_and_infinity_are_refused_in_every_spec_number(spec):
    with pytest.raises(SpecError, match="finite"):
        load_spec(spec)
    text = json.dumps(spec)  # Python writes NaN / Infinity, which JSON itself does not allow
    with pytest.raises(SpecError, match="is not a number a spec may hold"):
        load_spec(text)
    with pytest.raises(share.ShareError, match="is not a number a spec may hold"):
        share.parse_upload(text.encode(), "up.json")


def test_overflowing_float_text_is_refused():
    with pytest.raises(SpecError, match="too large for a float"):
        load_spec(json.dumps(small_spec(input_scaling=1.0)).replace("1.0", "1e999"))


def test_non_positive_shots_are_refused(tmp_path):
    with pytest.raises(OptionError, match="from 1 to 10,000,000"):
        wb.compile(templates.get("vqc-circles"), shots=-5)
    with pytest.raises(OptionError):
        wb.compile(templates.get("vqc-circles"), shots=0)
    result = runner.invoke(app, ["train", "--template", "vqc-circles", "--shots", "-5", "--epochs", "1",
                                 "--store", str(tmp_path / "runs.sqlite3")])
    assert result.exit_code == 2 and "shots" in one_error_line(result)


def test_a_gpu_target_without_a_gpu_is_refused_before_a_run_is_recorded(tmp_path):
    pytest.importorskip("cudaq")
    from workbench.engine.executors.cudaq_runtime import gpu_count
    from workbench.store import RunStore

    if gpu_count():
        pytest.skip("this machine has a GPU")
    store_path = tmp_path / "runs.sqlite3"
    result = runner.invoke(app, ["train", "--template", "vqc-circles", "--target", "nvidia", "--epochs", "1",
                                 "--store", str(store_path)])
    assert result.exit_code == 2, result.output
    assert "needs an NVIDIA GPU and this machine has none" in one_error_line(result) and "qpp-cpu" in result.output
    assert RunStore(store_path).list_runs() == []  # nothing half-written: no failed run to clean up


def _dataset_with_labels(labels: list[int]) -> Dataset:
    X = torch.randn(len(labels), 2)
    y = torch.tensor(labels)
    return Dataset("labels", "classification", X, y, X[:2], y[:2], (2,), 2, ["a", "b"], ["x1", "x2"], {"name": "t"})


def test_out_of_range_class_label_is_named_before_training():
    with pytest.raises(TrainingError, match=r"include class 7.*outputs 2 class\(es\) \(labels 0..1\)"):
        Trainer(templates.get("vqc-circles"), _dataset_with_labels([0, 1, 7, 1, 0, 1]), TrainConfig(epochs=1))
    with pytest.raises(TrainingError, match="include class -1"):
        Trainer(templates.get("vqc-circles"), _dataset_with_labels([0, 1, -1, 1, 0, 1]), TrainConfig(epochs=1))


def test_a_diverging_run_stops_and_says_to_lower_the_learning_rate():
    result = train(templates.get("tyxonq-3x3"), "digits", lr=1e6, epochs=3, batch_size=64,
                   dataset_options=dict(templates.DEFAULT_DATASETS["tyxonq-3x3"][1]))
    assert result.status == "failed"
    message = result.final["error"]
    assert "diverged" in message and "lower the learning rate (now 1e+06; try 10000)" in message
    assert result.final.get("train_loss") is None  # it stopped, not "completed" with a huge loss
    # A sane learning rate on the same network does not trip the detector.
    assert train(templates.get("tyxonq-3x3"), "digits", lr=0.05, epochs=1, batch_size=64,
                 dataset_options=dict(templates.DEFAULT_DATASETS["tyxonq-3x3"][1])).status == "completed"


def test_nan_loss_message_mentions_a_checkpoint_only_when_one_exists(tmp_path):
    data = _dataset_with_labels([0, 1] * 8)
    data.X_train[3, 0] = float("nan")
    result = Trainer(templates.get("vqc-circles"), data, TrainConfig(epochs=1, batch_size=32)).run()
    assert result.status == "failed" and "no checkpoint was written" in result.final["error"]
    assert "stopped at its last checkpoint" not in result.final["error"]
    store = RunStore(tmp_path / "runs.sqlite3")
    trainer = Trainer(templates.get("vqc-circles"), _dataset_with_labels([0, 1] * 20), TrainConfig(epochs=1),
                      store=store)
    assert trainer.run().status == "completed"  # with a checkpoint at the end of its epoch
    trainer.config.epochs = 2
    trainer.X_train.fill_(float("nan"))
    result = trainer.run()
    step = store.latest_checkpoint(result.run_id)[0]
    assert result.status == "failed" and f"its last checkpoint is at step {step}" in result.final["error"]
    assert store.latest_checkpoint(result.run_id) is not None


@pytest.mark.parametrize("out", ["missing/dir/result.json", "."])
def test_train_out_is_checked_before_training(tmp_path, out):
    store = tmp_path / "runs.sqlite3"
    target = tmp_path / out if out != "." else tmp_path
    result = runner.invoke(app, ["train", "--template", "vqc-circles", "--epochs", "1", "--store", str(store),
                                 "--out", str(target)])
    assert result.exit_code == 2
    assert ("does not exist" if out != "." else "is a directory") in one_error_line(result)
    assert not store.exists() or RunStore(store).list_runs() == []  # nothing was trained


def _store_with_run(path: Path) -> tuple[RunStore, str]:
    store = RunStore(path)
    spec = templates.get("vqc-circles")
    run_id = store.create_run(spec=spec.to_dict(), config=asdict(TrainConfig(epochs=2)),
                              dataset={"name": "circles", "options": {"n_samples": 40}}, environment={})
    store.append_events(run_id, [{"kind": "epoch", "step": 1, "epoch": 0, "loss": 0.5}])
    store.set_status(run_id, "interrupted")
    return store, run_id


def test_runs_export_onto_a_directory_is_a_clear_error(tmp_path):
    store, run_id = _store_with_run(tmp_path / "runs.sqlite3")
    result = runner.invoke(app, ["runs", "export", run_id, "--out", str(tmp_path), "--store", str(store.path)])
    assert result.exit_code == 2 and "is a directory" in one_error_line(result)


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_resuming_from_an_evil_checkpoint_exits_2_and_runs_no_code(tmp_path):
    store, run_id = _store_with_run(tmp_path / "runs.sqlite3")
    marker = tmp_path / "pwned"
    store.save_checkpoint(run_id, step=1, epoch=0, state=pickle.dumps(_Evil(str(marker)), protocol=2))
    result = runner.invoke(app, ["runs", "resume", run_id, "--store", str(store.path)])
    assert result.exit_code == 2
    assert "damaged or is not a workbench checkpoint" in one_error_line(result)
    assert not marker.exists()


def test_unexpected_failures_print_where_the_traceback_went(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LOG_DIR", str(tmp_path / "logs"))
    buggy = typer.Typer(cls=GuardedGroup)

    @buggy.command()
    def divide(n: int) -> None:
        print(1 / n)

    @buggy.command()
    def other() -> None:
        pass

    result = runner.invoke(buggy, ["divide", "0"])
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "unexpected ZeroDivisionError" in line
    logs = list((tmp_path / "logs").glob("workbench-error-*.txt"))
    assert len(logs) == 1 and str(logs[0]) in line
    assert "Traceback" in logs[0].read_text() and "1 / n" in logs[0].read_text()


# -- files and links ------------------------------------------------------------------------------


def _tampered(tmp_path: Path, **fields) -> Path:
    model = wb.compile(templates.get("vqc-circles"), seed=0)
    path = model.save(tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    payload.update(fields)
    torch.save(payload, path)
    return path


def test_a_model_file_cannot_choose_hardware_or_paths(tmp_path):
    config = {"target": "quantinuum", "emulate": False, "device": "cuda", "target_options": {"machine": "H1-1"},
              "gradient": "parameter_shift", "precision": "double", "shots": None, "noise": None}
    loaded = wb.load_model(_tampered(tmp_path, config=json.dumps(config)))
    assert loaded.config["target"] == "torch" and loaded.config["emulate"] is True
    assert loaded.config["device"] == "cpu" and not loaded.config["target_options"]
    # The numeric settings a file may hold are kept.
    assert loaded.config["precision"] == "double" and loaded.gradient_info()["vqc"]["method"] == "parameter_shift"
    # The caller chooses the target.
    assert wb.load_model(tmp_path / "model.pt", target="qpp-cpu").config["target"] == "qpp-cpu"


@pytest.mark.parametrize("fields, words", [
    ({"config": json.dumps({"colour": "red"})}, ["unknown compile setting", "colour"]),
    ({"config": json.dumps([1, 2])}, ["must be a JSON object", "list"]),
    ({"config": json.dumps({"shots": -5})}, ["the saved shots"]),
    ({"config": json.dumps({"precision": "quad"})}, ["precision"]),
    ({"state_dict": {}}, ["holds no weights"]),
    ({"state_dict": {"blocks.vqc.weight": torch.zeros(3)}}, ["wrong shape"]),
    ({"spec": "/etc/shadow"}, ["never a reference"]),
    ({"spec": json.dumps({"input_shape": [2], "blocks": []})}, ["saved spec is not valid"]),
    ({"spec": DEEP}, ["never a reference"]),
    ({"extra": 1}, ["unknown field"]),
])
def test_tampered_model_files_raise_named_errors(tmp_path, fields, words):
    with pytest.raises(ModelFileError) as error:
        wb.load_model(_tampered(tmp_path, **fields))
    assert all(word in str(error.value) for word in words)


def _link(payload: bytes, level: int = 9) -> str:
    return base64.urlsafe_b64encode(zlib.compress(payload, level)).decode().rstrip("=")


def test_a_link_of_nested_brackets_is_a_share_error():
    text = _link(DEEP.encode())
    assert len(text) < 3000
    with pytest.raises(share.ShareError, match="nests brackets"):
        share.decode_state(text)


def test_a_link_that_inflates_hugely_is_refused_quickly():
    bomb = b'{"spec": {"name": "' + b"a" * 40_000_000 + b'"}}'
    text = _link(bomb)
    assert len(text) < share.MAX_STATE_CHARS
    start = time.process_time()
    with pytest.raises(share.ShareError, match="unpacks to more than 512 KiB"):
        share.decode_state(text)
    assert time.process_time() - start < 2


@pytest.mark.parametrize("options, words", [
    ({"n_samples": 10**9}, ["n_samples", "<= 100,000"]),
    ({"noise": 1e300}, ["noise", "<= 100"]),
    ({"seed": 2**70}, ["seed"]),
    ({"pca": 10**8}, ["pca"]),
    ({"path": "/etc/passwd"}, ["cannot read files"]),
    ({"bogus": 1}, ["unknown option 'bogus'"]),
])
def test_link_dataset_options_are_bounded_before_building(options, words):
    text = share.encode_state({"spec": templates.get("vqc-circles").to_dict(),
                               "setup": {"dataset": "circles", "dataset_options": options}})
    with pytest.raises(share.ShareError) as error:
        share.decode_state(text)
    assert all(word in str(error.value) for word in words)


@pytest.mark.parametrize("name, options", [
    ("circles", {"n_samples": 10**9}), ("blobs", {"n_classes": 10**6}), ("tfim", {"n_qubits": 40}),
    ("tfim", {"n_samples": 10**8}), ("tfim", {"J": 1e300}), ("iris", {"limit": 10**12}),
    ("digits", {"downsample": [10**6, 2]}), ("digits", {"binarize": 1e12}), ("iris", {"classes": list(range(1000))}),
    ("csv", {"features": ["x"] * 20_000}), ("csv", {"path": "p" * 10_000}),
])
def test_every_dataset_option_has_an_upper_bound(name, options):
    with pytest.raises(DatasetError):
        check_dataset_options(name, options)
    with pytest.raises(DatasetError):
        load_dataset(name, **options)


def test_an_over_long_link_gets_the_apps_message():
    with pytest.raises(share.ShareError, match="70,000 characters long"):
        share.decode_state("A" * 70_000)


@pytest.mark.slow
def test_the_server_answers_an_over_long_link(tmp_path):
    """Tornado drops requests with headers over 64 KiB; the server reads them so the app shows its message."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WORKBENCH_STORE": str(tmp_path / "runs.sqlite3"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:
            if f":{port}/" in line:
                break
        url = f"http://localhost:{port}/?s={'A' * 70_000}"
        response = urllib.request.urlopen(url, timeout=120)
        assert response.status == 200 and b"bokeh" in response.read().lower()
        if not Path(CHROMIUM).exists():
            return
        from playwright.sync_api import expect, sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page()
                page.goto(url, timeout=120_000)
                expect(page.get_by_text("70,000 characters long").first).to_be_visible(timeout=120_000)
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(30)


# -- the run store --------------------------------------------------------------------------------


def _damage(path: Path) -> None:
    RunStore(path).close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(os.urandom(8192))


def _filled_store(path: Path, runs: int = 6) -> list[str]:
    store = RunStore(path)
    ids = []
    for i in range(runs):
        run_id = store.create_run(spec={"i": i, "pad": "x" * 3000}, config={}, dataset={"name": "circles"},
                                  environment={})
        store.append_events(run_id, [{"kind": "step", "step": s, "epoch": 0, "loss": 1.0, "pad": "y" * 200}
                                     for s in range(100)])
        store.set_status(run_id, "completed", {"test_loss": 0.1})
        ids.append(run_id)
    store.close()
    return ids


def test_a_damaged_store_is_detected_never_written_and_recoverable(tmp_path):
    path = tmp_path / "runs.sqlite3"
    ids = _filled_store(path)
    _damage(path)
    store = RunStore(path)
    assert store.damage
    with pytest.raises(StoreError, match=r"is damaged .*runs recover"):
        store.create_run(spec={}, config={}, dataset={"name": "x"}, environment={})
    before = path.read_bytes()
    result = runner.invoke(app, ["train", "--template", "vqc-circles", "--epochs", "1", "--store", str(path)])
    assert result.exit_code == 2 and "is damaged" in one_error_line(result)
    assert path.read_bytes() == before  # nothing written into the damaged file
    result = runner.invoke(app, ["runs", "check", "--store", str(path)])
    assert result.exit_code == 1 and "is damaged" in result.output and "runs recover" in result.output
    out = tmp_path / "recovered.sqlite3"
    result = runner.invoke(app, ["runs", "recover", "--store", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    recovered = RunStore(out)
    assert not recovered.damage
    got = {run.id for run in recovered.list_runs()}
    assert got and got <= set(ids)
    for run_id in got:  # what was copied is intact
        assert recovered.get_run(run_id).final_metrics == {"test_loss": 0.1}
    assert runner.invoke(app, ["runs", "check", "--store", str(out)]).exit_code == 0


def test_runs_check_passes_a_sound_store(tmp_path):
    _filled_store(tmp_path / "runs.sqlite3", runs=1)
    result = runner.invoke(app, ["runs", "check", "--store", str(tmp_path / "runs.sqlite3")])
    assert result.exit_code == 0 and "ok" in result.output


def _as_read_only(directory: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI with `directory` read-only: a private read-only bind mount when root (root ignores
    file modes), file modes otherwise."""
    command = [sys.executable, "-m", "workbench.cli", *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    if os.geteuid() == 0:
        script = (f"mount --make-rprivate / && mount --bind {directory} {directory} && "
                  f"mount -o remount,ro,bind {directory} && exec \"$@\"")
        command = ["unshare", "-m", "sh", "-c", script, "sh", *command]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    modes = {p: p.stat().st_mode for p in [directory, *directory.iterdir()]}
    try:
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


@pytest.mark.slow
def test_a_read_only_store_is_reported_as_such_and_can_be_read(tmp_path):
    directory = tmp_path / "ro"
    directory.mkdir()
    path = directory / "runs.sqlite3"
    ids = _filled_store(path, runs=2)
    listed = _as_read_only(directory, ["runs", "list", "--store", str(path)])
    assert listed.returncode == 0, listed.stderr
    assert "read-only" in listed.stderr and ids[0] in listed.stdout and ids[1] in listed.stdout
    export = tmp_path / "export.json"
    exported = _as_read_only(directory, ["runs", "export", ids[0], "--out", str(export), "--store", str(path)])
    assert exported.returncode == 0, exported.stderr
    assert json.loads(export.read_text())["run"]["id"] == ids[0]
    trained = _as_read_only(directory, ["train", "--template", "vqc-circles", "--epochs", "1", "--store", str(path)])
    assert trained.returncode == 2
    assert "is read-only" in trained.stderr and "not an SQLite database" not in trained.stderr
    assert "Traceback" not in trained.stderr


def test_errors_share_one_base():
    for error in (SpecError, StoreError, DatasetError, TrainingError, share.ShareError, ModelFileError, OptionError):
        assert issubclass(error, WorkbenchError)
    assert issubclass(SpecError, ValueError) and issubclass(StoreError, RuntimeError)
