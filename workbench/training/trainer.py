"""The training loop: classification, regression and energy minimisation, with a live metric stream,
pause/cancel from any thread, checkpoints in the run store, and exact resume.

A run is deterministic given its seed: each epoch's sample order and the RNG state are part of every
checkpoint, so a run resumed from a checkpoint replays exactly what the uninterrupted run would have
done, and its history continues with no gap and no duplicate.
"""

from __future__ import annotations

import io
from importlib import metadata
import math
import platform
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .. import compiler, spec as S
from ..data import Dataset, load_dataset
from ..engine.plan import ExecutionConfig
from ..errors import WorkbenchError
from ..limits import check_shots
from ..store import RunStore
from .metrics import MetricStream

OPTIMIZERS = ("adam", "sgd", "rmsprop", "lbfgs")
# A classification or regression loss this many times its first value (and at least
# DIVERGED_FLOOR) for DIVERGED_STEPS steps in a row means the optimizer has run away.
DIVERGED_FACTOR = 1_000.0
DIVERGED_FLOOR = 100.0
DIVERGED_STEPS = 3


class TrainingError(WorkbenchError, RuntimeError):
    pass


UNTIL_PAUSED = 10**9  # the epoch count of a run that trains until paused or stopped (the playground)


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 0.05
    seed: int = 0
    val_fraction: float = 0.2
    early_stopping: int | None = None  # patience in epochs on the validation loss
    boundary_every: int = 5  # epochs between decision-boundary refreshes (2-D data); 0 disables
    boundary_resolution: int = 40
    checkpoint_every_steps: int = 50  # a checkpoint at every epoch end and every this many steps
    target: str = "torch"
    gradient: str = "auto"
    device: str = "cpu"
    shots: int | None = None
    noise: dict | None = None
    precision: str = "single"
    emulate: bool = True  # hardware targets run in CUDA-Q's local emulation
    target_options: dict | None = None  # e.g. {"mapping_file": "iqm.txt"} for target iqm
    gradient_options: dict | None = None  # e.g. surrogate settings (workbench.engine.gradients.surrogate.SurrogateOptions)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(f"optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainingError("epochs and batch_size must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainingError(f"learning rate {self.lr} must be a positive number")
        if not 0 <= self.val_fraction < 1:
            raise TrainingError("val_fraction must lie in [0, 1)")
        check_shots(self.shots, "shots (--shots)")
        try:  # an impossible option fails here, before a run is recorded
            self.execution  # noqa: B018
        except ValueError as err:
            raise TrainingError(str(err)) from None

    @property
    def execution(self) -> ExecutionConfig:
        """The execution settings of the run's quantum layers, every compile option included."""
        return ExecutionConfig(target=self.target, gradient=self.gradient, device=self.device, shots=self.shots,
                               noise=self.noise, precision=self.precision, emulate=self.emulate,
                               target_options=self.target_options or {},
                               gradient_options=self.gradient_options or {})

    def compile_options(self) -> dict[str, Any]:
        return {"execution": self.execution}


@dataclass
class TrainResult:
    run_id: str | None
    status: str
    final: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    model: nn.Module | None = None


def environment(config: TrainConfig) -> dict[str, Any]:
    """Versions and hardware of this run (read from package metadata: importing CUDA-Q is not needed)."""
    try:
        cudaq_version = metadata.version("cudaq")
    except metadata.PackageNotFoundError:
        cudaq_version = "not installed"
    return {"python": platform.python_version(), "torch": torch.__version__, "cudaq": cudaq_version,
            "platform": platform.platform(), "machine": platform.machine(),
            "cuda_devices": torch.cuda.device_count(), "target": config.target, "device": config.device}


def loss_function(task: str, width: int):
    """The loss for a task and output width; energy: the output is the energy or its per-term values."""
    if task == "classification":
        if width == 1:
            bce = nn.BCEWithLogitsLoss()
            return lambda out, y: bce(out.squeeze(1), y.float())
        return nn.CrossEntropyLoss()
    if task == "regression":
        mse = nn.MSELoss()
        return lambda out, y: mse(out.squeeze(1) if y.dim() == 1 else out, y.float())
    if width == 1:
        return lambda out, y: out.mean()
    return lambda out, y: (out * y.to(out.dtype)).sum(dim=1).mean()


