"""Datasets and preprocessing, checked against independent numpy computations."""

from __future__ import annotations

import gzip
import json
import math
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from workbench.data import (
    Dataset,
    DatasetError,
    dataset_names,
    dataset_options,
    load_dataset,
    pauli_matrix,
    tfim_exact_ground_energy,
    tfim_terms,
)

# name -> (input_shape, n_train, n_test, n_classes) with default options; test = ceil(0.2 * N).
BUILTIN = {
    "circles": ((2,), 240, 60, 2),
    "moons": ((2,), 240, 60, 2),
    "spirals": ((2,), 240, 60, 2),
    "xor": ((2,), 240, 60, 2),
    "blobs": ((2,), 240, 60, 3),
    "iris": ((4,), 120, 30, 3),
    "wine": ((13,), 142, 36, 3),
    "breast_cancer": ((30,), 455, 114, 2),
    "digits": ((1, 8, 8), 1437, 360, 10),
    "tfim": ((1,), 25, 7, None),
}
TOYS = ["circles", "moons", "spirals", "xor", "blobs"]


def test_names_cover_every_dataset():
    assert dataset_names() == [*TOYS, "iris", "wine", "breast_cancer", "digits", "mnist", "fashion_mnist", "csv", "tfim"]


def test_options_list_defaults():
    assert dataset_options("blobs")["n_classes"] == 3
    assert dataset_options("moons")["n_samples"] == 300
    assert dataset_options("digits")["flatten"] is False
    assert dataset_options("tfim") == {
        "n_qubits": 4, "J": 1.0, "h_min": 0.2, "h_max": 2.0, "n_samples": 32, "test_fraction": 0.2, "seed": 0,
    }  # fmt: skip
    assert "path" in dataset_options("mnist") and "downsample" in dataset_options("mnist")


@pytest.mark.parametrize("name", list(BUILTIN))
def test_builtin_dataset_shapes_and_types(name):
    input_shape, n_train, n_test, n_classes = BUILTIN[name]
    ds = load_dataset(name)
    assert isinstance(ds, Dataset) and ds.name == name
    assert ds.input_shape == input_shape
    assert ds.X_train.shape == (n_train, *input_shape) and ds.X_test.shape == (n_test, *input_shape)
    assert ds.X_train.dtype == ds.X_test.dtype == torch.float32
    assert ds.n_classes == n_classes
    if n_classes is None:
        assert ds.task == "energy" and ds.y_train.dtype == torch.float32
    else:
        assert ds.task == "classification" and ds.y_train.dtype == torch.int64
        assert ds.y_train.shape == (n_train,) and len(ds.class_names) == n_classes
        assert set(ds.y_train.tolist()) == set(range(n_classes))
    description = json.loads(json.dumps(ds.description))
    assert description["name"] == name and description["n_train"] == n_train and description["n_test"] == n_test
    assert description["options"] == dataset_options(name)
    assert description["input_shape"] == list(input_shape)


