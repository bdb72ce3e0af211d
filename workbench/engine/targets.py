"""The target table: every place a quantum layer can run, with the capabilities it declares.

A target names an executor (a class in `workbench.engine.executors`, loaded on first use so that CUDA-Q
is imported only when a CUDA-Q target runs) and says what it can do. The execution plan
(`workbench.engine.plan.resolve`), the gradient methods, the GUI's target list and the bench suites
read these capabilities; none of them keeps its own list of target names.

Adding an executor is one new module under `executors/` plus one `Target(...)` entry here.

Example:
    >>> TARGETS["qpp-cpu"].exact_states, TARGETS["qpp-cpu"].autograd
    (True, False)
"""

from __future__ import annotations

from .errors import WorkbenchError

from dataclasses import dataclass
from importlib import import_module
from typing import Literal

Family = Literal["torch", "cpu", "gpu", "hardware"]


@dataclass(frozen=True)
class Target:
    """One execution target and its declared capabilities.

    Args:
        name: what users pass as `target=`.
        executor: "module:Class" under workbench.engine.executors that runs it.
        family: torch (native engines), cpu / gpu (CUDA-Q simulators), hardware (QPUs, emulated here).
        label: one line for target lists.
        exact_states: final states can be read (exact values, the adjoint method).
        density_matrix: the state is a density matrix (gate noise possible; 4**n memory).
        hardware: results are measured: shots always, no states.
        autograd: torch autograd runs through the simulation (the backprop method).
        dtype: the complex dtype it simulates in; "precision" follows the precision option.
        needs_gpu: runs only with an NVIDIA GPU.
        state_on_gpu: its final state is one state vector in one GPU's memory, so torch can take it over
            without a host copy (`executors.cudaq_device`); tensor-network and multi-GPU states are not.
        needs: options it cannot run without, e.g. ("mapping_file",).
    """

    name: str
    executor: str
    family: Family
    label: str
    exact_states: bool = True
    density_matrix: bool = False
    hardware: bool = False
    autograd: bool = False
    dtype: Literal["precision", "complex64", "complex128"] = "complex128"
    needs_gpu: bool = False
    state_on_gpu: bool = False
    needs: tuple[str, ...] = ()

    @property
    def is_cudaq(self) -> bool:
        return self.family != "torch"

    def executor_class(self) -> type:
        module, _, cls = self.executor.partition(":")
        return getattr(import_module(f"{__package__}.executors.{module}"), cls)


def _gpu(name: str, dtype: str = "complex64", state_on_gpu: bool = True) -> Target:
    return Target(name, "cudaq:CudaqExecutor", "gpu", f"CUDA-Q · {name} (GPU)", dtype=dtype,  # type: ignore[arg-type]
                  needs_gpu=True, state_on_gpu=state_on_gpu)


def _hardware(name: str, needs: tuple[str, ...] = ()) -> Target:
    return Target(name, "cudaq:CudaqExecutor", "hardware", f"CUDA-Q · {name} (emulated, shots)", exact_states=False,
                  hardware=True, needs=needs)


_TABLE = (
    Target("torch", "statevector.executor:TorchStatevectorExecutor", "torch", "Torch engine · statevector",
           autograd=True, dtype="precision"),
    Target("torch-density", "densitymatrix:TorchDensityExecutor", "torch", "Torch engine · density matrix (noisy)",
           density_matrix=True, autograd=True),
    Target("qpp-cpu", "cudaq:CudaqExecutor", "cpu", "CUDA-Q · qpp-cpu"),
    Target("density-matrix-cpu", "cudaq:CudaqExecutor", "cpu", "CUDA-Q · density-matrix-cpu (noisy)",
           density_matrix=True),
    _gpu("nvidia"),
    _gpu("nvidia-fp64", "complex128"),
    _gpu("nvidia-mqpu"),
    _gpu("nvidia-mqpu-fp64", "complex128"),
    # The state is split over several GPUs (mgpu) or is a tensor network: it reaches torch through the host.
    _gpu("nvidia-mgpu", "complex128", state_on_gpu=False),
    _gpu("tensornet", "complex128", state_on_gpu=False),
    _gpu("tensornet-mps", "complex128", state_on_gpu=False),
    *(_hardware(name) for name in ("quantinuum", "ionq")),
    _hardware("iqm", needs=("mapping_file",)),
    *(_hardware(name) for name in ("oqc", "braket", "anyon", "infleqtion", "scaleway", "qbraid")),
)

TARGETS: dict[str, Target] = {t.name: t for t in _TABLE}


class TargetError(WorkbenchError, RuntimeError):
    """A target that is unknown, cannot run here, or misses a required option."""


def get_target(name: str) -> Target:
    """The table entry of a target name; TargetError naming the choices when there is none."""
    if name not in TARGETS:
        torch_names = [t.name for t in _TABLE if t.family == "torch"]
        simulators = [t.name for t in _TABLE if t.family in ("cpu", "gpu")]
        hardware = [t.name for t in _TABLE if t.hardware]
        raise TargetError(f"unknown CUDA-Q target {name!r}: use one of {', '.join(simulators)}, a hardware target "
                          f"({', '.join(hardware)}), {' or '.join(repr(t) for t in torch_names)}")
    return TARGETS[name]


def names(family: Family | None = None) -> tuple[str, ...]:
    """Target names in table order, optionally of one family."""
    return tuple(t.name for t in _TABLE if family is None or t.family == family)
