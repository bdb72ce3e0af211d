"""Hardware targets in the GUI's run setup, without a browser: the Emulate switch and the iqm mapping upload
reach the run, a shared link can set neither, the cost preview equals the job layer's estimate, and the
Circuit tab's memory figure is the execution plan's."""

from __future__ import annotations

import os
import re
import stat

import pytest

from workbench.engine.plan import ExecutionConfig, resolve
from workbench.gui import share
from workbench.gui.circuit_svg import block_circuit
from workbench.gui.session import TrainingSession
from workbench.gui.run_setup import RunSetup
from workbench.gui.state import BuilderState
from workbench.gui.tabs.circuit import CircuitTab
from workbench.gui.tabs.setup import SetupTab
from workbench.jobs.cost import estimate
from workbench.store import RunStore
from workbench.training import TrainConfig

from test_gui_state import wait_until

LINE3 = b"Number of nodes: 3\nNumber of edges: ?\n0 --> {1}\n1 --> {0, 2}\n2 --> {1}\n"
TINY = {"name": "iqm-tiny", "task": "classification", "input_shape": [2], "blocks": [
    {"type": "quantum", "id": "q", "qubits": 2, "depth": 1, "role": "output", "readout": {"observables": ["ZI"]}}]}


def template_tab(name: str = "vqc-circles") -> tuple[BuilderState, RunSetup, SetupTab]:
    builder, setup = BuilderState(), RunSetup()
    builder.load_template(name)
    setup.use_template_dataset(name)
    return builder, setup, SetupTab(builder, setup)


# ---------------------------------------------------------------------------------------------
# The mapping upload and the Emulate switch


@pytest.mark.parametrize("data, message", [
    (b"x" * 70_000, "at most"),
    (b"\xff\xfe\x00binary", "not a text file"),
    (b"0 --> {1}\n1 --> {0}\n", "Number of nodes"),
    (b"Number of nodes: 2\n0 --> {1}\n1 -> 0\n", "line 3"),
    (b"Number of nodes: 2\n0 --> {1}\n1 --> {0, 5}\n", "qubit 5 is outside the 2 declared nodes"),
])
def test_a_bad_mapping_upload_says_why_and_changes_nothing(data, message):
    setup = RunSetup(target="iqm", shots=100)
    with pytest.raises(share.ShareError, match=message):
        setup.upload_mapping_file(data, "device.txt")
    assert setup.target_options == {}
    assert "needs a qubit mapping" in setup.target_problem()


def test_the_mapping_is_stored_privately_reaches_the_run_and_goes_with_the_session():
    setup = RunSetup(target="iqm", shots=100)
    assert "upload the qubit mapping file" in setup.target_problem()
    assert setup.upload_mapping_file(LINE3, "line.txt") == "qubit mapping line.txt: 3 qubits"
    path = setup.target_options["mapping_file"]
    assert open(path, "rb").read() == LINE3 and "line.txt" not in path
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700  # this server's user only
    assert setup.target_problem() == ""
    config = TrainConfig(**setup.train_config())
    assert config.execution == ExecutionConfig(target="iqm", shots=100, emulate=True,
                                               target_options={"mapping_file": path})
    # Another target does not receive iqm's option; coming back to iqm finds the upload still set.
    setup.target = "quantinuum"
    assert TrainConfig(**setup.train_config()).execution.target_options == {}
    setup.target = "iqm"
    assert setup.execution_config().target_options == {"mapping_file": path}
    setup.release_files()
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path)) and setup.target_options == {}


