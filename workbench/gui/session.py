"""One browser session's (or notebook's) training work: the run in progress, the matched classical
baseline, which stored runs belong to whom. Nothing here is shared between sessions except the
ownership registry, which exists precisely so that sessions do not see each other's runs."""

from __future__ import annotations

import copy
import threading
import uuid
from typing import Callable

import param

from ..spec import SpecError, load_spec
from ..store import RunStore

_OWNERS: dict[str, str] = {}  # run id -> owning session key, while that session is open
_LIVE: set[str] = set()
_LOCK = threading.Lock()


def claim(run_id: str, owner: str) -> None:
    with _LOCK:
        _OWNERS.setdefault(run_id, owner)


def release(owner: str) -> None:
    """A closed session's runs become history that any later session may open."""
    with _LOCK:
        for run_id in [r for r, o in _OWNERS.items() if o == owner]:
            del _OWNERS[run_id]
        _LIVE.discard(owner)


def owner_of(run_id: str) -> str | None:
    with _LOCK:
        return _OWNERS.get(run_id)


def cost_preview(spec: dict, setup) -> str:
    """Circuits and shots of the run `setup` (a RunSetup) would start on `spec`, for emulated/real hardware
    targets: `workbench.jobs.cost.estimate(...).summary()`; '' for simulators and unfinished settings."""
    from ..jobs.cost import estimate, needs_preview
    from ..training import TrainConfig

    try:
        config = TrainConfig(**setup.train_config())
        if not needs_preview(config):
            return ""
        problem, dataset = setup.dataset_problem(spec)
        if problem:
            return ""
        return estimate(load_spec(copy.deepcopy(spec)), config, n_train=len(dataset.X_train),
                        n_test=len(dataset.X_test)).summary()
    except Exception:  # an unfinished network or setting: the Train button explains it
        return ""


class StartError(RuntimeError):
    """Training could not start; the message says why and what to change."""


