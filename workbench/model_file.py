"""Reading a saved model file (`HybridModel.save`) as data that cannot reach beyond its purpose.

A model file carries the spec itself (inline JSON, never a path), the weights, and the compile
settings it was saved with. Of those settings, the file may only choose what changes numbers,
never where or on what the model runs:

    FILE_SETTINGS   gradient, precision, shots (1..limits.MAX_SHOTS), noise, gradient_options
                    (bounded surrogate settings): taken from the file
                    unless the caller overrides them.
    CALLER_SETTINGS target, device, target_options, emulate: always the caller's (defaults: the
                    native 'torch' engine on the CPU, emulated); the file's values are ignored.

So a file can never select real quantum hardware, credentials, a device or a path. Everything
else in the file (unknown keys, wrong types, an empty or mismatched state dict) is a
ModelFileError that names the problem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from . import limits as L
from . import spec as S
from .errors import ModelFileError, OptionError, WorkbenchError

FILE_SETTINGS = ("gradient", "precision", "shots", "noise", "gradient_options")
CALLER_SETTINGS = ("target", "device", "target_options", "emulate")
COMPILE_OPTIONS = FILE_SETTINGS + CALLER_SETTINGS + ("seed",)
MAX_MODEL_BYTES = 4 << 30


class MissingModelFile(WorkbenchError, FileNotFoundError):
    """The model file path names nothing."""


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict[str, Any], dict[str, torch.Tensor]]:
    """(spec dict, the file's allowed settings, state dict) of a saved model; ModelFileError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MissingModelFile(f"model file {path} does not exist: check the path (save one with model.save(path))")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelFileError(f"{path} is {path.stat().st_size / 2**30:.1f} GiB, more than any saved workbench model: "
                             "check the path")
    try:
        # weights_only: plain tensors and containers only; a pickle that would run code is refused, never run.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelFileError(f"{path} is not a saved workbench model ({err.__class__.__name__}): save one with "
                             "model.save(path)") from None
    if not isinstance(payload, dict) or payload.get("format") != "workbench-model":
        raise ModelFileError(f"{path} is not a saved workbench model: save one with model.save(path)")
    if payload.get("version") != 1 or not all(k in payload for k in ("spec", "config", "state_dict")):
        raise ModelFileError(f"{path} is a workbench model file of an unsupported version or is incomplete: "
                             "save it again with model.save(path)")
    unknown = sorted(set(payload) - {"format", "version", "spec", "config", "state_dict"}, key=str)
    if unknown:
        raise ModelFileError(f"{path} has unknown field(s) {unknown}: it was not written by model.save(path)")
    return _spec(payload["spec"], path), _settings(payload["config"], path), _state_dict(payload["state_dict"], path)


def _spec(value: Any, path: Path) -> dict:
    if isinstance(value, str) and value.lstrip().startswith("{"):
        value = L.parse_json(value, f"the spec in {path}", ModelFileError)
    if not isinstance(value, dict):
        raise ModelFileError(f"{path}: the 'spec' field must hold the spec itself as a JSON object (a file carries its "
                             "spec, never a reference to one): save the model again with model.save(path)")
    try:
        return S.load_spec(value).to_dict()
    except S.SpecError as err:
        raise ModelFileError(f"{path}: the saved spec is not valid: {err}") from None


def _settings(value: Any, path: Path) -> dict[str, Any]:
    if isinstance(value, str):
        value = L.parse_json(value, f"the compile settings in {path}", ModelFileError)
    if not isinstance(value, dict):
        raise ModelFileError(f"{path}: the saved compile settings must be a JSON object, got {type(value).__name__}: "
                             "save the model again")
    unknown = sorted(set(value) - set(FILE_SETTINGS) - set(CALLER_SETTINGS), key=str)
    if unknown:
        raise ModelFileError(f"{path}: unknown compile setting(s) {unknown}; a model file may hold "
                             f"{', '.join(FILE_SETTINGS + CALLER_SETTINGS)}")
    settings = {key: value[key] for key in FILE_SETTINGS if key in value}
    gradient = settings.get("gradient", "auto")
    if not isinstance(gradient, str) or len(gradient) > 40:
        raise ModelFileError(f"{path}: the saved gradient method must be a name such as 'adjoint', got {gradient!r}")
    if settings.get("precision", "single") not in ("single", "double"):
        raise ModelFileError(f"{path}: the saved precision must be 'single' or 'double', got "
                             f"{settings['precision']!r}")
    try:
        L.check_shots(settings.get("shots"), "the saved shots")
    except OptionError as err:
        raise ModelFileError(f"{path}: {err}") from None
    if settings.get("gradient_options") is not None:
        from .engine.gradients.surrogate import SurrogateError, SurrogateOptions

        if not isinstance(settings["gradient_options"], dict):
            raise ModelFileError(f"{path}: the saved gradient options must be a JSON object")
        try:
            SurrogateOptions.from_dict(settings["gradient_options"])
        except SurrogateError as err:
            raise ModelFileError(f"{path}: the saved gradient options are not valid: {err}") from None
    noise = settings.get("noise")
    if noise is not None:
        from .engine.noise import NoiseModel

        if not isinstance(noise, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in noise.values()):
            raise ModelFileError(f"{path}: the saved noise must map channel names to probabilities, got {noise!r}")
        try:
            NoiseModel.from_any(noise)
        except (TypeError, ValueError) as err:
            raise ModelFileError(f"{path}: the saved noise is not valid: {err}") from None
    return settings


def _state_dict(value: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in value.items()):
        raise ModelFileError(f"{path}: the saved weights must map parameter names to tensors: save the model again")
    return value


def check_overrides(overrides: dict[str, Any]) -> None:
    """The caller's settings for `load_model` must be compile options."""
    unknown = sorted(set(overrides) - set(COMPILE_OPTIONS))
    if unknown:
        raise OptionError(f"load_model got unknown setting(s) {unknown}; use {', '.join(COMPILE_OPTIONS)}")


def load_weights(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Load the file's weights into the rebuilt model; ModelFileError if they do not fit it exactly."""
    expected = model.state_dict()
    if expected and not state_dict:
        raise ModelFileError(f"{path} holds no weights (an empty state dict): save the trained model again")
    missing = sorted(set(expected) - set(state_dict))
    extra = sorted(set(state_dict) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state_dict) if expected[k].shape != state_dict[k].shape)
    if missing or extra or wrong:
        parts = [f"missing {missing[:5]}" if missing else "", f"unexpected {extra[:5]}" if extra else "",
                 f"wrong shape {wrong[:5]}" if wrong else ""]
        raise ModelFileError(f"{path}: the saved weights do not fit the saved spec ({'; '.join(p for p in parts if p)}): "
                             "save the model again")
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: the saved weights cannot be loaded: {str(err)[:300]}") from None