def test_a_link_cannot_set_target_options_or_turn_emulation_off(tmp_path):
    from workbench.gui.app import WorkbenchApp

    app = WorkbenchApp(store=RunStore(tmp_path / "runs.sqlite3"))
    try:
        app.setup.param.update(target="iqm", shots=100)
        assert any("needs a qubit mapping" in blocker for blocker in app.train_blockers())
        app.setup.upload_mapping_file(LINE3, "line.txt")
        assert app.train_blockers() == []  # the upload alone enables Train
        payload = share.decode_state(app.state_token())
        assert not {"emulate", "target_options"} & set(payload["setup"])  # a link carries no path
        hostile = {"v": 1, "spec": TINY, "setup": {"target": "ionq", "shots": 50, "emulate": False,
                                                   "target_options": {"mapping_file": "/etc/passwd"}}}
        other = WorkbenchApp(store=app.store)
        try:
            assert other.restore(share.encode_state(hostile))
            assert (other.setup.target, other.setup.shots) == ("ionq", 50)
            assert other.setup.emulate is True and other.setup.target_options == {}
            assert "a link cannot send runs to real hardware" in other.restore_message
            assert "a link cannot name files on this machine" in other.restore_message
            assert "emulate=False ignored" in other.restore_message
            # The user sends quantinuum to the real QPU; a link then opened in the same session names ionq:
            # the choice was for quantinuum only, so the link's target runs emulated.
            other.setup.param.update(target="quantinuum")
            other.setup.emulate = False
            assert other.restore(share.encode_state({"v": 1, "spec": TINY, "setup": {"target": "ionq"}}))
            assert (other.setup.target, other.setup.emulate) == ("ionq", True)
        finally:
            other.shutdown()
    finally:
        app.shutdown()


def test_the_hardware_settings_show_for_hardware_targets_only():
    _, setup, tab = template_tab()
    assert not tab.hardware_box.visible
    setup.param.update(shots=100, target="quantinuum")
    assert tab.hardware_box.visible and not tab.mapping_box.visible
    setup.target = "iqm"
    assert tab.hardware_box.visible and tab.mapping_box.visible
    tab.mapping_w.filename, tab.mapping_w.value = "line.txt", b"Number of nodes: 0\n"
    assert "between 1 and" in tab.hardware_note.object and setup.target_options == {}
    tab.mapping_w.filename, tab.mapping_w.value = "line.txt", LINE3
    assert "line.txt: 3 qubits" in tab.hardware_note.object and setup.target_options
    tab.emulate_w.value = False
    assert setup.emulate is False and "real QPU" in tab.hardware_note.object
    setup.target = "torch"
    assert not tab.hardware_box.visible
    setup.release_files()


# ---------------------------------------------------------------------------------------------
# Cost preview and memory figure: the engine's and the job layer's numbers


def test_the_cost_preview_is_the_job_layers_estimate_and_follows_the_settings():
    builder, setup, tab = template_tab()
    assert tab.cost_text == "" and tab.cost_info.object == ""  # torch: nothing to pay for
    setup.param.update(shots=100, target="quantinuum", epochs=3, batch_size=16)
    data = setup.load_dataset()
    expected = estimate(builder.spec, TrainConfig(target="quantinuum", shots=100, epochs=3, batch_size=16),
                        n_train=len(data.X_train), n_test=len(data.X_test)).summary()
    assert tab.cost_text == expected and expected in tab.cost_info.object
    assert "for 3 epochs, 100 shots each" in expected
    setup.shots = 200
    assert tab.cost_text == estimate(builder.spec, TrainConfig(target="quantinuum", shots=200, epochs=3,
                                                               batch_size=16),
                                     n_train=len(data.X_train), n_test=len(data.X_test)).summary()
    before = tab.cost_text
    quantum = next(i for i, b in enumerate(builder.blocks) if b["type"] == "quantum")
    builder.set_field(quantum, "depth", builder.blocks[quantum]["depth"] + 1)  # more angles to shift
    assert tab.cost_text != before and tab.cost_text == estimate(
        builder.spec, TrainConfig(target="quantinuum", shots=200, epochs=3, batch_size=16),
        n_train=len(data.X_train), n_test=len(data.X_test)).summary()


@pytest.mark.parametrize("settings", [{}, {"noise": {"depolarizing": 0.01}, "precision": "double"},
                                      {"gradient": "backprop", "batch_size": 7},
                                      {"target": "qpp-cpu", "gradient": "parameter_shift", "batch_size": 5}])
def test_the_circuit_tabs_memory_figure_is_the_plans(settings):
    from workbench.engine.plan import human_bytes

    builder, setup, _ = template_tab()
    setup.param.update(**settings)
    tab = CircuitTab(builder, setup)
    block = next(b for b in builder.blocks if b["type"] == "quantum")
    circuit, _, quantum = block_circuit(block, 4)
    config = ExecutionConfig(target="torch-density" if "noise" in settings else settings.get("target", "torch"),
                             gradient=settings.get("gradient", "auto"), precision=settings.get("precision", "single"),
                             noise=settings.get("noise"))
    need = resolve(config, quantum, circuit).memory_estimate(setup.batch_size)
    assert f"memory · batch {setup.batch_size}" in tab.circuit_stats.object
    assert human_bytes(need) in tab.circuit_stats.object