@pytest.mark.parametrize("name", TOYS)
def test_toys_are_balanced_and_split_stratified(name):
    ds = load_dataset(name)
    n_classes = ds.n_classes
    assert Counter(ds.y_train.tolist()) == {c: 240 // n_classes for c in range(n_classes)}
    assert Counter(ds.y_test.tolist()) == {c: 60 // n_classes for c in range(n_classes)}


@pytest.mark.parametrize("name", TOYS)
def test_toys_follow_the_seed(name):
    same = load_dataset(name, seed=3), load_dataset(name, seed=3)
    assert torch.equal(same[0].X_train, same[1].X_train)
    assert not torch.equal(same[0].X_train, load_dataset(name, seed=4).X_train)


def _all_points(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    return torch.cat([ds.X_train, ds.X_test]).double().numpy(), torch.cat([ds.y_train, ds.y_test]).numpy()


def test_noiseless_circles_lie_on_their_circles():
    X, y = _all_points(load_dataset("circles", noise=0.0))
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.5, atol=1e-6)


def test_noiseless_xor_labels_follow_the_quadrant():
    X, y = _all_points(load_dataset("xor", noise=0.0))
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(int))


def test_noiseless_spiral_arms_are_half_a_turn_apart():
    X, y = _all_points(load_dataset("spirals", noise=0.0))
    radius = np.hypot(X[:, 0], X[:, 1])
    # Each arm is r = theta / (3 pi); arm 1 is arm 0 turned by pi.
    theta = radius * 3 * np.pi
    expected = np.stack([radius * np.cos(theta + np.pi * y), radius * np.sin(theta + np.pi * y)], axis=1)
    np.testing.assert_allclose(X, expected, atol=1e-5)
    assert radius.max() <= 1.0 + 1e-6


def test_blobs_class_count_option():
    ds = load_dataset("blobs", n_classes=5, n_samples=500)
    assert ds.n_classes == 5 and Counter(torch.cat([ds.y_train, ds.y_test]).tolist()) == {c: 100 for c in range(5)}


def test_standardize_uses_training_statistics():
    raw = load_dataset("iris", seed=7)
    std = load_dataset("iris", seed=7, standardize=True)
    train = raw.X_train.double().numpy()
    mean, spread = train.mean(axis=0), train.std(axis=0)
    np.testing.assert_allclose(std.X_train.numpy().mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(std.X_train.numpy().std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(std.X_test.numpy(), (raw.X_test.double().numpy() - mean) / spread, atol=1e-5)
    assert torch.equal(raw.y_test, std.y_test)


def test_pca_matches_numpy_svd_of_the_training_split():
    k = 5
    std = load_dataset("breast_cancer", standardize=True, seed=1)
    reduced = load_dataset("breast_cancer", standardize=True, pca=k, seed=1)
    train, test = std.X_train.double().numpy(), std.X_test.double().numpy()
    mean = train.mean(axis=0)
    _, singular, vt = np.linalg.svd(train - mean, full_matrices=False)
    variances = reduced.X_train.double().numpy().var(axis=0, ddof=1)
    np.testing.assert_allclose(variances, singular[:k] ** 2 / (len(train) - 1), rtol=1e-4)
    assert np.all(np.diff(variances) < 0)
    # Axes are unique up to sign: align numpy's with ours before comparing projections.
    ours = reduced.X_train.double().numpy()
    projected = (train - mean) @ vt[:k].T
    signs = np.sign(np.sum(ours * projected, axis=0))
    np.testing.assert_allclose(ours, projected * signs, atol=1e-3)
    np.testing.assert_allclose(reduced.X_test.numpy(), (test - mean) @ vt[:k].T * signs, atol=1e-3)
    assert reduced.input_shape == (k,) and reduced.feature_names == [f"pc{i}" for i in range(1, k + 1)]


def test_pca_of_images_flattens_them():
    ds = load_dataset("digits", pca=6)
    assert ds.input_shape == (6,) and ds.X_train.shape[1:] == (6,)


def _sorted_rows(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1)
    return flat[np.lexsort(flat.T[::-1])]


def test_digits_are_sklearn_images_scaled_to_unit_range():
    ds = load_dataset("digits")
    X, _ = _all_points(ds)
    assert X.min() == 0 and X.max() == 1
    np.testing.assert_allclose(_sorted_rows(X), _sorted_rows(load_digits().images / 16), atol=1e-6)
    flat = load_dataset("digits", flatten=True)
    assert flat.input_shape == (64,) and torch.equal(flat.X_train, ds.X_train.reshape(-1, 64))


def _block_mean(images: np.ndarray, rows: list[tuple[int, int]], cols: list[tuple[int, int]]) -> np.ndarray:
    out = np.empty(images.shape[:-2] + (len(rows), len(cols)))
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            out[..., i, j] = images[..., r0:r1, c0:c1].mean(axis=(-1, -2))
    return out


def test_downsample_is_a_block_mean():
    raw = load_dataset("digits").X_train.double().numpy()
    halves = load_dataset("digits", downsample=(4, 4)).X_train.numpy()
    np.testing.assert_allclose(halves, raw.reshape(-1, 1, 4, 2, 4, 2).mean(axis=(3, 5)), atol=1e-6)
    # 8 -> 3 uses adaptive pooling's overlapping blocks [floor(8i/3), ceil(8(i+1)/3)).
    thirds = load_dataset("digits", downsample=(3, 2)).X_train.numpy()
    bounds = [(0, 3), (2, 6), (5, 8)]
    np.testing.assert_allclose(thirds, _block_mean(raw, bounds, [(0, 4), (4, 8)]), atol=1e-6)


def test_binarize_applies_after_downsample():
    raw = load_dataset("digits").X_train.double().numpy()
    ds = load_dataset("digits", downsample=(4, 4), binarize=0.4)
    expected = raw.reshape(-1, 1, 4, 2, 4, 2).mean(axis=(3, 5)) > 0.4
    np.testing.assert_array_equal(ds.X_train.numpy(), expected.astype(np.float32))


def test_classes_keeps_and_relabels_in_the_given_order():
    digits = load_digits()
    ds = load_dataset("digits", classes=[7, 3])
    assert ds.class_names == ["7", "3"] and ds.n_classes == 2
    X, y = _all_points(ds)
    counts = np.bincount(digits.target)
    assert Counter(y.tolist()) == {0: counts[7], 1: counts[3]}
    sevens = {tuple(image.ravel()) for image in digits.images[digits.target == 7] / 16}
    assert all(tuple(row) in sevens for row in X[y == 0].reshape(-1, 64).astype(np.float64))


def test_classes_by_name():
    ds = load_dataset("iris", classes=["virginica", "setosa"])
    assert ds.class_names == ["virginica", "setosa"]
    X, y = _all_points(ds)
    # Setosa (relabelled 1) is the only iris class with petal length under 2.5 cm.
    np.testing.assert_array_equal(X[:, 2] < 2.5, y == 1)
    assert len(y) == 100


def _reload(ds: Dataset) -> Dataset:
    """What a resumed run does: load again from the description stored as JSON."""
    description = json.loads(json.dumps(ds.description))
    return load_dataset(description["name"], **description["options"])


def _assert_same_data(a: Dataset, b: Dataset) -> None:
    for split in ("X_train", "y_train", "X_test", "y_test"):
        assert torch.equal(getattr(a, split), getattr(b, split))


@pytest.mark.parametrize(
    "name, options",
    [
        ("digits", {"classes": [3, 8], "downsample": (4, 4), "standardize": True, "seed": 5}),
        ("iris", {"pca": 2, "limit": 90}),
        ("tfim", {"n_qubits": 3, "test_fraction": 0.25}),
    ],
)
def test_description_reloads_the_same_data(name, options):
    ds = load_dataset(name, **options)
    _assert_same_data(ds, _reload(ds))


def test_limit_draws_a_stratified_subset():
    ds = load_dataset("iris", limit=60, test_fraction=0.5)
    assert len(ds.y_train) == 30 and len(ds.y_test) == 30
    assert Counter(ds.y_train.tolist()) == {0: 10, 1: 10, 2: 10}


@pytest.mark.parametrize(
    "name, options, words",
    [
        ("mnsit", {}, ["unknown dataset", "mnist", "circles", "tfim"]),
        ("iris", {"standardise": True}, ["unknown option", "standardize", "test_fraction"]),
        ("iris", {"test_fraction": 1.5}, ["test_fraction", "between 0 and 1"]),
        ("iris", {"pca": 0}, ["pca", ">= 1"]),
        ("iris", {"pca": 5}, ["pca=5", "4 features"]),
        ("iris", {"standardize": "yes"}, ["standardize", "True or False"]),
        ("iris", {"classes": [0]}, ["classes", "at least two"]),
        ("iris", {"classes": [0, "daisy"]}, ["'daisy'", "not present", "setosa"]),
        ("digits", {"classes": [1, 12]}, ["12", "not present"]),
        ("digits", {"downsample": (3,)}, ["downsample", "(height, width)"]),
        ("digits", {"downsample": (9, 9)}, ["larger than", "8x8"]),
        ("moons", {"noise": -1}, ["noise", ">= 0"]),
        ("moons", {"n_samples": 4, "test_fraction": 0.1}, ["cannot split", "n_samples"]),
        ("tfim", {"h_min": 3.0}, ["h_min", "h_max"]),
        ("tfim", {"classes": [0, 1]}, ["unknown option", "classes"]),
        ("mnist", {}, ["'path' is required", "train-images-idx3-ubyte", "https://"]),
    ],
)
def test_bad_input_explains_itself(name, options, words):
    with pytest.raises(DatasetError) as error:
        load_dataset(name, **options)
    for word in words:
        assert word in str(error.value)


# -- IDX files (MNIST format) ------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture
def idx_dir(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(60, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(20, dtype=np.uint8) * 3) % 10,
    }
    for i, (stem, array) in enumerate(arrays.items()):
        # Half gzipped, half plain: both forms must be read.
        compress = i % 2 == 0
        _write_idx(tmp_path / (stem + ".gz" if compress else stem), array, compress)
    return tmp_path, arrays


def _to_bytes(images: torch.Tensor) -> np.ndarray:
    return torch.round(images * 255).to(torch.uint8).squeeze(1).numpy()


def test_idx_round_trips_the_exact_pixels(idx_dir):
    path, arrays = idx_dir
    ds = load_dataset("mnist", path=str(path))
    assert ds.input_shape == (1, 28, 28) and ds.X_train.shape == (60, 1, 28, 28) and ds.X_test.shape == (20, 1, 28, 28)
    assert 0 <= ds.X_train.min() and ds.X_train.max() <= 1
    np.testing.assert_array_equal(_to_bytes(ds.X_train), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(_to_bytes(ds.X_test), arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.y_train.numpy(), arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.y_test.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert ds.class_names == [str(d) for d in range(10)]


def test_idx_limit_takes_the_first_samples(idx_dir):
    path, arrays = idx_dir
    ds = load_dataset("mnist", path=path, limit=30)
    # The test split keeps the files' 20:60 proportion.
    assert len(ds.y_train) == 30 and len(ds.y_test) == 10
    np.testing.assert_array_equal(_to_bytes(ds.X_train), arrays["train-images-idx3-ubyte"][:30])
    assert len(load_dataset("mnist", path=path, limit=30, test_limit=4).y_test) == 4
    _assert_same_data(ds, _reload(ds))


def test_idx_downsample_binarize_and_classes(idx_dir):
    path, arrays = idx_dir
    ds = load_dataset("fashion_mnist", path=path, classes=["Sneaker", "Trouser"], downsample=(3, 3))
    labels = arrays["train-labels-idx1-ubyte"]
    keep = (labels == 7) | (labels == 1)
    images = arrays["train-images-idx3-ubyte"][keep] / 255.0
    # 28 -> 3 pools the overlapping rows/columns [0, 10), [9, 19), [18, 28).
    bounds = [(0, 10), (9, 19), (18, 28)]
    np.testing.assert_allclose(ds.X_train.numpy()[:, 0], _block_mean(images, bounds, bounds), atol=1e-6)
    np.testing.assert_array_equal(ds.y_train.numpy(), np.where(labels[keep] == 7, 0, 1))
    assert ds.class_names == ["Sneaker", "Trouser"] and ds.input_shape == (1, 3, 3)
    binary = load_dataset("mnist", path=path, downsample=(3, 3), binarize=0.5, flatten=True)
    expected = _block_mean(arrays["train-images-idx3-ubyte"] / 255.0, bounds, bounds) > 0.5
    np.testing.assert_array_equal(binary.X_train.numpy(), expected.reshape(60, 9).astype(np.float32))


def test_idx_missing_file_names_it(idx_dir):
    path, _ = idx_dir
    (path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.*missing") as error:
        load_dataset("mnist", path=path)
    assert "https://" in str(error.value)
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset("mnist", path=path / "nowhere")


@pytest.mark.parametrize(
    "content, words",
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), ["magic number", "0x89504e47", "0x00000801"]),
        (b"label,value\n1,2\n", ["magic number"]),
        (bytes([0, 0, 8, 1]) + struct.pack(">I", 20) + bytes(5), ["truncated", "(20,)"]),
        (b"\x1f\x8b" + bytes(30), ["damaged gzip"]),
    ],
)
def test_idx_bad_file_is_refused(idx_dir, content, words):
    path, _ = idx_dir
    (path / "t10k-labels-idx1-ubyte").write_bytes(content)
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", path=path)
    for word in words:
        assert word in str(error.value)


def test_idx_label_count_must_match_images(idx_dir):
    path, _ = idx_dir
    _write_idx(path / "t10k-labels-idx1-ubyte", np.zeros(19), compress=False)
    with pytest.raises(DatasetError, match="20 images but .* 19 labels"):
        load_dataset("mnist", path=path)


# -- CSV -------------------------------------------------------------------------------------


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.write_text("\n".join(",".join(map(str, line)) for line in [header, *rows]) + "\n")
    return path


def test_csv_text_target_is_classification(tmp_path):
    rows = [[i, i * 0.5, "cat" if i % 2 else "dog"] for i in range(40)]
    ds = load_dataset("csv", path=_write_csv(tmp_path / "pets.csv", ["a", "b", "kind"], rows), target="kind")
    assert ds.task == "classification" and ds.class_names == ["cat", "dog"] and ds.feature_names == ["a", "b"]
    X, y = _all_points(ds)
    # a is odd exactly for the cats (label 0).
    np.testing.assert_array_equal(X[:, 0] % 2 == 1, y == 0)
    np.testing.assert_allclose(X[:, 1], X[:, 0] * 0.5)


def test_csv_few_whole_numbers_are_classes_and_match_by_value(tmp_path):
    rows = [[i, 7 if i < 20 else 3] for i in range(40)]
    path = _write_csv(tmp_path / "d.csv", ["x", "label"], rows)
    ds = load_dataset("csv", path=path, target="label")
    assert ds.task == "classification" and ds.class_names == ["3", "7"]
    picked = load_dataset("csv", path=path, target="label", classes=[7, 3])
    X, y = _all_points(picked)
    assert picked.class_names == ["7", "3"]
    np.testing.assert_array_equal(X[:, 0] < 20, y == 0)
    forced = load_dataset("csv", path=path, target="label", task="regression")
    assert forced.task == "regression" and forced.y_train.dtype == torch.float32 and set(forced.y_train.tolist()) == {3.0, 7.0}


def test_csv_regression_targets(tmp_path):
    rows = [[i, -i, i * 1.5, i * 2.25] for i in range(50)]
    path = _write_csv(tmp_path / "r.csv", ["x", "z", "y1", "y2"], rows)
    single = load_dataset("csv", path=path, target="y1", features=["x"], standardize=True)
    assert single.task == "regression" and single.y_train.shape == (40,) and single.input_shape == (1,)
    assert single.n_classes is None and single.description["target_names"] == ["y1"]
    multi = load_dataset("csv", path=path, target=["y1", "y2"])
    assert multi.y_train.shape == (40, 2) and multi.feature_names == ["x", "z"]
    X, y = _all_points(multi)
    np.testing.assert_allclose(y, np.stack([X[:, 0] * 1.5, X[:, 0] * 2.25], axis=1), rtol=1e-6)


@pytest.mark.parametrize(
    "text, options, words",
    [
        ("a,b,y\n1,2,0\n", {"target": "label"}, ["'label'", "not in", "a, b, y"]),
        ("a,b,y\n1,2,0\n", {"target": "y", "features": ["a", "c"]}, ["'c'", "a, b, y"]),
        ("a,b,y\n1,,0\n2,nan,1\n3,4,0\n4,inf,1\n", {"target": "y"}, ["'b' in 3 row(s)", "impute", "Drop"]),
        ("a,b,y\n1,2,0\n1,x,1\n", {"target": "y"}, ["'b'", "not numeric", "line 3"]),
        ("a,b,y\n1,2,0\n1,2\n", {"target": "y"}, ["line 3", "2 fields"]),
        ("a,b,y\n" + "1,2,5\n" * 10, {"target": "y"}, ["only 1 class", "'5'"]),
        ("a,b,y\n1,2,0\n", {"target": "y", "classes": [0, 1], "task": "regression"}, ["only applies to classification"]),
        ("a,b,y\n1,2,red\n", {"target": "y", "task": "regression"}, ["not numeric", "classification"]),
    ],
)
def test_csv_bad_input_explains_itself(tmp_path, text, options, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetError) as error:
        load_dataset("csv", path=path, **options)
    for word in words:
        assert word in str(error.value)


def test_csv_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("csv", path=tmp_path / "absent.csv", target="y")


# -- Transverse-field Ising chain ------------------------------------------------------------


def test_tfim_terms_order():
    assert tfim_terms(4) == ["ZZII", "IZZI", "IIZZ", "XIII", "IXII", "IIXI", "IIIX"]


def test_pauli_matrix_puts_qubit_zero_in_the_lowest_bit():
    basis = np.eye(4)
    np.testing.assert_array_equal(np.diag(pauli_matrix("ZI")).real, [1, -1, 1, -1])
    np.testing.assert_array_equal(np.diag(pauli_matrix("IZ")).real, [1, 1, -1, -1])
    np.testing.assert_array_equal(pauli_matrix("XI") @ basis[0], basis[1])
    np.testing.assert_array_equal(pauli_matrix("IX") @ basis[0], basis[2])
    np.testing.assert_allclose(pauli_matrix("YI") @ basis[0], 1j * basis[1])
    with pytest.raises(DatasetError, match="I, X, Y, Z"):
        pauli_matrix("XQ")


def test_tfim_two_sites_energy_is_minus_sqrt5():
    # H = -Z0 Z1 - X0 - X1. In the basis (|00> + |11>)/sqrt2, (|01> + |10>)/sqrt2 it reads
    # [[-1, -2], [-2, 1]], eigenvalues +-sqrt(5); the two antisymmetric states sit at -1 and +1.
    assert tfim_exact_ground_energy(2, 1.0, 1.0) == pytest.approx(-math.sqrt(5), abs=1e-12)


def test_tfim_limits():
    # No field: all spins aligned, every bond -J. No coupling: every spin along +x, -h each.
    assert tfim_exact_ground_energy(4, 1.5, 0.0) == pytest.approx(-1.5 * 3)
    assert tfim_exact_ground_energy(4, 0.0, 0.7) == pytest.approx(-0.7 * 4)


def _tfim_by_bits(n: int, J: float, h: float) -> float:
    """The same Hamiltonian built from bit arithmetic instead of Pauli matrices."""
    dim = 2**n
    index = np.arange(dim)
    bits = (index[:, None] >> np.arange(n)) & 1
    spins = 1 - 2 * bits
    hamiltonian = np.diag(-J * np.sum(spins[:, :-1] * spins[:, 1:], axis=1)).astype(float)
    for qubit in range(n):
        hamiltonian[index ^ (1 << qubit), index] -= h
    return float(np.linalg.eigvalsh(hamiltonian)[0])


def test_tfim_energy_matches_an_independent_construction():
    assert tfim_exact_ground_energy(5, 1.0, 0.7) == pytest.approx(_tfim_by_bits(5, 1.0, 0.7), abs=1e-10)


def test_tfim_dataset_coefficients_line_up_with_the_terms():
    ds = load_dataset("tfim", n_qubits=3, J=0.8, h_min=0.5, h_max=1.5, n_samples=11)
    assert ds.description["target_names"] == tfim_terms(3) and ds.y_train.shape == (8, 5)
    fields = torch.cat([ds.X_train, ds.X_test])[:, 0].double().numpy()
    np.testing.assert_allclose(np.sort(fields), np.linspace(0.5, 1.5, 11), atol=1e-6)
    for h, coefficients in zip(ds.X_train[:3, 0].tolist(), ds.y_train[:3].double().numpy()):
        np.testing.assert_allclose(coefficients, [-0.8, -0.8, -h, -h, -h], atol=1e-6)
        hamiltonian = sum(c * pauli_matrix(t) for c, t in zip(coefficients, tfim_terms(3)))
        assert np.linalg.eigvalsh(hamiltonian)[0] == pytest.approx(tfim_exact_ground_energy(3, 0.8, h), abs=1e-5)