def task_metric(task: str, out: torch.Tensor, y: torch.Tensor) -> tuple[str, float]:
    if task == "classification":
        predicted = (out.squeeze(1) > 0).long() if out.shape[1] == 1 else out.argmax(dim=1)
        return "accuracy", float((predicted == y).float().mean())
    if task == "regression":
        return "mae", float((out.squeeze(1) if y.dim() == 1 else out).sub(y).abs().mean())
    energy = out.squeeze(1) if out.shape[1] == 1 else (out * y.to(out.dtype)).sum(dim=1)
    return "energy", float(energy.mean())


def check_dataset_fits(spec, dataset) -> None:
    """Raise TrainingError (saying what to change) unless `dataset` can train `spec`: input shape, task and
    output width (C scores for C classes, or one logit for two classes)."""
    expected = tuple(spec.input_shape)
    got = tuple(dataset.input_shape)
    if expected != got:
        hint = f"set the spec's input_shape to {list(got)}"
        if math.prod(expected) == math.prod(got):
            hint += " (or add a reshape/flatten block)"
        raise TrainingError(f"dataset {dataset.name!r} gives samples of shape {got} but the spec "
                            f"{spec.name!r} expects {expected}: {hint}")
    if spec.task != dataset.task:
        raise TrainingError(f"dataset {dataset.name!r} is a {dataset.task} task but the spec is "
                            f"{spec.task}: pick a matching dataset or set the spec's task")
    width = spec.output_shape()[0]
    if spec.task == "classification" and width > 1 and dataset.n_classes != width:
        raise TrainingError(f"dataset {dataset.name!r} has {dataset.n_classes} classes but the network "
                            f"outputs {width} scores: set the last block's width to {dataset.n_classes}")
    if spec.task == "classification" and width == 1 and dataset.n_classes != 2:
        raise TrainingError(f"a single-logit network is a binary classifier but dataset {dataset.name!r} "
                            f"has {dataset.n_classes} classes: output {dataset.n_classes} scores")
    if spec.task == "energy" and width > 1 and dataset.y_train.shape[1] != width:
        raise TrainingError(f"the energy readout has {width} Pauli terms but dataset {dataset.name!r} gives "
                            f"{dataset.y_train.shape[1]} coefficients per sample")


