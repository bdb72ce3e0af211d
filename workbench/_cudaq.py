"""Import CUDA-Q once, quietly, and own its process-global state.

CUDA-Q's target and noise model are process-global. Every call into CUDA-Q goes through `session()`,
which holds one re-entrant lock and selects the caller's target first, so one model's settings never
leak into another's calls, also when models run in several threads.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Iterator

_start_method = multiprocessing.get_start_method(allow_none=True)
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*cudaq-logical.*")
    warnings.filterwarnings("ignore", message=".*sample.*observe.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="cudaq.*")
    _argv = sys.argv
    sys.argv = sys.argv[:1]  # cudaq parses --target from argv at import; never let it see ours
    try:
        import cudaq  # noqa: E402
    finally:
        sys.argv = _argv
# cudaq switches the multiprocessing start method to forkserver; restore the user's choice.
with contextlib.suppress(RuntimeError):
    multiprocessing.set_start_method(_start_method, force=True)

GPU_TARGETS = ("nvidia", "nvidia-fp64", "nvidia-mqpu", "nvidia-mqpu-fp64", "nvidia-mgpu", "tensornet", "tensornet-mps")
CPU_TARGETS = ("qpp-cpu", "density-matrix-cpu")
HARDWARE_TARGETS = ("quantinuum", "ionq", "iqm", "oqc", "braket", "anyon", "infleqtion", "scaleway", "qbraid")
NOISY_TARGETS = ("density-matrix-cpu",)

_LOCK = threading.RLock()
_current: "TargetConfig | None" = None


class TargetError(RuntimeError):
    pass


@dataclass(frozen=True)
class TargetConfig:
    name: str
    emulate: bool = True
    options: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def is_hardware(self) -> bool:
        return self.name in HARDWARE_TARGETS

    @property
    def is_gpu(self) -> bool:
        return self.name in GPU_TARGETS

    @property
    def is_density_matrix(self) -> bool:
        return self.name in NOISY_TARGETS


def gpu_count() -> int:
    try:
        return int(cudaq.num_available_gpus())
    except Exception:  # a driver that fails to answer means no usable GPU
        return 0


def available_targets() -> dict[str, str]:
    """Every target CUDA-Q knows, mapped to '' when it runs here or the reason it does not."""
    gpus = gpu_count()
    result = {}
    for name in CPU_TARGETS:
        result[name] = ""
    for name in GPU_TARGETS:
        result[name] = "" if gpus else "needs an NVIDIA GPU (none found): use qpp-cpu or the torch engine"
    for name in HARDWARE_TARGETS:
        result[name] = "" if cudaq.has_target(name) else "not in this CUDA-Q build"
    return result


def check_target(config: TargetConfig) -> None:
    """Raise TargetError before selecting a target that cannot run here (tensornet would abort the process)."""
    known = [t.name for t in cudaq.get_targets()]
    if config.name not in known:
        raise TargetError(f"unknown CUDA-Q target {config.name!r}: use one of {', '.join(CPU_TARGETS + GPU_TARGETS)}, "
                          f"a hardware target ({', '.join(HARDWARE_TARGETS)}) or 'torch'")
    if config.is_gpu and gpu_count() == 0:
        raise TargetError(f"target {config.name!r} needs an NVIDIA GPU and this machine has none: use target='qpp-cpu' "
                          "(CUDA-Q on the CPU), 'density-matrix-cpu' (noisy) or 'torch' (the native torch engine)")
    if config.name == "iqm" and not dict(config.options).get("mapping_file"):
        raise TargetError("target 'iqm' needs a qubit mapping: pass target_options={'mapping_file': PATH} "
                          "(and a machine name)")


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
        raise TargetError(f"CUDA-Q could not select target {config.name!r}: {err}") from err
    _current = config


@contextlib.contextmanager
def session(config: TargetConfig) -> Iterator[object]:
    """Exclusive use of CUDA-Q with `config` selected; yields the cudaq module."""
    with _LOCK:
        _select(config)
        yield cudaq