class TrainingSession(param.Parameterized):
    """Starts, pauses, resumes and stops this session's runs; all of it per session."""

    status = param.String(default="idle", doc="idle | running | paused | completed | cancelled | failed")
    message = param.String(default="")
    run_ids = param.List(default=[], doc="Runs started in this session, oldest first.")
    baseline_status = param.String(default="idle")
    baseline_message = param.String(default="")
    step_delay = param.Number(default=0.0, bounds=(0, 5), doc="Seconds between steps (the speed control).")

    def __init__(self, store: RunStore | None = None, **params):
        super().__init__(**params)
        self.key = uuid.uuid4().hex
        with _LOCK:
            _LIVE.add(self.key)
        self.store = store
        self.trainer = None
        self.stream = None
        self.dataset = None
        self.baseline = None
        self.baseline_stream = None
        self.last_run_id: str | None = None
        self.closed = False

    # -- training --------------------------------------------------------------------------------
    def _make_trainer(self, spec: dict, setup, *, parent_id: str | None = None, classical: bool = False,
                      epochs: int | None = None):
        from ..data import DatasetError
        from ..engine.gradients import GradientError
        from ..jobs.api import make_job
        from ..jobs.spec import JobSpec
        from ..training import MetricStream, TrainConfig, TrainingError, matched_classical_spec

        try:
            checked = load_spec(copy.deepcopy(spec))
        except SpecError as err:
            raise StartError(f"fix the network first: {err}") from None
        if classical:
            try:
                checked = matched_classical_spec(checked)
            except SpecError as err:
                raise StartError(str(err)) from None
        problem, dataset = setup.dataset_problem(checked.to_dict())
        if problem:
            raise StartError(problem)
        if not classical:
            explanation = setup.gradient_explanation(checked.to_dict())
            if not explanation["ok"]:
                raise StartError(explanation["error"])
        try:
            config = TrainConfig(**{**setup.train_config(), **({"epochs": epochs} if epochs else {})})
            stream = MetricStream()
            # A job: the run trains in a worker process or on the cluster ($WORKBENCH_CLUSTER), never here.
            trainer = make_job(JobSpec.training(checked, dataset, config, name=f"{checked.name} on {setup.dataset}",
                                                parent_id=parent_id), store=self.store, stream=stream)
        except (TrainingError, GradientError, DatasetError, SpecError, ValueError, RuntimeError, MemoryError) as err:
            raise StartError(str(err)) from None
        return trainer, stream, dataset

    def start(self, spec: dict, setup) -> object:
        """Compile the network and start training as a job in a worker process; raises StartError."""
        if self.closed:
            raise StartError("this session has ended: reload the page")
        if self._active(self.trainer):
            raise StartError("a run is already in progress: stop it first")
        trainer, stream, dataset = self._make_trainer(spec, setup)
        self.trainer, self.stream, self.dataset = trainer, stream, dataset
        trainer.step_delay = self.step_delay
        trainer.start()
        self.param.update(status="running", message="")
        return trainer

    def step(self, spec: dict, setup) -> object:
        """One optimiser step: of the paused run, or the first step of a new run, which then waits paused."""
        if self._active(self.trainer):
            self.trainer.step_once()
            self.status = "running"
            return self.trainer
        if self.closed:
            raise StartError("this session has ended: reload the page")
        trainer, stream, dataset = self._make_trainer(spec, setup)
        self.trainer, self.stream, self.dataset = trainer, stream, dataset
        trainer.step_delay = self.step_delay
        trainer.step_once()
        trainer.start()
        self.param.update(status="running", message="")
        return trainer

    def reset(self) -> None:
        """Forget the current run (stopping it): the next Train starts from freshly initialised weights."""
        self.stop()
        self.trainer, self.stream = None, None
        self.param.update(status="idle", message="")

    @param.depends("step_delay", watch=True)
    def _apply_speed(self) -> None:
        if self.trainer is not None:
            self.trainer.step_delay = self.step_delay

    def run_model(self) -> tuple[object | None, object]:
        """(the current run's network with its newest weights, a key that changes with them); (None, None) before
        it has any. The run trains in a worker process, so while it runs the weights come from the job's newest
        weight snapshot (a few a second; jobs.worker.WeightsSnapshots) or, when its network is too big for
        snapshots, its newest checkpoint in the store (every epoch); once it has ended, from its final model.
        The model's `weights_at` says which: {"source": "live" | "checkpoint" | "final", "step": the index of the
        last step in these weights}."""
        trainer = self.trainer
        if getattr(self, "_model_owner", None) is not trainer:
            self._model_owner, self._model_key, self._model, self._run_network = trainer, None, None, None
        if trainer is None:
            return None, None
        newest = self._newest_weights(trainer)
        if newest is None or newest[0] == self._model_key:
            return self._model, self._model_key
        key, step, load = newest
        try:
            model = load()
        except Exception:  # a damaged checkpoint or a network this process cannot build: keep the last one
            return self._model, self._model_key
        model.weights_at = {"source": key[0], "step": step}
        self._model_key, self._model = key, model
        return model, key

    def _newest_weights(self, trainer) -> tuple[tuple, int | None, Callable[[], object]] | None:
        """(key, index of the last step, loader) of the newest weights of `trainer`'s run, or None."""
        import io

        import torch

        final = trainer.model if trainer.finished else None
        if final is not None:
            steps = (trainer.final or {}).get("steps")
            return ("final",), (steps - 1 if isinstance(steps, int) else None), final.load
        snapshot = getattr(trainer, "weights", None)
        checkpoint = self.store.latest_checkpoint(trainer.run_id) \
            if self.store is not None and trainer.run_id else None
        # A checkpoint at step count c holds the weights after step c - 1.
        if checkpoint is not None and (snapshot is None or checkpoint[0] - 1 > snapshot["step"]):
            state = checkpoint[2]
            return ("checkpoint", checkpoint[0]), checkpoint[0] - 1, lambda: self._with_weights(
                trainer, torch.load(io.BytesIO(state), weights_only=True)["model"])
        if snapshot is not None:
            state = snapshot["state"]
            return ("live", snapshot["step"]), snapshot["step"], lambda: self._with_weights(
                trainer, torch.load(io.BytesIO(state), weights_only=True), strict=False)
        return None

    def _with_weights(self, trainer, weights: dict, strict: bool = True):
        """The run's network on the torch engine (built once per run: the views read its exact states) with
        `weights` loaded; a snapshot holds only the blocks up to the last quantum one (strict=False)."""
        from .. import compile as wb_compile

        if self._run_network is None:
            self._run_network = wb_compile(trainer.spec.spec)
        expected = self._run_network.state_dict()
        unknown = set(weights) - set(expected)
        missing = set(expected) - set(weights) if strict else set()
        if unknown or missing:  # checked first: load_state_dict copies what matches before it raises
            raise ValueError(f"these weights do not fit the run's network (unknown {sorted(unknown)[:3]}, "
                             f"missing {sorted(missing)[:3]})")
        self._run_network.load_state_dict(weights, strict=strict)
        return self._run_network

    def start_baseline(self, spec: dict, setup, epochs: int | None = None) -> object:
        """Train the matched classical network with the same settings (parent: this session's last run); `epochs`
        replaces the setting (a run trained until paused is compared over the epochs it completed)."""
        if self.closed:
            raise StartError("this session has ended: reload the page")
        if self._active(self.baseline):
            raise StartError("the classical baseline is already training")
        trainer, stream, _ = self._make_trainer(spec, setup, parent_id=self.last_run_id, classical=True,
                                                epochs=epochs)
        self.baseline, self.baseline_stream = trainer, stream
        trainer.start()
        self.param.update(baseline_status="running", baseline_message="")
        return trainer

    def _active(self, trainer) -> bool:
        return trainer is not None and not trainer.finished

    def pause(self) -> None:
        if self._active(self.trainer):
            self.trainer.pause()
            self.status = "paused"

    def resume(self) -> None:
        if self._active(self.trainer):
            self.trainer.resume()
            self.status = "running"

    def stop(self) -> None:
        for trainer in (self.trainer, self.baseline):
            if self._active(trainer):
                trainer.cancel()

    def stop_baseline(self) -> None:
        if self._active(self.baseline):
            self.baseline.cancel()

    def refresh(self) -> None:
        """Pick up run ids and final states from the jobs (called from the UI poller)."""
        for trainer, is_baseline in ((self.trainer, False), (self.baseline, True)):
            if trainer is None:
                continue
            if trainer.run_id and trainer.run_id not in self.run_ids:
                claim(trainer.run_id, self.key)
                self.run_ids = [*self.run_ids, trainer.run_id]
                if not is_baseline:
                    self.last_run_id = trainer.run_id
            status = trainer.status
            if status in ("running", "paused") and not is_baseline:
                status = "paused" if trainer.paused else "running"  # the flag answers at once, the loop later
            if status in ("idle", "starting"):
                status = "running"  # started, the worker has not reported yet
            message = trainer.error or trainer.queue_message() or trainer.progress_text()
            if is_baseline:
                if (self.baseline_status, self.baseline_message) != (status, message):
                    self.param.update(baseline_status=status, baseline_message=message)
            elif (self.status, self.message) != (status, message):
                self.param.update(status=status, message=message)

    @property
    def model(self):
        """The trained (or training) model of the last run, for weight downloads."""
        return self.trainer.model if self.trainer is not None else None

    # -- history -----------------------------------------------------------------------------------
    def visible_runs(self, include_earlier: bool = False) -> list:
        """Runs this session may see: its own, plus (if asked) finished runs of sessions that have closed."""
        if self.store is None:
            return []
        mine = set(self.run_ids)
        out = []
        for record in self.store.list_runs(limit=500):
            if record.id in mine:
                out.append(record)
                continue
            if not include_earlier:
                continue
            owner = owner_of(record.id)
            if owner is not None and owner != self.key:
                continue  # another open session's run
            if record.status in ("running", "paused"):
                continue  # in progress somewhere else
            out.append(record)
        return out

    def shutdown(self, wait: float | None = None) -> None:
        """Stop everything this session started (the tab was closed). The trainers end their current step
        in their worker processes; pass `wait` (seconds) to block until they have (never on the UI loop)."""
        self.closed = True
        for trainer in (self.trainer, self.baseline):
            if self._active(trainer):
                trainer.cancel()
        if wait:
            for trainer in (self.trainer, self.baseline):
                if trainer is not None:
                    trainer.join(timeout=wait)
        release(self.key)
