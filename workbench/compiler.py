"""Spec → torch.nn.Module. `compile()` turns each block into a module and each quantum block into a
QuantumLayer whose execution plan (`workbench.engine.plan.resolve`) picks the executor and gradient method."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import spec as S
from .engine.layer import QuantumLayer
from .engine.noise import NoiseModel
from .engine.plan import ExecutionConfig, human_bytes, resolve, with_noise_engine
from .limits import check_shots, check_torch_compile_work
from .model_file import check_overrides, load_weights, read_model_file


class ScaledTanh(nn.Module):
    """scale * tanh(x): maps unbounded features to rotation angles in (-scale, scale)."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(x)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


def _classical_module(block: S._Block, in_shape: tuple[int, ...]) -> nn.Module:
    if isinstance(block, S.Linear):
        return nn.Linear(in_shape[0], block.out_features, bias=block.bias)
    if isinstance(block, S.Conv2d):
        return nn.Conv2d(in_shape[0], block.out_channels, block.kernel_size, block.stride, block.padding)
    if isinstance(block, S.Pool):
        return (nn.MaxPool2d if block.mode == "max" else nn.AvgPool2d)(block.kernel_size)
    if isinstance(block, S.Flatten):
        return nn.Flatten()
    if isinstance(block, S.Reshape):
        return nn.Unflatten(1, tuple(block.shape)) if len(in_shape) == 1 else nn.Sequential(
            nn.Flatten(), nn.Unflatten(1, tuple(block.shape)))
    if isinstance(block, S.Activation):
        if block.fn == "scaled_tanh":
            return ScaledTanh(block.scale)
        return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}[block.fn]()
    if isinstance(block, S.Dropout):
        return nn.Dropout(block.p)
    if isinstance(block, S.BatchNorm):
        return nn.BatchNorm1d(in_shape[0]) if len(in_shape) == 1 else nn.BatchNorm2d(in_shape[0])
    raise S.SpecError(f"block {block.id}: no module for type {block.type}", block.id, "type")