class Trainer:
    """One training run. `run()` blocks; `start()` runs it on a background thread."""

    def __init__(self, spec: S.ArchitectureSpec | dict | str, dataset: Dataset | str, config: TrainConfig | None = None,
                 *, dataset_options: dict | None = None, store: RunStore | None = None,
                 stream: MetricStream | None = None, name: str | None = None, parent_id: str | None = None,
                 model: nn.Module | None = None):
        self.spec = S.load_spec(spec)
        self.config = config or TrainConfig()
        self.dataset = load_dataset(dataset, **(dataset_options or {})) if isinstance(dataset, str) else dataset
        self._check_dataset()
        self.store = store
        self.stream = stream if stream is not None else MetricStream()
        self.name = name or self.spec.name
        self.parent_id = parent_id
        torch.manual_seed(self.config.seed)
        self.model = model or compiler.compile(self.spec, **self.config.compile_options())
        self.optimizer = self._make_optimizer()
        self.loss_fn = loss_function(self.spec.task, self.spec.output_shape()[0])
        self.status = "idle"
        self.on_status = None  # called with each new status (a job's worker reports it to the submitting side)
        self.run_id: str | None = None
        self.error: str | None = None
        self._pause = threading.Event()
        self._cancel = threading.Event()
        self.step_delay = 0.0  # seconds to wait after each step (a playground's speed control)
        self._steps_left: int | None = None  # set by step_once: pause again after this many steps
        self._thread: threading.Thread | None = None
        self._pending: list[dict] = []
        self._last_flush = 0.0
        self._position = {"epoch": 0, "batch": 0, "step": 0}
        self._order: torch.Tensor | None = None
        self._rng_state = None
        self._best_val = math.inf
        self._stale_epochs = 0
        self._first_loss: float | None = None  # the reference for divergence detection
        self._diverging_steps = 0
        self._checkpoint_step: int | None = None  # the newest checkpoint written or restored
        self._split()

    # -- setup ----------------------------------------------------------------------------------
    def _check_dataset(self) -> None:
        check_dataset_fits(self.spec, self.dataset)
        if self.spec.task == "classification":
            self._check_labels(self.spec.output_shape()[0])

    def _check_labels(self, width: int) -> None:
        """Class labels must be whole numbers the network has a score for, checked before any training."""
        classes = 2 if width == 1 else width
        for split, labels in (("training", self.dataset.y_train), ("test", self.dataset.y_test)):
            if not len(labels):
                continue
            if labels.is_floating_point() or labels.is_complex() or labels.dim() != 1:
                raise TrainingError(f"dataset {self.dataset.name!r}: class labels must be one whole number per sample, "
                                    f"but the {split} labels are {labels.dtype} of shape {tuple(labels.shape)}")
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= classes:
                bad = high if high >= classes else low
                raise TrainingError(f"dataset {self.dataset.name!r}: the {split} labels include class {bad}, but the "
                                    f"network outputs {classes} class(es) (labels 0..{classes - 1}): relabel the data "
                                    f"as 0..{classes - 1} or set the last block's width to {high + 1}")

    def _split(self) -> None:
        generator = torch.Generator().manual_seed(self.config.seed)
        n = len(self.dataset.X_train)
        order = torch.randperm(n, generator=generator)
        n_val = int(round(n * self.config.val_fraction)) if n > 4 else 0
        val, train = order[:n_val], order[n_val:]
        self.X_train, self.y_train = self.dataset.X_train[train], self.dataset.y_train[train]
        self.X_val, self.y_val = self.dataset.X_train[val], self.dataset.y_train[val]

    def _make_optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        lr = self.config.lr
        # fused Adam: one kernel for every parameter instead of a Python loop (~0.2 ms of a small step).
        return {"adam": lambda: torch.optim.Adam(params, lr=lr, fused=True), "sgd": lambda: torch.optim.SGD(params, lr=lr),
                "rmsprop": lambda: torch.optim.RMSprop(params, lr=lr),
                "lbfgs": lambda: torch.optim.LBFGS(params, lr=lr, max_iter=5)}[self.config.optimizer]()

    # -- control from other threads -------------------------------------------------------------
    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name=f"train-{self.name}", daemon=True)
        self._thread.start()
        return self._thread

    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def step_once(self) -> None:
        """Take one optimiser step and pause again (before start(): the run begins with that one step)."""
        self._steps_left = 1
        self._pause.clear()

    def cancel(self) -> None:
        self._cancel.set()
        self._pause.clear()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        if self.store is not None and self.run_id is None:
            self.run_id = self.store.create_run(spec=self.spec.to_dict(), config=asdict(self.config),
                                                dataset=self.dataset.description, environment=environment(self.config),
                                                name=self.name, parent_id=self.parent_id)
        self._set_status("running")
        self._emit({"kind": "start", "run_id": self.run_id, "gradient": self.model.gradient_info(),
                    "epochs": self.config.epochs, "steps_per_epoch": self.steps_per_epoch,
                    "step": self._position["step"], "epoch": self._position["epoch"]})
        try:
            self._loop()
        except KeyboardInterrupt:
            # Ctrl-C: the step in flight may be half applied, so the run resumes from its last checkpoint.
            self._set_status("interrupted", {"error": "interrupted (Ctrl-C or SIGTERM)"})
            self._flush(force=True)
            raise
        except Exception as err:
            self.error = f"{err.__class__.__name__}: {err}" if not isinstance(err, TrainingError) else str(err)
            self._emit({"kind": "error", "message": self.error, "step": self._position["step"],
                        "epoch": self._position["epoch"]})
            self._set_status("failed", {"error": self.error})
            self._flush(force=True)
            return TrainResult(self.run_id, "failed", {"error": self.error}, self.stream.events(), self.model)
        final = self.evaluate()
        status = "cancelled" if self._cancel.is_set() else "completed"
        self._emit({"kind": "end", "status": status, "step": self.last_step, "epoch": self._position["epoch"],
                    **final})
        self._set_status(status, final)
        self._flush(force=True)
        return TrainResult(self.run_id, status, final, self.stream.events(), self.model)

    @property
    def last_step(self) -> int:
        """Index of the last step taken (-1 before the first). A step event carries its own index and the epoch,
        boundary and end events this one, so `step` means the same in all of them (in charts, Compare and the
        store): the state after that step."""
        return self._position["step"] - 1

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.X_train) / self.config.batch_size))

    def _loop(self) -> None:
        config = self.config
        while self._position["epoch"] < config.epochs:
            epoch = self._position["epoch"]
            if self._order is None:
                self._rng_state = torch.get_rng_state()
                self._order = torch.randperm(len(self.X_train))
            epoch_losses, epoch_metrics, epoch_start = [], [], time.perf_counter()
            while self._position["batch"] < self.steps_per_epoch:
                while self._pause.is_set() and not self._cancel.is_set():
                    self._set_status("paused")
                    self._flush(force=True)
                    time.sleep(0.05)
                if self.status == "paused":
                    self._set_status("running")
                if self._cancel.is_set():
                    self._checkpoint()
                    return
                batch_index = self._order[self._position["batch"] * config.batch_size:
                                          (self._position["batch"] + 1) * config.batch_size]
                event = self._step(self.X_train[batch_index], self.y_train[batch_index])
                epoch_losses.append(event["loss"])
                epoch_metrics.append(event[event["metric"]])
                self._position["batch"] += 1
                self._position["step"] += 1
                # (Not after an epoch's last step: the epoch's end saves one, after its validation and boundary.)
                if self._position["step"] % config.checkpoint_every_steps == 0 and \
                        self._position["batch"] < self.steps_per_epoch:
                    self._checkpoint()
                if self._steps_left is not None:
                    self._steps_left -= 1
                    if self._steps_left <= 0:
                        self._steps_left = None
                        self._pause.set()
                if self.step_delay > 0:
                    self._cancel.wait(self.step_delay)
            self._end_epoch(epoch, epoch_losses, epoch_metrics, time.perf_counter() - epoch_start)
            if self._stale_epochs and config.early_stopping and self._stale_epochs >= config.early_stopping:
                self._emit({"kind": "early_stop", "epoch": epoch, "step": self.last_step,
                            "message": f"validation loss did not improve for {config.early_stopping} epochs"})
                return

    def _step(self, xb: torch.Tensor, yb: torch.Tensor) -> dict[str, Any]:
        start = time.perf_counter()
        quantum = self.model.quantum_layers
        executions_before = {name: layer.circuit_executions for name, layer in quantum.items()}
        for layer in quantum.values():
            layer.gradient_report()  # the step's accounting starts here
        input_grads: dict[str, torch.Tensor] = {}
        hooks = [layer.register_full_backward_hook(
            lambda module, grad_in, grad_out, name=name: input_grads.__setitem__(name, grad_in[0]))
            for name, layer in quantum.items() if layer.weight is None]
        self.model.train()
        holder: dict[str, torch.Tensor] = {}

        def closure():
            self.optimizer.zero_grad()
            out = self.model(xb)
            loss = self.loss_fn(out, yb)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss.item()} at step {self._position['step']} (epoch "
                    f"{self._position['epoch']}): lower the learning rate (now {self.config.lr:g}), standardise the "
                    f"inputs or use a scaled_tanh before the quantum layer; {self._checkpoint_note()}")
            loss.backward()
            holder["out"], holder["loss"] = out.detach(), loss.detach()
            return loss

        try:
            if self.config.optimizer == "lbfgs":
                self.optimizer.step(closure)
            else:
                closure()
                self.optimizer.step()
        finally:
            for hook in hooks:
                hook.remove()
        elapsed = time.perf_counter() - start
        self._check_divergence(float(holder["loss"]))
        metric, value = task_metric(self.spec.task, holder["out"], yb)
        event = {"kind": "step", "step": self._position["step"], "epoch": self._position["epoch"],
                 "loss": float(holder["loss"]), "metric": metric, metric: value, "step_time": elapsed,
                 "samples_per_s": len(xb) / elapsed if elapsed > 0 else None,
                 "grad_norm": self._grad_norms(), "quantum": {}}
        for name, layer in quantum.items():
            if layer.weight is not None and layer.weight.grad is not None:
                grads = layer.weight.grad
            else:
                grads = input_grads.get(name, torch.zeros(1)).mean(dim=0) if name in input_grads else torch.zeros(1)
            event["quantum"][name] = {
                "gradient_method": layer.gradient_method,
                "grad_variance": float(grads.var()) if grads.numel() > 1 else 0.0,
                "circuit_executions": layer.circuit_executions - executions_before[name],
                **layer.gradient_report(),  # surrogate shots/circuits, fit error, gradient cosine
            }
        self._emit(event)
        return event

    def _checkpoint_note(self) -> str:
        if self._checkpoint_step is None:
            return "no checkpoint was written yet, so start the run again after the change"
        return (f"the run stopped; its last checkpoint is at step {self._checkpoint_step} "
                "(`workbench runs resume` continues from there)")

    def _check_divergence(self, loss: float) -> None:
        """Stop a classification/regression run whose loss has run away (an energy may be negative: not checked)."""
        if self.spec.task == "energy":
            return
        if self._first_loss is None:
            self._first_loss = loss
            return
        limit = max(DIVERGED_FACTOR * self._first_loss, DIVERGED_FLOOR)
        self._diverging_steps = self._diverging_steps + 1 if loss > limit else 0
        if self._diverging_steps >= DIVERGED_STEPS:
            raise TrainingError(
                f"training diverged: the loss rose from {self._first_loss:.4g} to {loss:.4g} by step "
                f"{self._position['step']} (epoch {self._position['epoch']}): lower the learning rate (now "
                f"{self.config.lr:g}; try {self.config.lr / 100:g}) or standardise the inputs; "
                f"{self._checkpoint_note()}")

    def _grad_norms(self) -> dict[str, float]:
        norms = {}
        for name, module in self.model.blocks.items():
            grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
            if grads:
                norms[name] = float(torch.cat(grads).norm())
        return norms

    def _end_epoch(self, epoch: int, losses: list[float], metrics: list[float], elapsed: float) -> None:
        val = self._evaluate_split(self.X_val, self.y_val) if len(self.X_val) else {}
        metric = task_metric(self.spec.task, torch.zeros(1, self.spec.output_shape()[0]), self.y_train[:1])[0]
        # No losses: resumed from a checkpoint taken after the epoch's last step by an older workbench.
        event = {"kind": "epoch", "epoch": epoch, "step": self.last_step,
                 "loss": sum(losses) / len(losses) if losses else None, "metric": metric,
                 metric: sum(metrics) / len(metrics) if metrics else None,
                 "epoch_time": elapsed, **{f"val_{k}": v for k, v in val.items()}}
        self._emit(event)
        if val:
            if val["loss"] < self._best_val - 1e-6:
                self._best_val, self._stale_epochs = val["loss"], 0
            else:
                self._stale_epochs += 1
        if self._wants_boundary(epoch):
            self._emit(self.decision_boundary())
        self._position.update(epoch=epoch + 1, batch=0)
        self._order = None
        self._checkpoint()

    def _wants_boundary(self, epoch: int) -> bool:
        every = self.config.boundary_every
        two_d = tuple(self.spec.input_shape) == (2,) and self.spec.task == "classification"
        return bool(every) and two_d and ((epoch + 1) % every == 0 or epoch + 1 == self.config.epochs)

    def decision_boundary(self) -> dict[str, Any]:
        """The model's class-1 probability (or winning class) on a grid over the data, in one batched call."""
        data = torch.cat([self.dataset.X_train, self.dataset.X_test])
        low, high = data.min(0).values, data.max(0).values
        pad = 0.1 * (high - low)
        low, high = low - pad, high + pad
        r = self.config.boundary_resolution
        xs, ys = torch.linspace(low[0], high[0], r), torch.linspace(low[1], high[1], r)
        grid = torch.cartesian_prod(ys, xs)[:, [1, 0]]
        self.model.eval()
        with torch.no_grad():
            out = self.model(grid.to(data.dtype))
        z = torch.sigmoid(out.squeeze(1)) if out.shape[1] == 1 else out.argmax(1).float()
        return {"kind": "boundary", "step": self.last_step, "epoch": self._position["epoch"],
                "x": xs.tolist(), "y": ys.tolist(), "z": z.reshape(r, r).tolist(),
                "binary": out.shape[1] == 1}

    def _evaluate_split(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        self.model.eval()
        with torch.no_grad():
            outs = [self.model(X[i:i + 256]) for i in range(0, len(X), 256)]
        out = torch.cat(outs)
        metric, value = task_metric(self.spec.task, out, y)
        return {"loss": float(self.loss_fn(out, y)), metric: value}

    def evaluate(self) -> dict[str, float]:
        """Loss and task metric on the test split (and train split)."""
        result = {f"test_{k}": v for k, v in self._evaluate_split(self.dataset.X_test, self.dataset.y_test).items()} \
            if len(self.dataset.X_test) else {}
        result.update({f"train_{k}": v for k, v in self._evaluate_split(self.X_train, self.y_train).items()})
        result["steps"] = self._position["step"]
        result["epochs_done"] = self._position["epoch"]
        result["parameters"] = sum(p.numel() for p in self.model.parameters())
        return result

    # -- stream, store, checkpoints --------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        event.setdefault("time", time.time())
        self.stream.emit(event)
        if self.store is not None and event["kind"] in ("step", "epoch", "boundary"):
            self._pending.append(event)
            self._flush()

    def _flush(self, force: bool = False) -> None:
        if self.store is None or not self._pending:
            return
        if force or time.monotonic() - self._last_flush > 1.0:
            self.store.append_events(self.run_id, self._pending)
            self._pending = []
            self._last_flush = time.monotonic()

    def _set_status(self, status: str, final: dict | None = None) -> None:
        self.status = status
        if self.on_status is not None:
            self.on_status(status)
        if self.store is not None and self.run_id is not None:
            self.store.set_status(self.run_id, status, final)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "position": dict(self._position), "order": self._order,
                "epoch_rng": self._rng_state, "rng": torch.get_rng_state(),
                "best_val": self._best_val, "stale_epochs": self._stale_epochs, "first_loss": self._first_loss}

    def _checkpoint(self) -> None:
        if self.store is None:
            return
        self._flush(force=True)
        buffer = io.BytesIO()
        torch.save(self.checkpoint_state(), buffer)
        self.store.save_checkpoint(self.run_id, step=self._position["step"], epoch=self._position["epoch"],
                                   state=buffer.getvalue())
        self._checkpoint_step = self._position["step"]

    def restore(self, state: bytes) -> None:
        """Load a checkpoint; TrainingError if it is damaged or not ours (it is never unpickled as code)."""
        saved = read_checkpoint(state, self.run_id)
        try:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            torch.set_rng_state(saved["rng"])
        except Exception as err:  # a checkpoint of another network or optimiser
            raise TrainingError(f"the checkpoint of run {self.run_id} does not fit its network "
                                f"({type(err).__name__}); it was not loaded: start the run again with "
                                "`workbench train`") from None
        self._position = {key: int(saved["position"][key]) for key in ("epoch", "batch", "step")}
        self._order = saved["order"]
        self._rng_state = saved["epoch_rng"]
        self._best_val, self._stale_epochs = float(saved["best_val"]), int(saved["stale_epochs"])
        self._first_loss = saved.get("first_loss")
        self._checkpoint_step = self._position["step"]


