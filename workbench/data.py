"""Offline datasets for the workbench, with the preprocessing a hybrid model needs.

Every dataset is generated, bundled with scikit-learn, or read from files the user already has:
nothing is ever downloaded. ``load_dataset`` runs one pipeline for all of them:

    source -> class selection -> limit -> train/test split -> pixel scaling
    -> downsample -> binarize -> standardize -> PCA -> flatten

Whatever is fitted (standardisation statistics, PCA axes) is fitted on the training split only,
so nothing about the test split leaks into preprocessing. Every bad name, option or file raises
``DatasetError`` with a message that says what is wrong and how to fix it.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_blobs,
    make_circles,
    make_moons,
)
from sklearn.model_selection import train_test_split

from .engine.pauli import tfim_terms as ising_terms
from .errors import WorkbenchError


class DatasetError(WorkbenchError, ValueError):
    """A dataset that cannot be built; the message names the problem and the fix."""


@dataclass
class Dataset:
    name: str
    task: str  # "classification" | "regression" | "energy"
    X_train: torch.Tensor  # float32, (N, *input_shape)
    y_train: torch.Tensor  # int64 labels | float32 targets | float32 Hamiltonian coefficients
    X_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, ...]
    n_classes: int | None
    class_names: list[str] | None
    feature_names: list[str] | None
    description: dict  # JSON-serialisable: name, every option used, sizes


def dataset_names() -> list[str]:
    """The loadable dataset names: toys, tabular, images, CSV, then physics."""
    return list(_SOURCES)


def dataset_options(name: str) -> dict[str, Any]:
    """Option name -> default value for one dataset, e.g. to build a form in a GUI."""
    return {key: option.default for key, option in _source(name).options.items()}


def check_dataset_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The given options of dataset `name`, each checked against its type and bounds (see the option
    tables below) without building anything; DatasetError names the first bad one. A shared link's
    options go through this before the dataset is loaded (required ones may still be missing)."""
    if not isinstance(options, dict):
        raise DatasetError(f"dataset options must be a mapping of option names to values, got {str(options)[:100]}")
    schema = _source(name).options
    _resolve_options(name, {key: _Option(None, lambda k, v: v) for key in schema}, options)  # unknown names
    return {key: schema[key].check(key, value) for key, value in options.items()}


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load dataset `name`, apply the preprocessing `options` ask for and split it."""
    source = _source(name)
    opts = _resolve_options(name, source.options, options)
    raw = source.load(opts)
    if opts.get("classes") is not None:
        raw = _select_classes(raw, opts["classes"])
    X_train, X_test, y_train, y_test = _split(raw, opts)
    present = np.unique(y_train)
    if raw.task == "classification" and len(present) < 2:
        left = ", ".join(repr(raw.class_names[int(c)]) for c in present) or "none"
        raise DatasetError(
            f"only {len(present)} class ({left}) is present in the training split; a classifier "
            "needs at least two. Check the 'classes' option and the target column, or raise 'limit'."
        )

    X_train = np.asarray(X_train, dtype=np.float64) / raw.value_scale
    X_test = np.asarray(X_test, dtype=np.float64) / raw.value_scale
    feature_names = raw.feature_names
    if opts.get("downsample") is not None:
        X_train, X_test = _downsample(X_train, X_test, opts["downsample"])
    if opts.get("binarize") is not None:
        threshold = opts["binarize"]
        X_train, X_test = (X_train > threshold).astype(np.float64), (X_test > threshold).astype(np.float64)
    if opts.get("standardize"):
        X_train, X_test = _standardize(X_train, X_test)
    if opts.get("pca") is not None:
        X_train, X_test = _pca(X_train, X_test, opts["pca"])
        feature_names = [f"pc{i + 1}" for i in range(opts["pca"])]
    if opts.get("flatten"):
        X_train, X_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)

    label_dtype = torch.int64 if raw.task == "classification" else torch.float32
    input_shape = tuple(X_train.shape[1:])
    n_classes = len(raw.class_names) if raw.class_names is not None else None
    description = {
        "name": name,
        "task": raw.task,
        "options": opts,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "input_shape": list(input_shape),
        "n_classes": n_classes,
        "class_names": raw.class_names,
        "feature_names": feature_names,
        "target_names": raw.target_names,
    }
    return Dataset(
        name=name,
        task=raw.task,
        X_train=torch.from_numpy(np.ascontiguousarray(X_train, dtype=np.float32)),
        y_train=torch.as_tensor(np.ascontiguousarray(y_train), dtype=label_dtype),
        X_test=torch.from_numpy(np.ascontiguousarray(X_test, dtype=np.float32)),
        y_test=torch.as_tensor(np.ascontiguousarray(y_test), dtype=label_dtype),
        input_shape=input_shape,
        n_classes=n_classes,
        class_names=raw.class_names,
        feature_names=feature_names,
        description=description,
    )


# ---------------------------------------------------------------------------------------------
# Options: each one has a default and a check that normalises the value to plain JSON types
# (so the options can go into the description as they are) or raises a DatasetError.


@dataclass(frozen=True)
class _Option:
    default: Any
    check: Callable[[str, Any], Any]


def _resolve_options(name: str, schema: dict[str, _Option], given: dict[str, Any]) -> dict[str, Any]:
    unknown = [key for key in given if key not in schema]
    if unknown:
        guess = difflib.get_close_matches(unknown[0], list(schema), n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        raise DatasetError(
            f"unknown option {unknown[0]!r} for dataset {name!r}{hint}; "
            f"valid options are: {', '.join(schema)}"
        )
    return {key: option.check(key, given.get(key, option.default)) for key, option in schema.items()}


def _is_integer(value: Any) -> bool:
    # A GUI or a JSON round trip may hand over 3.0 for 3; bools are ints to Python but never meant.
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())


# Upper bounds: every option has one, so no option value can make a dataset exhaust memory or time.
MAX_SAMPLES = 100_000  # generated datasets
MAX_LIMIT = 10_000_000  # samples taken from files
MAX_SEED = 2**32 - 1
MAX_PCA = 4_096
MAX_CLASSES = 100
MAX_NOISE = 100.0
MAX_IMAGE_SIDE = 1_024
MAX_MAGNITUDE = 1e6  # thresholds, couplings and fields
MAX_TEXT = 4_096  # paths and column names
MAX_COLUMNS = 10_000
MAX_TFIM_SAMPLES = 10_000
_MAX_EXACT_QUBITS = 12  # dense exact diagonalisation of the Ising chain


def _integer(minimum: int, optional: bool = False, maximum: int = MAX_LIMIT) -> Callable[[str, Any], int | None]:
    def check(key: str, value: Any) -> int | None:
        if value is None and optional:
            return None
        if not _is_integer(value) or not minimum <= int(value) <= maximum:
            allowed = f"an integer >= {minimum} and <= {maximum:,}" + (" or None" if optional else "")
            raise DatasetError(f"option {key!r} must be {allowed}, got {value!r}")
        return int(value)

    return check


def _real(
    minimum: float = -MAX_MAGNITUDE, optional: bool = False, maximum: float = MAX_MAGNITUDE
) -> Callable[[str, Any], float | None]:
    def check(key: str, value: Any) -> float | None:
        if value is None and optional:
            return None
        numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        )
        if not numeric or not math.isfinite(value) or not minimum <= value <= maximum:
            allowed = f"a finite number >= {minimum:g} and <= {maximum:g}"
            allowed += " or None" if optional else ""
            raise DatasetError(f"option {key!r} must be {allowed}, got {value!r}")
        return float(value)

    return check


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise DatasetError(f"option {key!r} must be True or False, got {value!r}")
    return bool(value)


def _fraction(key: str, value: Any) -> float:
    value = _real()(key, value)
    if not 0 < value < 1:
        raise DatasetError(f"option {key!r} must lie strictly between 0 and 1 (e.g. 0.2), got {value!r}")
    return value


def _choice(*choices: str) -> Callable[[str, Any], str | None]:
    def check(key: str, value: Any) -> str | None:
        if value is not None and value not in choices:
            raise DatasetError(f"option {key!r} must be one of {', '.join(choices)} or None, got {value!r}")
        return value

    return check


def _path(hint: str) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        if value is None:
            raise DatasetError(f"option {key!r} is required: {hint}")
        if not isinstance(value, (str, Path)) or not 0 < len(str(value)) <= MAX_TEXT:
            raise DatasetError(f"option {key!r} must be a path (str or pathlib.Path), got {str(value)[:100]!r}")
        return str(Path(value).expanduser())

    return check


def _downsample_size(key: str, value: Any) -> list[int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(_is_integer(v) and 1 <= v <= MAX_IMAGE_SIDE for v in value)
    ):
        raise DatasetError(
            f"option {key!r} must be a (height, width) pair of integers from 1 to {MAX_IMAGE_SIDE} such as (3, 3), "
            f"got {str(value)[:100]}"
        )
    return [int(v) for v in value]


def _class_list(key: str, value: Any) -> list[int | str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, (list, tuple))
        or len(value) > MAX_CLASSES
        or not all((isinstance(v, str) and len(v) <= MAX_TEXT) or (_is_integer(v) and abs(v) <= MAX_LIMIT)
                   for v in value)
    ):
        raise DatasetError(
            f"option {key!r} must be a list of at most {MAX_CLASSES} class labels or names such as [1, 5], "
            f"got {str(value)[:100]}"
        )
    items = [v if isinstance(v, str) else int(v) for v in value]
    if len(items) < 2 or len(set(items)) != len(items):
        raise DatasetError(f"option {key!r} must name at least two different classes, got {value!r}")
    return items


def _column_list(key: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, (list, tuple))
        or not 0 < len(value) <= MAX_COLUMNS
        or not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in value)
    ):
        raise DatasetError(
            f"option {key!r} must be a non-empty list of at most {MAX_COLUMNS:,} column names or None, "
            f"got {str(value)[:100]}"
        )
    return list(value)


def _target_columns(key: str, value: Any) -> str | list[str]:
    if isinstance(value, str) and len(value) <= MAX_TEXT:
        return value
    if value is None or isinstance(value, str):
        raise DatasetError(f"option {key!r} is required: the name of the column to predict")
    return _column_list(key, value)


def _delimiter(key: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1:
        raise DatasetError(f"option {key!r} must be a single character such as ',' or ';', got {value!r}")
    return value


_SPLIT = {"test_fraction": _Option(0.2, _fraction), "seed": _Option(0, _integer(0, maximum=MAX_SEED))}
_FEATURES = {
    "standardize": _Option(False, _boolean),
    "pca": _Option(None, _integer(1, optional=True, maximum=MAX_PCA)),
    "classes": _Option(None, _class_list),
}
_LIMIT = {"limit": _Option(None, _integer(1, optional=True))}
_IMAGE = {
    "downsample": _Option(None, _downsample_size),
    "binarize": _Option(None, _real(optional=True)),
    "flatten": _Option(False, _boolean),
}


# ---------------------------------------------------------------------------------------------
# Sources: each turns its options into a _Raw, the unsplit (or file-split) data before
# preprocessing.


@dataclass
class _Raw:
    task: str
    X: np.ndarray  # (N, features) or images (N, C, H, W)
    y: np.ndarray
    class_names: list[str] | None
    feature_names: list[str] | None
    target_names: list[str] | None = None  # what the columns of a regression/energy y mean
    X_test: np.ndarray | None = None  # only sources whose files fix the split set these
    y_test: np.ndarray | None = None
    value_scale: float = 1.0  # divides X after the split, e.g. 255 for 8-bit pixels


@dataclass(frozen=True)
class _Source:
    load: Callable[[dict[str, Any]], _Raw]
    options: dict[str, _Option]


def _source(name: str) -> _Source:
    if name not in _SOURCES:
        guess = difflib.get_close_matches(str(name), list(_SOURCES), n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        raise DatasetError(f"unknown dataset {name!r}{hint}; valid datasets are: {', '.join(_SOURCES)}")
    return _SOURCES[name]


def _toy_options(noise: float, **extra: _Option) -> dict[str, _Option]:
    return {
        "n_samples": _Option(300, _integer(4, maximum=MAX_SAMPLES)),
        "noise": _Option(noise, _real(minimum=0, maximum=MAX_NOISE)),
        **extra,
        **_SPLIT,
        **_FEATURES,
    }


def _toy(X: np.ndarray, y: np.ndarray, n_classes: int = 2) -> _Raw:
    return _Raw("classification", X, y, [str(c) for c in range(n_classes)], ["x1", "x2"])


def _circles(o: dict[str, Any]) -> _Raw:
    X, y = make_circles(n_samples=o["n_samples"], noise=o["noise"], factor=0.5, random_state=o["seed"])
    return _toy(X, y)


def _moons(o: dict[str, Any]) -> _Raw:
    X, y = make_moons(n_samples=o["n_samples"], noise=o["noise"], random_state=o["seed"])
    return _toy(X, y)


def _spirals(o: dict[str, Any]) -> _Raw:
    rng = np.random.default_rng(o["seed"])
    n = o["n_samples"]
    arm = np.arange(n) % 2
    # One and a half turns per arm. Arc length of r ~ theta grows as theta**2, so drawing theta
    # as sqrt(uniform) spaces points evenly along the arm instead of bunching them at the centre.
    theta = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    radius = theta / (3 * np.pi)
    angle = theta + np.pi * arm
    X = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return _toy(X + rng.normal(0, o["noise"], X.shape), arm)


def _xor(o: dict[str, Any]) -> _Raw:
    rng = np.random.default_rng(o["seed"])
    n = o["n_samples"]
    # Cycling through the quadrants keeps the two classes balanced to within one sample.
    signs = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]])[np.arange(n) % 4]
    X = signs * rng.uniform(0, 1, (n, 2)) + rng.normal(0, o["noise"], (n, 2))
    return _toy(X, (signs[:, 0] != signs[:, 1]).astype(np.int64))


def _blobs(o: dict[str, Any]) -> _Raw:
    X, y = make_blobs(
        n_samples=o["n_samples"],
        centers=o["n_classes"],
        n_features=2,
        cluster_std=o["noise"],
        random_state=o["seed"],
    )
    return _toy(X, y, o["n_classes"])


def _bundled(loader: Callable[[], Any]) -> Callable[[dict[str, Any]], _Raw]:
    def load(o: dict[str, Any]) -> _Raw:
        bunch = loader()
        names = [str(n) for n in bunch.target_names]
        return _Raw("classification", bunch.data, bunch.target, names, [str(f) for f in bunch.feature_names])

    return load


def _digits(o: dict[str, Any]) -> _Raw:
    bunch = load_digits()
    # 4-bit pixels (0..16): scaled to [0, 1] like MNIST so the same thresholds work for both.
    return _Raw(
        "classification",
        bunch.images[:, None],
        bunch.target,
        [str(n) for n in bunch.target_names],
        None,
        value_scale=16.0,
    )


_IDX_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_HINT = "a directory holding " + ", ".join(f"{s}[.gz]" for s in _IDX_STEMS.values())
_MNIST_URL = "https://yann.lecun.com/exdb/mnist/ (mirror: https://ossci-datasets.s3.amazonaws.com/mnist/)"
_FASHION_URL = "https://github.com/zalandoresearch/fashion-mnist (folder data/fashion)"
_FASHION_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def _idx_options(url: str) -> dict[str, _Option]:
    return {
        "path": _Option(None, _path(f"{_IDX_HINT}; download them from {url}")),
        **_LIMIT,
        # None keeps the files' test:train proportion (1:6 for MNIST) relative to 'limit'.
        "test_limit": _Option(None, _integer(1, optional=True)),
        **_FEATURES,
        **_IMAGE,
    }


def _idx_source(class_names: list[str], url: str) -> Callable[[dict[str, Any]], _Raw]:
    def load(o: dict[str, Any]) -> _Raw:
        directory = Path(o["path"])
        if not directory.is_dir():
            raise DatasetError(f"{directory} is not a directory; 'path' must be {_IDX_HINT}. Download them from {url}")
        files = {key: _find_idx_file(directory, stem, url) for key, stem in _IDX_STEMS.items()}
        arrays = {key: _read_idx(path, ndim=3 if key.endswith("images") else 1) for key, path in files.items()}
        for split in ("train", "test"):
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            if len(images) != len(labels):
                raise DatasetError(
                    f"{files[split + '_images']} holds {len(images)} images but {files[split + '_labels']} "
                    f"holds {len(labels)} labels; the two files do not belong together"
                )
            if labels.size and labels.max() >= len(class_names):
                raise DatasetError(
                    f"{files[split + '_labels']} contains label {labels.max()}, but this dataset has "
                    f"only {len(class_names)} classes; is it the right labels file?"
                )
        if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
            raise DatasetError(
                f"training images are {arrays['train_images'].shape[1:]} but test images are "
                f"{arrays['test_images'].shape[1:]}; the files come from different datasets"
            )
        return _Raw(
            "classification",
            arrays["train_images"][:, None],
            arrays["train_labels"].astype(np.int64),
            class_names,
            None,
            X_test=arrays["test_images"][:, None],
            y_test=arrays["test_labels"].astype(np.int64),
            value_scale=255.0,
        )

    return load


def _find_idx_file(directory: Path, stem: str, url: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"{stem} (or {stem}.gz) is missing from {directory}; 'path' must be {_IDX_HINT}. Download them from {url}"
    )


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (gzipped or not) with `ndim` dimensions."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise DatasetError(f"{path} is a damaged gzip file ({err}); download it again") from err
    # IDX magic: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions.
    expected_magic = bytes([0, 0, 0x08, ndim])
    if data[:4] != expected_magic:
        raise DatasetError(
            f"{path} is not an IDX file of unsigned bytes with {ndim} dimension(s): bad magic number "
            f"0x{data[:4].hex()} (expected 0x{expected_magic.hex()}). Is it the right file, and not "
            "an image, a web page or an archive?"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetError(f"{path} ends inside its IDX header; the file is truncated, download it again")
    dims = struct.unpack(f">{ndim}I", data[4:header_size])
    size = math.prod(dims)
    if len(data) - header_size != size:
        raise DatasetError(
            f"{path} has the wrong size: its header announces dimensions {dims} ({size} bytes of data) "
            f"but it holds {len(data) - header_size}; the file is truncated or corrupt, download it again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


# A numeric target with at most this many distinct whole values is taken as class labels.
_MAX_AUTO_CLASSES = 20


def _csv(o: dict[str, Any]) -> _Raw:
    path = Path(o["path"])
    if not path.is_file():
        raise DatasetError(f"CSV file {path} does not exist; check the path (relative paths start at {Path.cwd()})")
    header, rows, lines = _read_csv(path, o["delimiter"])
    targets = [o["target"]] if isinstance(o["target"], str) else o["target"]
    features = o["features"] if o["features"] is not None else [c for c in header if c not in targets]
    missing = [c for c in [*targets, *features] if c not in header]
    if missing:
        raise DatasetError(f"column {missing[0]!r} is not in {path}; the columns present are: {', '.join(header)}")
    if set(targets) & set(features):
        both = sorted(set(targets) & set(features))
        raise DatasetError(f"column(s) {both} are both target and feature; leave them out of 'features'")
    if not features:
        raise DatasetError(f"{path} has no columns left to use as features besides the target {targets}")

    columns = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    X = np.column_stack([_numeric_column(path, name, columns[name], lines) for name in features])
    _require_finite(path, features, X)

    if len(targets) > 1:
        if o["task"] == "classification":
            raise DatasetError("classification needs a single target column; pass one name as 'target'")
        y = np.column_stack([_numeric_column(path, name, columns[name], lines) for name in targets])
        _require_finite(path, targets, y)
        return _Raw("regression", X, y, None, features, target_names=targets)

    target = targets[0]
    values = columns[target]
    empty = sum(v == "" for v in values)
    if empty:
        raise DatasetError(f"target column {target!r} of {path} is empty in {empty} row(s); drop those rows first")
    numeric = _try_numeric(values)
    task = o["task"] or _infer_task(numeric)
    if task == "regression":
        if numeric is None:
            raise DatasetError(
                f"target column {target!r} is not numeric, so it cannot be a regression target; "
                "use task='classification' or pick a numeric column"
            )
        _require_finite(path, [target], numeric[:, None])
        return _Raw("regression", X, numeric, None, features, target_names=[target])
    if numeric is not None:
        _require_finite(path, [target], numeric[:, None])
        levels = np.unique(numeric)
        names = [str(int(v)) if float(v).is_integer() else repr(float(v)) for v in levels]
        labels = np.searchsorted(levels, numeric)
    else:
        names = sorted(set(values))
        labels = np.array([names.index(v) for v in values])
    return _Raw("classification", X, labels, names, features)


def _read_csv(path: Path, delimiter: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (stripped) and each row's line number; blank lines are skipped."""
    rows, lines = [], []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = [name.strip() for name in next(reader, [])]
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise DatasetError(
                        f"{path} line {reader.line_num} has {len(row)} fields but the header has "
                        f"{len(header)}; fix that line (a stray {delimiter!r} or a missing value?)"
                    )
                rows.append([value.strip() for value in row])
                lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path} is not a UTF-8 text CSV file ({err}); save it as CSV (UTF-8) first") from err
    except csv.Error as err:
        raise DatasetError(f"{path} is not valid CSV: {err}") from err
    if not rows:
        raise DatasetError(
            f"{path} has no data rows; the first line must name the columns and each further line hold one sample"
        )
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DatasetError(f"{path} has duplicate column name(s) {duplicated}; rename them so each column is unique")
    return header, rows, lines


