"""`workbench bench <suite> --cluster`: the suite runs as a job in a Ray worker (a local Ray instance started
here), its progress is printed here, and the result written here has the same rows as a run in this process."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from workbench.bench.cli import bench_app

BASELINE = ["baseline", "--qubits", "4", "--batch", "16", "--epochs", "2"]


def test_the_peers_suite_is_refused_on_a_cluster_before_anything_runs(tmp_path):
    result = CliRunner().invoke(bench_app, ["peers", "--cluster", "ray://head:10001", "--out",
                                            str(tmp_path / "p.json")])
    assert result.exit_code == 2
    assert "virtual environment on this machine" in result.output and "without --cluster" in result.output
    assert not (tmp_path / "p.json").exists()


def test_a_malformed_cluster_address_is_one_clear_message(tmp_path):
    result = CliRunner().invoke(bench_app, [*BASELINE, "--cluster", "head", "--out", str(tmp_path / "b.json")])
    assert result.exit_code == 2 and "ray://HOST:PORT" in result.output
    assert not (tmp_path / "b.json").exists()


@pytest.mark.slow
def test_a_suite_on_ray_gives_the_rows_of_a_local_run_and_ran_in_a_ray_worker(tmp_path, monkeypatch, local_ray):
    monkeypatch.delenv("WORKBENCH_CLUSTER", raising=False)
    runner = CliRunner()
    local = runner.invoke(bench_app, [*BASELINE, "--out", str(tmp_path / "local.json")])
    assert local.exit_code == 0, local.output
    monkeypatch.setenv("WORKBENCH_CLUSTER", "auto")  # the variable alone sends it to the cluster
    remote = runner.invoke(bench_app, [*BASELINE, "--out", str(tmp_path / "ray.json")])
    assert remote.exit_code == 0, remote.output
    assert "as a job on the Ray cluster auto" in remote.output
    assert "baseline: training the hybrid model (seed 0)" in remote.output  # progress streamed back
    here, there = (json.loads((tmp_path / name).read_text()) for name in ("local.json", "ray.json"))
    assert there["worker"]["pid"] != os.getpid() and there["cluster"] == "auto"
    assert "worker" not in here
    assert [(r["model"], r["spec"], r["parameters"]) for r in there["rows"]] == \
        [(r["model"], r["spec"], r["parameters"]) for r in here["rows"]]
    # Same seeds, same data: the trained models agree, not only the table's shape.
    for mine, theirs in zip(here["rows"], there["rows"]):
        assert theirs["test_accuracy"] == pytest.approx(mine["test_accuracy"], abs=1e-9)
        assert theirs["final_loss"] == pytest.approx(mine["final_loss"], rel=1e-5)
    assert there["config"] == here["config"]
