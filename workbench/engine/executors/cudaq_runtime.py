"""Import CUDA-Q once, quietly, and own its process-global state.

CUDA-Q's target and noise model are process-global, and its runtime keeps per-OS-thread execution state
(contexts keyed by thread id). So every call into CUDA-Q runs on one long-lived worker thread: `call()`
hands a function to that thread, which selects the caller's target first and runs the calls one at a
time under one re-entrant lock. One model's settings never leak into another's calls, also when models
run in several threads, and CUDA-Q never sees a thread come and go.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import sys
import threading
import warnings
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

_start_method = multiprocessing.get_start_method(allow_none=True)
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*cudaq-logical.*")
    warnings.filterwarnings("ignore", message=".*sample.*observe.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="cudaq.*")
    _argv = sys.argv
    sys.argv = sys.argv[:1]  # cudaq parses --target from argv at import; never let it see ours
    _sigint = signal.getsignal(signal.SIGINT)
    try:
        import cudaq  # noqa: E402
    finally:
        sys.argv = _argv
        # cudaq installs a C-level SIGINT handler that prints and exits: Ctrl-C must stay Python's
        # KeyboardInterrupt (or a job worker's SIG_IGN) so runs end as interrupted with their checkpoint.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, _sigint)
# cudaq switches the multiprocessing start method to forkserver; restore the user's choice.
with contextlib.suppress(RuntimeError):
    multiprocessing.set_start_method(_start_method, force=True)

from ..mapping import read_mapping  # noqa: E402
from ..targets import TARGETS, TargetError, names  # noqa: E402

GPU_TARGETS = names("gpu")
CPU_TARGETS = names("cpu")
HARDWARE_TARGETS = names("hardware")

MGPU_NEEDS = ("It needs MPI: install an MPI library (e.g. `apt install openmpi-bin libopenmpi-dev`) and mpi4py "
              "(`pip install mpi4py`), run CUDA-Q's `distributed/activate_custom_mpi.sh` once, then launch a script "
              "that calls cudaq.mpi.initialize() before workbench.compile(..., target='nvidia-mgpu') with one "
              "process per GPU: `mpirun -np 2 python train_mgpu.py` (the CLI trains in a job worker, outside an "
              "MPI world)")
_LOCK = threading.RLock()
_current: "TargetConfig | None" = None


@dataclass(frozen=True)
class TargetConfig:
    name: str
    emulate: bool = True
    options: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def is_hardware(self) -> bool:
        return TARGETS[self.name].hardware

    @property
    def is_gpu(self) -> bool:
        return TARGETS[self.name].needs_gpu

    @property
    def is_density_matrix(self) -> bool:
        return TARGETS[self.name].density_matrix


T = TypeVar("T")


class _Worker:
    """The one OS thread that makes every CUDA-Q call.

    Seen crashing without it (cudaq 0.16): models on qpp-cpu and density-matrix-cpu used from three Python
    threads, serialised by a lock, segfaulted in quantum_platform::get_noise / is_remote. Those read a
    per-thread execution context kept in a map keyed by the hash of the thread id; thread ids are reused
    once a thread ends, so a short-lived caller thread could find another thread's stale context.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def _loop(self) -> None:
        while True:
            fn, future = self._queue.get()
            if future is None:  # dispose: drop the references here, on this thread
                del fn
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                future.set_exception(err)
            del fn, future

    def _ensure(self) -> None:
        with self._start:
            # After os.fork the parent's worker does not exist in the child: start a new one.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="workbench-cudaq", daemon=True)
                self._thread.start()

    def call(self, fn: Callable[[], T]) -> T:
        if threading.current_thread() is self._thread:
            return fn()
        self._ensure()
        future: Future = Future()
        self._queue.put((fn, future))
        return future.result()

    def dispose(self, *objects: Any) -> None:
        """Release CUDA-Q objects (kernels, noise models) on the worker thread, without waiting."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put((objects, None))


_WORKER = _Worker()


def _after_fork_in_child() -> None:
    # The parent's worker thread (and a lock it may have held at the fork) do not exist in the child.
    global _LOCK, _WORKER
    _LOCK = threading.RLock()
    _WORKER = _Worker()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def on_cudaq_thread(fn: Callable[[], T]) -> T:
    """Run fn() on the CUDA-Q worker thread (no target selected); returns its result or raises its error."""
    return _WORKER.call(fn)


def gpu_count() -> int:
    def count() -> int:
        try:
            return int(cudaq.num_available_gpus())
        except Exception:  # a driver that fails to answer means no usable GPU
            return 0

    return _WORKER.call(count)


def available_targets() -> dict[str, str]:
    """Every target CUDA-Q knows, mapped to '' when it runs here or the reason it does not."""
    gpus = gpu_count()
    result = {}
    for name in CPU_TARGETS:
        result[name] = ""
    for name in GPU_TARGETS:
        result[name] = "" if gpus else "needs an NVIDIA GPU (none found): use qpp-cpu or the torch engine"
    present = _WORKER.call(lambda: {name: bool(cudaq.has_target(name)) for name in HARDWARE_TARGETS})
    for name in HARDWARE_TARGETS:
        result[name] = "" if present[name] else "not in this CUDA-Q build"
    return result


def target_config(plan) -> TargetConfig:
    """The CUDA-Q target an execution plan runs on: name, emulation and options."""
    return TargetConfig(plan.target.name, emulate=plan.config.emulate,
                        options=tuple(sorted(plan.config.target_options.items())))


def check_target(config: TargetConfig) -> None:
    """Raise TargetError before selecting a target that cannot run here (tensornet would abort the process)."""
    known = _WORKER.call(lambda: [t.name for t in cudaq.get_targets()])
    if config.name not in known or config.name not in TARGETS:
        raise TargetError(f"unknown CUDA-Q target {config.name!r}: use one of {', '.join(CPU_TARGETS + GPU_TARGETS)}, "
                          f"a hardware target ({', '.join(HARDWARE_TARGETS)}), 'torch' or 'torch-density'")
    if config.is_gpu and gpu_count() == 0:
        raise TargetError(f"target {config.name!r} needs an NVIDIA GPU and this machine has none: use target='qpp-cpu' "
                          "(CUDA-Q on the CPU), 'density-matrix-cpu' (noisy) or 'torch' (the native torch engine)"
                          + (f". {MGPU_NEEDS}" if config.name == "nvidia-mgpu" else ""))
    if config.name == "nvidia-mgpu" and not _WORKER.call(lambda: cudaq.mpi.is_initialized()):
        raise TargetError(f"target 'nvidia-mgpu' pools the GPUs of several MPI processes. {MGPU_NEEDS}")
    for option in TARGETS[config.name].needs:
        if not dict(config.options).get(option):
            raise TargetError(f"target {config.name!r} needs a qubit mapping: pass target_options={{'{option}': PATH}} "
                              "(a text file naming the device's couplings, one 'i --> {j, k}' line per "
                              "qubit)")
    mapping = dict(config.options).get("mapping_file")
    if mapping:  # checked here, so a wrong file is one message instead of a failure deep in CUDA-Q's compiler
        read_mapping(mapping, config.name)


def _select(config: TargetConfig) -> None:
    global _current
    if _current == config:
        return
    kwargs = dict(config.options)
    if config.is_hardware:
        kwargs["emulate"] = config.emulate
    base = config.name
    if config.name in ("nvidia-fp64", "nvidia-mqpu", "nvidia-mqpu-fp64"):
        base = "nvidia"
        kwargs["option"] = config.name.removeprefix("nvidia-").replace("-", ",")
    try:
        cudaq.set_target(base, **kwargs)
    except Exception as err:
        # Real QPUs authenticate at selection (an API key, a project): CUDA-Q names what is missing.
        fix = (": set the provider's credentials on the machine that runs the job, or use emulate=True to emulate "
               "it locally" if config.is_hardware and not config.emulate else "")
        raise TargetError(f"CUDA-Q could not select target {config.name!r}: {err}{fix}") from err
    _current = config


def call(config: TargetConfig, fn: Callable[[Any], T]) -> T:
    """fn(cudaq) on the CUDA-Q thread, with `config` selected and the session lock held; returns its result.

    fn should return plain data (numbers, lists, numpy arrays) so CUDA-Q objects never leave that thread.
    """
    def job() -> T:
        with _LOCK:
            _select(config)
            return fn(cudaq)

    return _WORKER.call(job)


def dispose(*objects: Any) -> None:
    """Drop references to CUDA-Q objects on the CUDA-Q thread."""
    _WORKER.dispose(*objects)