def _numeric_column(path: Path, name: str, values: list[str], lines: list[int]) -> np.ndarray:
    out = np.empty(len(values))
    for i, value in enumerate(values):
        try:
            out[i] = float(value) if value else np.nan
        except ValueError:
            raise DatasetError(
                f"column {name!r} of {path} is not numeric (line {lines[i]} holds {value!r}); "
                "encode it as numbers or leave it out with the 'features' option"
            ) from None
    return out


def _try_numeric(values: list[str]) -> np.ndarray | None:
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        return None


def _infer_task(numeric: np.ndarray | None) -> str:
    if numeric is None:
        return "classification"
    whole = bool(np.all(np.isfinite(numeric)) and np.all(numeric == np.round(numeric)))
    return "classification" if whole and len(np.unique(numeric)) <= _MAX_AUTO_CLASSES else "regression"


def _require_finite(path: Path, names: list[str], matrix: np.ndarray) -> None:
    bad = ~np.isfinite(matrix)
    if bad.any():
        per_column = ", ".join(
            f"{name!r} in {count} row(s)" for name, count in zip(names, bad.sum(axis=0)) if count
        )
        raise DatasetError(
            f"{path} has missing or non-finite (NaN/inf) values: {per_column}; "
            f"{int(bad.any(axis=1).sum())} row(s) affected. Drop those rows or impute the values "
            "(e.g. with the column mean) before loading"
        )


