"""CUDA-Q states on a GPU handed to torch without a host copy.

On CUDA-Q's statevector GPU targets (`Target.state_on_gpu`: nvidia, nvidia-fp64, nvidia-mqpu*) a `cudaq.State`
keeps its state vector in one GPU's memory: in cudaq 0.16 `state.is_on_gpu()` says so and `state.getTensors()`
gives one tensor with the device pointer (`data()`), the `extents` and the element size (8 bytes for the fp32
targets, 16 for fp64). Tensor-network (tensornet, tensornet-mps) and multi-GPU (nvidia-mgpu) states are not
one such vector; they reach torch through a host copy, as on the CPU targets. CUDA-Q's own `cudaq.to_cupy`
wraps exactly these in a CuPy array; here the same pointer is offered to torch through the CUDA array
interface, so torch needs no CuPy and `np.array(state)` (a device-to-host copy) is never called.

The memory belongs to the state: CUDA-Q frees it when the `cudaq.State` is destroyed. A view therefore holds
its state (`_StateView.state`), and torch holds the view for as long as any tensor made from it exists
(`torch.as_tensor` keeps a reference to the object whose `__cuda_array_interface__` it read and drops it in
the storage's deleter). `stack_states` copies the views into one (batch, 2**n) complex128 tensor on the
layer's device, device to device, before returning, so the states can go as soon as it returns, which it
does on the CUDA-Q thread (where the executor releases every other CUDA-Q object too).

Unverified on a GPU machine (none was available when this was written): `workbench.bench.gpu_check` checks
it (no host copy, values equal to the torch engine's to 1e-12) and records the result.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

_TYPESTR = {8: "<c8", 16: "<c16"}  # complex64, complex128 (little endian), by element size in bytes


class _StateView:
    """A GPU-resident cudaq.State's state vector as a CUDA array interface (version 2), holding the state."""

    def __init__(self, state: Any, n_qubits: int) -> None:
        tensors = state.getTensors()
        tensor = tensors[0] if len(tensors) == 1 else None
        if not state.is_on_gpu() or tensor is None or tuple(tensor.extents) != (2**n_qubits,):
            raise ValueError("the CUDA-Q state is not one state vector in GPU memory (a tensor-network or host "
                             "state): read it with a host copy")
        itemsize = tensor.get_element_size()
        if itemsize not in _TYPESTR:
            raise ValueError(f"a CUDA-Q state with {itemsize}-byte elements is not complex64 or complex128")
        self.state = state  # the owner of the memory below: alive as long as this view (see the module doc)
        self.__cuda_array_interface__ = {"shape": (2**n_qubits,), "typestr": _TYPESTR[itemsize],
                                         "data": (int(tensor.data()), False), "strides": None, "version": 2}


def device_view(state: Any, n_qubits: int) -> torch.Tensor:
    """A torch tensor viewing a GPU-resident cudaq.State's vector (no copy); it keeps the state alive.

    Shape:
        (2**n_qubits,), complex64 or complex128 as the target simulates, on the GPU that holds the state.
    """
    return torch.as_tensor(_StateView(state, n_qubits))


def stack_states(states: Sequence[Any], n_qubits: int, device: torch.device | str) -> torch.Tensor:
    """The final states of a batch as one tensor on `device`, by device-to-device copies only.

    Shape:
        (batch, 2**n_qubits) complex128.

    CUDA-Q computes on its own stream and torch copies on its current one: every GPU involved (the ones that
    hold the states and the destination, which differ for a layer on cuda:1 while CUDA-Q simulates on cuda:0)
    is synchronised before the copy (the simulation has written the states) and after it (the states may be
    freed once this returns). `torch.cuda.synchronize()` alone would wait on the current device only.
    """
    views = [device_view(state, n_qubits) for state in states]  # no GPU work yet: pointers only
    destination = torch.device(device)
    involved = list(dict.fromkeys([*(view.device for view in views), destination]))
    _synchronize(involved)
    # View by view: the states need not share one GPU (the stack is built on the destination).
    out = torch.stack([view.to(device=destination, dtype=torch.complex128) for view in views])
    _synchronize(involved)
    return out


def _synchronize(devices: Sequence[torch.device]) -> None:
    for device in devices:
        torch.cuda.synchronize(device)


def hands_off_on_device(state_on_gpu: bool, device: torch.device | str) -> bool:
    """States stay on the GPU when the target keeps each one as one vector in GPU memory
    (`Target.state_on_gpu`) and the layer's tensors live on a GPU; a layer on the CPU needs them in host memory
    anyway (one copy, as on the CPU targets), and so do tensor-network and multi-GPU states."""
    return state_on_gpu and torch.device(device).type == "cuda"
