"""Parallel search: the same search with 1 and 2 local workers, and on a local Ray instance, gives the same
set of results (same seeds). Wall times are measured by a benchmark command, not here (see the notes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.search import search
from workbench.search.objectives import DETERMINISTIC

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(dataset="circles", dataset_options={"n_samples": 120, "noise": 0.05, "standardize": True},
                epochs=2, objective="val_loss", strategy="evolutionary", budget=6, seed=3)


def _outcome(results) -> set[tuple]:
    """Each candidate with every measure that depends only on the seed (not timings or run ids)."""
    return {(row["key"], *(round(row[m], 6) if isinstance(row.get(m), float) else row.get(m)
                           for m in DETERMINISTIC)) for row in results.final_rows()}


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    return search("circles-vqc", store=tmp_path_factory.mktemp("w1") / "runs.sqlite3", workers=1, **SETTINGS)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_local_workers_give_the_same_results(one_worker, tmp_path):
    two = search("circles-vqc", store=tmp_path / "runs.sqlite3", workers=2, **SETTINGS)
    assert len(two.final_rows()) == 6
    assert _outcome(two) == _outcome(one_worker)
    assert two.report["generations"] == one_worker.report["generations"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_local_ray_instance_gives_the_same_results(one_worker, tmp_path, local_ray):
    on_ray = search("circles-vqc", store=tmp_path / "runs.sqlite3", workers=2, backend="ray", **SETTINGS)
    assert _outcome(on_ray) == _outcome(one_worker)