def _tfim(o: dict[str, Any]) -> _Raw:
    if o["h_min"] > o["h_max"]:
        raise DatasetError(f"h_min ({o['h_min']}) is larger than h_max ({o['h_max']}); swap them")
    fields = np.linspace(o["h_min"], o["h_max"], o["n_samples"])
    coefficients = np.stack([_tfim_coefficients(o["n_qubits"], o["J"], h) for h in fields])
    return _Raw("energy", fields[:, None], coefficients, None, ["h"], target_names=tfim_terms(o["n_qubits"]))


_SOURCES: dict[str, _Source] = {
    "circles": _Source(_circles, _toy_options(noise=0.05)),
    "moons": _Source(_moons, _toy_options(noise=0.1)),
    "spirals": _Source(_spirals, _toy_options(noise=0.05)),
    "xor": _Source(_xor, _toy_options(noise=0.1)),
    # For blobs 'noise' is the standard deviation of each cluster.
    "blobs": _Source(_blobs, _toy_options(noise=1.0, n_classes=_Option(3, _integer(2, maximum=MAX_CLASSES)))),
    "iris": _Source(_bundled(load_iris), {**_LIMIT, **_SPLIT, **_FEATURES}),
    "wine": _Source(_bundled(load_wine), {**_LIMIT, **_SPLIT, **_FEATURES}),
    "breast_cancer": _Source(_bundled(load_breast_cancer), {**_LIMIT, **_SPLIT, **_FEATURES}),
    "digits": _Source(_digits, {**_LIMIT, **_SPLIT, **_FEATURES, **_IMAGE}),
    "mnist": _Source(_idx_source([str(d) for d in range(10)], _MNIST_URL), _idx_options(_MNIST_URL)),
    "fashion_mnist": _Source(_idx_source(_FASHION_NAMES, _FASHION_URL), _idx_options(_FASHION_URL)),
    "csv": _Source(
        _csv,
        {
            "path": _Option(None, _path("the CSV file to read")),
            "target": _Option(None, _target_columns),
            "features": _Option(None, _column_list),
            # None infers it: classification for text or few whole-number values, else regression.
            "task": _Option(None, _choice("classification", "regression")),
            "delimiter": _Option(",", _delimiter),
            **_LIMIT,
            **_SPLIT,
            **_FEATURES,
        },
    ),
    "tfim": _Source(
        _tfim,
        {
            "n_qubits": _Option(4, _integer(2, maximum=_MAX_EXACT_QUBITS)),
            "J": _Option(1.0, _real()),
            "h_min": _Option(0.2, _real()),
            "h_max": _Option(2.0, _real()),
            "n_samples": _Option(32, _integer(2, maximum=MAX_TFIM_SAMPLES)),
            **_SPLIT,
        },
    ),
}