def read_checkpoint(state: bytes, run_id: str | None = None) -> dict[str, Any]:
    """A checkpoint's contents, loaded as data (weights only: never unpickled as code); TrainingError if it is
    damaged or not a workbench checkpoint."""
    try:
        saved = torch.load(io.BytesIO(state), weights_only=True)
        for key in ("model", "optimizer", "order", "epoch_rng", "rng"):
            saved[key]  # noqa: B018
        {key: int(saved["position"][key]) for key in ("epoch", "batch", "step")}  # noqa: B018
        float(saved["best_val"]), int(saved["stale_epochs"])  # noqa: B018
    except Exception as err:  # UnpicklingError, KeyError, TypeError, RuntimeError: all mean "not a good checkpoint"
        raise TrainingError(f"the checkpoint of run {run_id} is damaged or is not a workbench checkpoint "
                            f"({type(err).__name__}); it was not loaded: start the run again with "
                            "`workbench train`") from None
    return saved


def resume(run_id: str, store: RunStore, *, stream: MetricStream | None = None, epochs: int | None = None) -> Trainer:
    """A trainer that continues run `run_id` from its last checkpoint; events after it are dropped, then replayed."""
    record = store.get_run(run_id)
    checkpoint = store.latest_checkpoint(record.id)
    if checkpoint is None:
        raise TrainingError(f"run {record.id} has no checkpoint to resume from: start it again with `workbench train`")
    config = TrainConfig(**{**record.config, **({"epochs": epochs} if epochs else {})})
    dataset = load_dataset(record.dataset["name"], **record.dataset.get("options", {}))
    trainer = Trainer(record.spec, dataset, config, store=store, stream=stream, name=record.name,
                      parent_id=record.parent_id)
    trainer.run_id = record.id
    step, _, state = checkpoint
    trainer.restore(state)  # a checkpoint that does not fit is refused before any history is dropped
    store.drop_events_to_redo(record.id, step)
    if stream is not None:
        for event in store.events(record.id):
            stream.emit(event)
    return trainer


def train(spec: S.ArchitectureSpec | dict | str, dataset: Dataset | str, *, store: RunStore | None = None,
          stream: MetricStream | None = None, dataset_options: dict | None = None, **config: Any) -> TrainResult:
    """Train a spec on a dataset (blocking) and return the result with the trained model."""
    return Trainer(spec, dataset, TrainConfig(**config), dataset_options=dataset_options, store=store,
                   stream=stream).run()