class HybridModel(nn.Module):
    """The compiled network: blocks in order, each a module named by its block id."""

    def __init__(self, spec: S.ArchitectureSpec, execution: ExecutionConfig,
                 initial_weights: dict[str, Any] | None = None):
        super().__init__()
        self.spec = spec
        self.execution = execution
        self.shapes = spec.shapes()
        initial_weights = dict(initial_weights or {})
        unknown = set(initial_weights) - {b.id for b in spec.quantum_blocks()}
        if unknown:
            raise ValueError(f"initial_weights names {sorted(unknown)}, which are not quantum blocks of the spec: use "
                             f"{[b.id for b in spec.quantum_blocks()]}")
        self.blocks = nn.ModuleDict()
        for block, (in_shape, _) in zip(spec.blocks, self.shapes):
            if isinstance(block, S.Quantum):
                module = QuantumLayer(block, in_shape[0], config=execution,
                                      initial_weights=initial_weights.get(block.id))
            else:
                module = _classical_module(block, in_shape)
            self.blocks[block.id] = module
        self.to(torch.device(execution.device))
        if execution.precision == "double":
            self.to(torch.float64)  # classical layers too: float64 outputs end to end

    @property
    def config(self) -> dict[str, Any]:
        """The compile settings as saved with the model (JSON-ready); precision follows model.double()."""
        data = self.execution.to_dict()
        data["precision"] = "double" if self.dtype == torch.float64 else "single"
        return data

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the model's parameters (float32 unless precision 'double' or model.double())."""
        for tensor in list(self.parameters()) + list(self.buffers()):
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.float64 if self.execution.precision == "double" else torch.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = tuple(self.spec.input_shape)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"model {self.spec.name!r} expects input of shape (batch, {', '.join(map(str, expected))}) "
                             f"but got {tuple(x.shape)}")
        if x.is_floating_point():
            x = x.to(self.dtype)  # a float64 model takes float32 data, like a float32 model takes float64
        for module in self.blocks.values():
            x = module(x)
        return x

    @property
    def quantum_layers(self) -> dict[str, QuantumLayer]:
        return {name: m for name, m in self.blocks.items() if isinstance(m, QuantumLayer)}

    def gradient_info(self) -> dict[str, dict[str, str]]:
        """Per quantum block: the gradient method in use and why it was chosen."""
        return {name: {"method": layer.choice.method, "reason": layer.choice.reason}
                for name, layer in self.quantum_layers.items()}

    def circuit_executions(self) -> int:
        return sum(layer.circuit_executions for layer in self.quantum_layers.values())

    def describe(self, batch: int = 32, file=None) -> str:
        """A table of blocks, shapes and parameters, then target, gradient method and memory estimate."""
        lines = [f"{self.spec.name}: {self.spec.task}, input {tuple(self.spec.input_shape)}",
                 f"{'block':<14}{'type':<12}{'in':<16}{'out':<12}{'params':>8}  details"]
        total = 0
        for block, (in_shape, out_shape) in zip(self.spec.blocks, self.shapes):
            module = self.blocks[block.id]
            params = sum(p.numel() for p in module.parameters())
            total += params
            details = ""
            if isinstance(module, QuantumLayer):
                details = (f"{block.qubits} qubits, {block.encoding} encoding, {block.ansatz} x{block.depth}, "
                           f"{module.plan.mode}, role {block.role}")
            lines.append(f"{block.id:<14}{block.type:<12}{str(in_shape):<16}{str(out_shape):<12}{params:>8}  {details}")
        lines.append(f"total trainable parameters: {total}")
        config = self.config
        lines.append(f"target: {config['target']}  device: {config['device']}  "
                     f"precision: {config['precision']}  shots: {config.get('shots') or 'exact'}")
        if config.get("noise"):
            lines.append(f"noise: {config['noise']}")
        for name, layer in self.quantum_layers.items():
            lines.append(f"{name}: gradient {layer.choice.method} ({layer.choice.reason}); "
                         f"{len(layer.circuit.gates)} gates, {len(layer.circuit.rotation_gates)} angles; memory "
                         f"≈ {human_bytes(layer.memory_estimate(batch))} for a batch of {batch}")
            lines += [f"{name}: hint: {hint}" for hint in layer.execution.hints]
        text = "\n".join(lines)
        print(text, file=file)
        return text

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Spec, compile settings and weights in one file; written atomically. Holds no code."""
        path = Path(path)
        payload = {"format": "workbench-model", "version": 1, "spec": self.spec.to_json(indent=None),
                   "config": json.dumps(self.config), "state_dict": {k: v.detach().cpu() for k, v in
                                                                     self.state_dict().items()}}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(buffer.getvalue())
        os.replace(tmp.name, path)
        return path


def compile(spec: S.ArchitectureSpec | dict | str | Path, target: str = "torch", gradient: str = "auto",
            device: str | torch.device = "cpu", *, noise: NoiseModel | dict | None = None, shots: int | None = None,
            precision: str = "single", target_options: dict | None = None, emulate: bool = True,
            seed: int | None = None, gradient_options: dict | None = None,
            execution: ExecutionConfig | dict | None = None,
            initial_weights: dict[str, Any] | None = None) -> HybridModel:
    """Compile a spec into a torch module whose quantum layers run on `target` with `gradient`.

    Args:
        target: 'torch' (native statevector), 'torch-density' (native noisy), or a CUDA-Q target (see
            `workbench.engine.targets.TARGETS`: qpp-cpu, density-matrix-cpu, nvidia..., hardware names emulated).
        gradient: 'auto' or a registered method (`workbench.engine.gradients.method_names()`).
        gradient_options: settings of the gradient method (surrogate: see
            `workbench.engine.gradients.surrogate.SurrogateOptions`).
        execution: an ExecutionConfig (or its dict) instead of target/gradient/device/... keywords.
        seed: initial weights drawn from this seed; torch's global random state is left as it was.
        initial_weights: {quantum block id: weight vector} to start from.
    """
    spec = S.load_spec(spec)
    if execution is None:
        execution = ExecutionConfig(target=target, gradient=gradient, device=str(device), precision=precision,
                                    shots=check_shots(shots), noise=noise, emulate=emulate,
                                    target_options=target_options or {}, gradient_options=gradient_options or {})
    execution = with_noise_engine(ExecutionConfig.from_any(execution))
    check_shots(execution.shots)
    for block in spec.quantum_blocks():  # a state that cannot fit is the first thing to say (with its GiB)
        resolve(execution, block).check_memory(batch=1)
    check_torch_compile_work(spec, execution.target, torch.device(execution.device))
    if seed is None:
        return HybridModel(spec, execution, initial_weights)
    # Every initial weight (classical and quantum) from the seed, without touching the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return HybridModel(spec, execution, initial_weights)


def load_model(path: str | os.PathLike, **overrides: Any) -> HybridModel:
    """Rebuild a saved model from its spec and settings, then load its weights (never unpickles code).

    The file may choose only gradient, precision, shots, noise and gradient options; target, device,
    target_options and emulate are the caller's (see `workbench.model_file`). Bad files raise ModelFileError.
    """
    check_overrides(overrides)
    spec, settings, state_dict = read_model_file(path)
    model = compile(spec, **{**settings, **overrides})
    load_weights(model, state_dict, path)
    return model