# ---------------------------------------------------------------------------------------------
# Pipeline steps.


def _select_classes(raw: _Raw, wanted: list[int | str]) -> _Raw:
    """Keep the wanted classes, relabelled 0..k-1 in the order given."""
    if raw.task != "classification":
        raise DatasetError(
            f"option 'classes' only applies to classification datasets; this one is a {raw.task} dataset"
        )
    names = raw.class_names
    # Every original label, mapped to its new label or -1 when dropped.
    relabel = np.full(len(names), -1)
    for new_label, item in enumerate(wanted):
        # A name match comes first so that a CSV whose labels are the numbers 3 and 7 reads
        # classes=[3, 7] as those labels, not as class indices.
        if str(item) in names:
            relabel[names.index(str(item))] = new_label
        elif isinstance(item, int) and 0 <= item < len(names):
            relabel[item] = new_label
        else:
            raise DatasetError(
                f"class {item!r} is not present; the classes are {names} (give labels 0..{len(names) - 1} or names)"
            )

    def keep(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = relabel[y] >= 0
        return X[mask], relabel[y[mask]]

    X, y = keep(raw.X, raw.y)
    X_test, y_test = keep(raw.X_test, raw.y_test) if raw.X_test is not None else (None, None)
    selected = [names[int(np.flatnonzero(relabel == k)[0])] for k in range(len(wanted))]
    return _Raw(raw.task, X, y, selected, raw.feature_names, raw.target_names, X_test, y_test, raw.value_scale)


def _split(raw: _Raw, o: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """X_train, X_test, y_train, y_test (sklearn's order)."""
    if raw.X_test is not None:
        # The files fix the split; 'limit' takes the first samples so runs are reproducible.
        n_train = len(raw.y) if o["limit"] is None else min(o["limit"], len(raw.y))
        n_test = o["test_limit"]
        if n_test is None:
            n_test = len(raw.y_test) if o["limit"] is None else math.ceil(n_train * len(raw.y_test) / len(raw.y))
        return raw.X[:n_train], raw.X_test[:n_test], raw.y[:n_train], raw.y_test[:n_test]

    # Bundled sets are sorted by class, so any subset must be drawn at random, stratified.
    stratify = raw.y if raw.task == "classification" else None
    X, y = raw.X, raw.y
    try:
        if o.get("limit") is not None and o["limit"] < len(y):
            X, _, y, _ = train_test_split(X, y, train_size=o["limit"], stratify=stratify, random_state=o["seed"])
            stratify = y if stratify is not None else None
        return train_test_split(X, y, test_size=o["test_fraction"], stratify=stratify, random_state=o["seed"])
    except ValueError as err:
        raise DatasetError(
            f"cannot split {len(y)} samples with test_fraction={o['test_fraction']} ({err}); "
            "use more samples (n_samples or limit) or change test_fraction"
        ) from err


def _downsample(train: np.ndarray, test: np.ndarray, size: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Block-average images to `size` with adaptive average pooling (blocks may overlap)."""
    height, width = train.shape[-2:]
    if size[0] > height or size[1] > width:
        raise DatasetError(
            f"downsample {tuple(size)} is larger than the {height}x{width} images; use at most ({height}, {width})"
        )

    def pool(images: np.ndarray) -> np.ndarray:
        return F.adaptive_avg_pool2d(torch.from_numpy(images), tuple(size)).numpy()

    return pool(train), pool(test)


def _standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero mean, unit variance per feature, with the statistics of the training split."""
    flat = train.reshape(len(train), -1)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    # A constant feature (MNIST's blank border) has no spread to divide by, and a spread below
    # float32 resolution is rounding noise: such features are only centred.
    std = np.where(std > 1e-6 * np.maximum(1.0, np.abs(mean)), std, 1.0)

    def apply(X: np.ndarray) -> np.ndarray:
        return ((X.reshape(len(X), -1) - mean) / std).reshape(X.shape)

    return apply(train), apply(test)


def _pca(train: np.ndarray, test: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Project onto the top-k principal axes of the (flattened) training split."""
    train, test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    n, d = train.shape
    if k > d:
        raise DatasetError(f"pca={k} asks for more components than the {d} features there are; use pca <= {d}")
    if k > n:
        raise DatasetError(
            f"pca={k} needs at least {k} training samples but there are {n}; lower pca or use more samples"
        )
    mean = train.mean(axis=0)
    # The d x d covariance keeps memory at d**2 even for 60000 MNIST images, where an SVD of
    # the data matrix would build a 60000 x d factor.
    variances, axes = np.linalg.eigh(np.cov(train - mean, rowvar=False).reshape(d, d))
    axes = axes[:, np.argsort(variances)[::-1][:k]]
    # Eigenvectors have arbitrary signs; making each one's largest loading positive gives the
    # same features for the same data on every machine.
    axes *= np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(k)])
    return (train - mean) @ axes, (test - mean) @ axes


# ---------------------------------------------------------------------------------------------
# Transverse-field Ising chain: H = -J sum_i Z_i Z_{i+1} (open chain) - h sum_i X_i.

_PAULI = {
    "I": np.eye(2, dtype=complex),
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}
# Dense 2**n x 2**n matrices: 12 qubits is 4096 x 4096, about a second to diagonalise.


def pauli_matrix(pauli_string: str) -> np.ndarray:
    """Dense matrix of a Pauli string; character i acts on qubit i, the bit of weight 2**i."""
    if not isinstance(pauli_string, str) or not pauli_string or set(pauli_string) - set(_PAULI):
        raise DatasetError(f"a Pauli string is a non-empty string of the letters I, X, Y, Z, got {pauli_string!r}")
    # kron(A, B) puts A's index in the high bits, so qubit 0 must be the last factor.
    matrix = np.ones((1, 1), dtype=complex)
    for letter in reversed(pauli_string):
        matrix = np.kron(matrix, _PAULI[letter])
    return matrix


def tfim_terms(n_qubits: int) -> list[str]:
    """The Hamiltonian's terms in coefficient order: the n-1 ZZ bonds, then the n X fields."""
    if not _is_integer(n_qubits) or n_qubits < 2:
        raise DatasetError(f"the Ising chain needs n_qubits >= 2 (an integer), got {n_qubits!r}")
    return ising_terms(int(n_qubits))


def _tfim_coefficients(n_qubits: int, J: float, h: float) -> np.ndarray:
    return np.array([-J] * (n_qubits - 1) + [-h] * n_qubits)


def tfim_exact_ground_energy(n_qubits: int, J: float, h: float) -> float:
    """Ground-state energy of the open chain by dense exact diagonalisation."""
    terms = tfim_terms(n_qubits)
    if n_qubits > _MAX_EXACT_QUBITS:
        raise DatasetError(
            f"exact diagonalisation of {n_qubits} qubits needs a {2**n_qubits}-square dense matrix; "
            f"use n_qubits <= {_MAX_EXACT_QUBITS}"
        )
    # Every TFIM term is real, so the real part is the whole matrix at half the memory.
    hamiltonian = sum(c * pauli_matrix(t).real for c, t in zip(_tfim_coefficients(n_qubits, J, h), terms))
    return float(np.linalg.eigvalsh(hamiltonian)[0])
