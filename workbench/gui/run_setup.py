"""The run setup of the GUI, free of any widget: dataset, optimiser, execution target, gradient method, noise
and the hardware settings (Emulate, the uploaded qubit mapping) of the next training run.

Like the builder state (`state.py`), it holds no engine rules: targets, methods, problems and the dataset fit
come from the engine (`resolve`, the target table, the method registry) and the trainer's own checks.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any

import param

from .. import templates
from ..engine.block import quantum_block
from ..engine.gradients import GradientError, method_names
from ..engine.plan import ExecutionConfig, resolve, with_noise_engine
from ..engine.targets import TARGETS, TargetError
from ..spec import SpecError, load_spec
from ..training.trainer import UNTIL_PAUSED
from .session_files import SessionFiles
from .state import shape_text


NOISE_CHANNELS = ("depolarizing", "depolarizing2", "amplitude_damping", "bit_flip", "phase_flip", "readout")
NOISE_LIMITS = {"depolarizing": 0.75, "depolarizing2": 15 / 16}


@lru_cache(maxsize=1)
def _engine_targets() -> tuple[tuple[str, str], ...]:
    from ..engine.executors.cudaq_runtime import available_targets

    return tuple(available_targets().items())


def target_choices() -> list[dict]:
    """Every target with a label, whether it can run here and why not: torch engines first, then CUDA-Q."""
    from ..engine.targets import TARGETS, names

    choices = [{"name": name, "label": TARGETS[name].label, "reason": "", "kind": "torch"} for name in names("torch")]
    for name, reason in _engine_targets():
        target = TARGETS.get(name)
        kind = target.family if target is not None else "other"
        label = target.label if target is not None else f"CUDA-Q · {name}"
        choices.append({"name": name, "label": label, "reason": reason, "kind": kind})
    return choices


def _is_hardware(target: str) -> bool:
    from ..engine.targets import TARGETS

    return target in TARGETS and TARGETS[target].hardware


@lru_cache(maxsize=16)
def _load_dataset_cached(name: str, options_json: str):
    from ..data import load_dataset

    return load_dataset(name, **json.loads(options_json))


class RunSetup(param.Parameterized):
    """Dataset, optimiser and execution settings of the next training run."""

    dataset = param.String(default="circles")
    dataset_options = param.Dict(default={})
    optimizer = param.Selector(default="adam", objects=["adam", "sgd", "rmsprop", "lbfgs"])
    lr = param.Number(default=0.05, bounds=(1e-6, 10.0))
    epochs = param.Integer(default=20, bounds=(1, 100000))
    until_paused = param.Boolean(default=False, doc="Ignore epochs: train until Pause or Stop (playground).")
    batch_size = param.Integer(default=32, bounds=(1, 100000))
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1))
    target = param.String(default="torch")
    gradient = param.Selector(default="auto", objects=list(method_names()))
    shots = param.Integer(default=0, bounds=(0, 10**7), doc="0 means exact expectations.")
    noise = param.Dict(default={}, doc="Noise channel -> probability (only non-zero ones).")
    precision = param.Selector(default="single", objects=["single", "double"])
    emulate = param.Boolean(default=True, doc="Hardware targets run in CUDA-Q's local emulation (no QPU, no cost).")
    target_options = param.Dict(default={}, doc="Options of the hardware target, e.g. the iqm mapping_file path.")

    # Settings a shared link never carries nor sets: a file or link is data, it never selects hardware,
    # credentials or paths. They are made here, in this session (an upload, the Emulate switch).
    LOCAL_FIELDS = ("emulate", "target_options")
    FIELDS = ("dataset", "dataset_options", "optimizer", "lr", "epochs", "until_paused", "batch_size", "seed", "target",
              "gradient", "shots", "noise", "precision", *LOCAL_FIELDS)
    LINK_REFUSALS = {
        "emulate": "setting emulate={value!r} ignored: a link cannot send runs to real hardware; switch Emulate off "
                   "in Run setup yourself",
        "target_options": "setting target_options ignored: a link cannot name files on this machine; upload the "
                          "qubit mapping file in Run setup",
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.files = SessionFiles()

    @param.depends("target", watch=True)
    def _rearm_emulation(self) -> None:
        """Real hardware is chosen for one target at a time: any change of target (a click, a link, a restored
        session) goes back to emulation, so no path reaches a QPU the user did not switch on for."""
        self.emulate = True

    # -- serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The settings a shared link carries (not the local ones)."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self.FIELDS if name not in self.LOCAL_FIELDS}

    def update_from(self, data: dict) -> list[str]:
        """Apply known settings from `data`; returns messages for values that were ignored."""
        problems = []
        values = {}
        for name, value in (data or {}).items():
            if name == "emulate" and value is True:
                continue  # emulation is the default and always safe
            if name in self.LOCAL_FIELDS:
                problems.append(self.LINK_REFUSALS[name].format(value=value))
                continue
            if name not in self.FIELDS:
                problems.append(f"unknown setting {name!r} ignored")
                continue
            try:
                RunSetup(**{name: value})  # validate on a scratch copy: a bad value must not half-apply
            except Exception as err:  # param raises ValueError/TypeError on bad values
                problems.append(f"setting {name}={value!r} ignored: {err}")
                continue
            values[name] = copy.deepcopy(value)
        if "noise" in values:
            values["noise"] = {k: float(v) for k, v in values["noise"].items() if k in NOISE_CHANNELS and v}
        self.param.update(**values)
        return problems

    def follow_spec(self, spec: dict) -> bool:
        """After a spec was loaded from a file or link: if it is a starter template's network and the current
        dataset does not fit it, switch to the template's own dataset. True if the dataset changed."""
        name = (spec or {}).get("name")
        if name not in templates.DEFAULT_DATASETS:
            return False
        problem, _ = self.dataset_problem(spec)
        if not problem:
            return False
        self.use_template_dataset(name)
        return True

    def use_template_dataset(self, template: str) -> None:
        name, options = templates.DEFAULT_DATASETS.get(template, (self.dataset, {}))
        self.param.update(dataset=name, dataset_options=copy.deepcopy(options))

    # -- derived ----------------------------------------------------------------------------------
    @property
    def noisy(self) -> bool:
        return any(v > 0 for k, v in self.noise.items() if k != "readout")

    @property
    def hardware(self) -> bool:
        return _is_hardware(self.target)

    @property
    def target_needs(self) -> tuple[str, ...]:
        """Options the chosen target cannot run without (the target table's `needs`, e.g. mapping_file)."""
        return TARGETS[self.target].needs if self.target in TARGETS else ()

    def upload_mapping_file(self, data: bytes | str, filename: str = "the mapping file") -> str:
        """Check an uploaded qubit mapping (target iqm), keep it in this session's private directory and use it.

        Returns the line the run setup shows; raises ShareError (what is wrong with the file) and changes nothing.
        """
        path, qubits = self.files.store_mapping(data, filename)
        self.target_options = {**self.target_options, "mapping_file": path}
        return f"qubit mapping {filename}: {qubits} qubits"

    def release_files(self) -> None:
        """Delete this session's uploaded files (the session has ended) and forget the options naming them."""
        self.files.close()
        self.target_options = {}

    def _target_options(self) -> dict:
        """The target options the chosen target takes (an iqm mapping stays set while another target is tried)."""
        return {k: v for k, v in self.target_options.items() if k in self.target_needs}

    def load_dataset(self):
        """The dataset with its options (cached per session-independent key); raises DatasetError."""
        return _load_dataset_cached(self.dataset, json.dumps(self.dataset_options, sort_keys=True))

    def train_config(self) -> dict:
        """Keyword arguments for TrainConfig."""
        return {"epochs": UNTIL_PAUSED if self.until_paused else self.epochs, "batch_size": self.batch_size, "optimizer": self.optimizer, "lr": self.lr,
                "seed": self.seed, "target": self.target, "gradient": self.gradient,
                "shots": self.shots or None, "noise": dict(self.noise) or None, "precision": self.precision,
                "emulate": self.emulate, "target_options": self._target_options()}

    def target_problem(self) -> str:
        """Why the chosen target cannot run this setup here ('' when it can)."""
        for choice in target_choices():
            if choice["name"] == self.target:
                if choice["reason"]:
                    return f"target {self.target}: {choice['reason']}"
                break
        else:
            return f"unknown target {self.target!r}"
        if self.hardware and not self.shots:
            return (f"target {self.target} emulates hardware, which only measures: set Shots above 0 "
                    "(e.g. 1000), or pick a simulator for exact expectations")
        for problem in resolve(self.execution_config(), quantum_block(qubits=1)).problems:
            if issubclass(problem.error, TargetError):  # e.g. iqm without its mapping file
                missing = [option for option in self.target_needs if not self.target_options.get(option)]
                hint = "; here: upload the qubit mapping file below the target" if "mapping_file" in missing else ""
                return problem.message + hint
        engine = with_noise_engine(self.execution_config()).target
        if self.noisy and engine in TARGETS and not TARGETS[engine].density_matrix:
            return (f"gate noise needs a density-matrix simulator, but {self.target} simulates pure states: choose "
                    "density-matrix-cpu or the torch engine, or set the noise to 0")
        return ""

    def execution_config(self) -> ExecutionConfig:
        """The execution settings of this setup, as compile and training take them."""
        return ExecutionConfig(target=self.target, gradient=self.gradient, shots=self.shots or None,
                               noise=dict(self.noise) or None, precision=self.precision, emulate=self.emulate,
                               target_options=self._target_options())

    def gradient_explanation(self, spec: dict) -> dict:
        """What gradient each quantum block will use and why ({ok, lines: [{block, method, reason}], error})."""
        quantum = [b for b in (spec or {}).get("blocks", []) if b.get("type") == "quantum"]
        problem = self.target_problem()
        if problem:
            return {"ok": False, "lines": [], "error": problem}
        if not quantum:
            return {"ok": True, "lines": [], "error": None,
                    "note": "no quantum block: classical layers use torch autograd"}
        lines = []
        config = with_noise_engine(self.execution_config())
        for block in quantum:
            try:
                plan = resolve(config, quantum_block(**block))
            except (SpecError, ValueError) as err:
                return {"ok": False, "lines": lines, "error": str(err)}
            gradient_problems = [p.message for p in plan.problems if issubclass(p.error, GradientError)]
            if gradient_problems:
                return {"ok": False, "lines": lines, "error": f"block {block.get('id')}: {gradient_problems[0]}"}
            lines.append({"block": block.get("id"), "method": plan.gradient, "reason": plan.gradient_reason})
        return {"ok": True, "lines": lines, "error": None}

    def dataset_problem(self, spec: dict) -> tuple[str, Any]:
        """('' or why this dataset cannot feed this network, the dataset or None)."""
        from ..data import DatasetError

        try:
            data = self.load_dataset()
        except (DatasetError, ValueError, TypeError, OSError) as err:
            return f"dataset {self.dataset}: {err}", None
        shape = list(data.input_shape)
        if spec and list(spec.get("input_shape") or []) != shape:
            return (f"dataset {self.dataset} gives samples of shape {shape_text(shape)} but the network's input is "
                    f"{shape_text(spec.get('input_shape'))}: pick a dataset with that shape in Run setup, or use "
                    "“Match network input” to change the network"), data
        if spec and spec.get("task") != data.task:
            return (f"dataset {self.dataset} is a {data.task} task but the network is set to "
                    f"{spec.get('task')}: use “Match network input” or pick another dataset"), data
        return _engine_fit_problem(spec, data), data


def _engine_fit_problem(spec: dict | None, data) -> str:
    """The trainer's own verdict on network vs dataset (e.g. 4 output scores for 2 classes); '' if it fits or
    the network is not valid yet (the builder shows that error)."""
    from ..training import TrainingError
    from ..training.trainer import check_dataset_fits

    if not spec:
        return ""
    try:
        checked = load_spec(copy.deepcopy(spec))
    except SpecError:
        return ""
    try:
        check_dataset_fits(checked, data)
    except TrainingError as err:
        return str(err)
    return ""