# ---------------------------------------------------------------------------------------------
# Runs started from the session layer (worker processes)


@pytest.mark.slow
def test_an_emulated_iqm_run_starts_from_the_gui_with_the_uploaded_mapping(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    setup = RunSetup(target="iqm", shots=50, epochs=1, batch_size=8, dataset_options={"n_samples": 12})
    setup.upload_mapping_file(LINE3, "line.txt")
    path = setup.target_options["mapping_file"]
    session = TrainingSession(store=store)
    try:
        session.start(TINY, setup)
        # Circuits measured on iqm show the mapping was accepted (a whole run would take minutes: stop there).
        wait_until(lambda: (session.refresh(), session.status == "failed" or "shots" in session.message)[1], 300,
                   message="the first circuits on iqm")
        assert session.status == "running" and re.search(r"circuits \d+/\d+ in step 1", session.message), \
            session.message
        record = store.get_run(session.last_run_id)
        assert record.config["target"] == "iqm" and record.config["emulate"] is True
        assert record.config["target_options"] == {"mapping_file": path}
    finally:
        session.shutdown(wait=30)
        setup.release_files()


@pytest.mark.slow
def test_real_hardware_without_credentials_fails_with_one_message(tmp_path, monkeypatch):
    monkeypatch.delenv("IONQ_API_KEY", raising=False)
    setup = RunSetup(target="ionq", shots=50, epochs=1, batch_size=8, emulate=False,
                     dataset_options={"n_samples": 12})
    session = TrainingSession(store=RunStore(tmp_path / "runs.sqlite3"))
    try:
        session.start(TINY, setup)
        wait_until(lambda: (session.refresh(), session.status in ("completed", "failed"))[1], 300,
                   message="the run to end")
        assert session.status == "failed"
        assert "IONQ_API_KEY" in session.message and "emulate=True" in session.message
        assert "Traceback" not in session.message
    finally:
        session.shutdown(wait=30)


def test_uploads_of_a_live_server_whose_pid_is_not_visible_here_stay_until_it_ends(tmp_path):
    # A server in another PID namespace sharing /tmp: the pid in its directory's name means nothing here (in
    # containers it is often the same pid as ours); only its lock tells that it lives.
    import subprocess
    import sys

    from workbench.gui.session_files import LOCK_NAME, PREFIX, SessionFiles

    holder = ("import sys; from workbench.gui.session_files import _locked_directory; "
              "path, lock = _locked_directory(); print(path, flush=True); sys.stdin.read()")
    other = subprocess.Popen([sys.executable, "-c", holder],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    directory = other.stdout.readline().strip()
    unseen = directory.replace(f"{PREFIX}{other.pid}-", f"{PREFIX}{os.getpid()}-")
    os.rename(directory, unseen)  # the lock file stays open (and locked) in the other process
    upload = os.path.join(unseen, "mapping-1.txt")
    open(upload, "w").close()
    first, second = SessionFiles(), SessionFiles()
    try:
        first.store_mapping(LINE3, "a.txt")
        assert os.path.exists(upload)  # its server lives: kept
        other.stdin.close()
        assert other.wait(60) == 0
        assert os.path.exists(os.path.join(unseen, LOCK_NAME))
        second.store_mapping(LINE3, "b.txt")  # the next upload anywhere clears what nobody holds
        assert not os.path.exists(unseen)
    finally:
        first.close()
        second.close()
        other.kill()


def test_uploads_of_a_killed_server_go_when_the_next_one_stores_a_file():
    import subprocess
    import sys
    import tempfile

    from workbench.gui.session_files import PREFIX, SessionFiles

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tempfile.mkdtemp(prefix=f"{PREFIX}{int(dead.stdout)}-")  # a server that ended without cleaning up
    open(os.path.join(orphan, "mapping-1.txt"), "w").close()
    live = SessionFiles()
    kept, _ = live.store_mapping(LINE3, "a.txt")  # another session of this (running) server
    files = SessionFiles()
    files.store_mapping(LINE3, "b.txt")
    assert not os.path.exists(orphan) and os.path.exists(kept)
    files.close()
    live.close()
    assert not os.path.exists(kept)
