"""Architecture search: spaces, objectives, strategies against the exhaustive optimum, the VQE optimiser
against exact diagonalisation, the supernet against the dense-matrix oracle, store records, resume, CLI.

The reference space is `circles-vqc` (12 candidates: encoding x depth x entanglement of a 2-qubit classifier)
on 160 circles samples, 3 epochs per candidate, objective val_loss (continuous, so the optimum is unique).
Training is deterministic given the seed, so every search sees the same cost for the same candidate.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import final_state, pauli_matrix
from workbench import spec as S
from workbench.search import (SearchRecords, SearchResults, SpaceError, get_space, halving_rungs,
                              load_space, pareto_front, search)
from workbench.search import objectives as O
from workbench.search.supernet import SuperCircuit, discretised_block
from workbench.search.vqe import diagonal_hamiltonian, minimise_diagonal
from workbench.store import RunStore

DATA = {"n_samples": 160, "noise": 0.05, "standardize": True}
SETTINGS = dict(dataset="circles", dataset_options=DATA, epochs=3, objective="val_loss", gradient_variance=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return RunStore(tmp_path_factory.mktemp("search") / "runs.sqlite3")


@pytest.fixture(scope="module")
def exhaustive(store):
    return search("circles-vqc", strategy="exhaustive", budget=12, store=store, **SETTINGS)


def _ranking(results: SearchResults) -> list[tuple[str, float]]:
    return sorted(((r["key"], r["val_loss"]) for r in results.final_rows()), key=lambda kv: kv[1])


# -- spaces -----------------------------------------------------------------------------------------


def test_space_json_round_trip_and_structure():
    space = get_space("digits-quantum-block")
    again = load_space(space.to_json())
    assert again == space and again.size == 2 * 3 * 3 * 3 == 54
    assert [c.path for c in space.choices] == ["blocks.qlayer.qubits", "blocks.qlayer.encoding",
                                               "blocks.qlayer.depth", "blocks.qlayer.entanglement"]
    assert space.n_bits == 1 + 2 + 2 + 2


def test_fit_sizes_the_layer_before_the_quantum_block():
    space = get_space("digits-quantum-block")
    for candidate in space.candidates():
        q = candidate.spec.block("qlayer")
        expected = 2 * q.qubits if q.encoding == "dense_angle" else q.qubits
        assert candidate.spec.block("fc_in").out_features == expected


def test_invalid_candidates_are_reported_with_their_reason():
    space = get_space("quantum-placement")
    invalid = space.invalid()
    # role 'output' with the optional head present: the quantum block is not last.
    assert {tuple(c.choices[p] for p in ("blocks.q.role", "blocks.head.present")) for c in invalid} == {("output", True)}
    assert len(invalid) == 4
    assert all("role 'output' must be the last block" in c.reason for c in invalid)
    valid = [c for c in space.candidates() if c.valid]
    assert all(S.load_spec(c.spec.to_dict()) == c.spec for c in valid)


def test_ties_and_training_choices():
    space = get_space("digits-mlp-16")
    assert space.size == 16 and space.n_bits == 4
    for candidate in space.candidates():
        spec = candidate.spec
        ids = [b.id for b in spec.blocks]
        two_layers = candidate.choices["blocks.hidden1.present"]
        assert ("hidden1" in ids) == ("act1" in ids) == two_layers
        if two_layers:
            assert spec.block("hidden1").out_features == spec.block("hidden0").out_features
            assert spec.block("act1").fn == spec.block("act0").fn
        assert candidate.train == {"lr": candidate.choices["train.lr"]}


def test_codes_cover_the_space():
    space = get_space("circles-vqc")  # options 2 x 3 x 2 -> 1 + 2 + 1 bits
    decoded = [space.code_to_index(code) for code in range(2**space.n_bits)]
    assert sorted(i for i in decoded if i is not None) == sorted(c.index for c in space.candidates())
    assert sum(i is None for i in decoded) == 16 - 12  # depth index 3 names no option
    assert all(space.index_to_code(i) == code for code, i in enumerate(decoded) if i is not None)


@pytest.mark.parametrize("base_change, message", [
    ({"depth": {"range": [3, 1]}}, "'range' needs two integers"),
    ({"depth": {"choice": []}}, "'choice' needs a non-empty list"),
    ({"encoding": []}, "an empty list offers no choice"),
])
def test_bad_markers_are_explained(base_change, message):
    data = json.loads(get_space("circles-vqc").to_json())
    data["base"]["blocks"][2].update(base_change)
    with pytest.raises(SpaceError, match=message):
        load_space(data)


def test_bad_fit_and_same_are_explained():
    data = json.loads(get_space("circles-vqc").to_json())
    data["base"]["blocks"][0]["out_features"] = {"fit": "to_angles"}
    with pytest.raises(SpaceError, match="'fit' must name a quantum block"):
        load_space(data)
    data = json.loads(get_space("digits-mlp-16").to_json())
    data["base"]["blocks"][2]["out_features"] = {"same": "blocks.nothing.out_features"}
    with pytest.raises(SpaceError, match="'same' must name a choice"):
        load_space(data)
    with pytest.raises(SpaceError, match="does not exist"):
        load_space("no-such-space.json")


# -- objectives -------------------------------------------------------------------------------------


def test_pareto_front_against_brute_force():
    rng = np.random.default_rng(3)
    rows = [{"key": i, "val_accuracy": float(a), "parameters": int(p)}
            for i, (a, p) in enumerate(zip(rng.integers(0, 5, 40) / 4, rng.integers(1, 8, 40)))]
    front = {r["key"] for r in pareto_front(rows, ("val_accuracy", "parameters"))}
    expected = {r["key"] for r in rows if not any(
        o["val_accuracy"] >= r["val_accuracy"] and o["parameters"] <= r["parameters"]
        and (o["val_accuracy"] > r["val_accuracy"] or o["parameters"] < r["parameters"]) for o in rows)}
    assert front == expected and front


def test_circuit_depth_counts_parallel_layers():
    gate = lambda *w: type("G", (), {"wires": w})  # noqa: E731
    # RY on q0, q1, q2 in parallel (1), CNOT 0-1 (2), CNOT 1-2 (3), RY q0 alongside it (3)
    assert O.circuit_depth([gate(0), gate(1), gate(2), gate(0, 1), gate(1, 2), gate(0)], 3) == 3


@pytest.mark.slow
def test_gradient_variance_matches_the_analytic_value():
    """Loss <Z> = cos(w) for input 0: d/dw = -sin(w), whose variance over w ~ U[0, 2π) is 1/2."""
    from workbench import compile as compile_spec

    spec = S.load_spec({"input_shape": [1], "task": "regression", "blocks": [
        {"type": "quantum", "id": "q", "qubits": 1, "encoding": "angle", "depth": 1, "rotations": ["ry"],
         "entanglement": "none"}]})
    model = compile_spec(spec)
    variance = O.gradient_variance(model, lambda out, y: out.mean(), torch.zeros(1, 1), None, samples=1000)
    assert variance == pytest.approx(0.5, abs=0.04)  # standard error ≈ 0.011


# -- the VQE optimiser --------------------------------------------------------------------------------


def test_diagonal_hamiltonian_reproduces_the_costs():
    costs = np.random.default_rng(0).normal(size=8)
    matrix = sum(t["coeff"] * pauli_matrix(t["pauli"]) for t in diagonal_hamiltonian(costs))
    assert np.allclose(matrix, np.diag(costs))


@pytest.mark.slow
def test_vqe_finds_the_ground_state_of_random_costs():
    for seed in range(2):
        costs = np.random.default_rng(seed).normal(size=8)
        result = minimise_diagonal(costs, seed=seed)
        assert result.best == int(np.argmin(costs))
        assert result.probability > 0.95
        assert result.energy == pytest.approx(result.ground_energy, abs=0.05)


# -- strategies on the reference space ----------------------------------------------------------------


def test_exhaustive_trains_every_valid_candidate_once(exhaustive, store):
    assert sorted(r["key"] for r in exhaustive.final_rows()) == sorted(c.key for c in get_space("circles-vqc").candidates())
    assert exhaustive.best["key"] == _ranking(exhaustive)[0][0]
    # every candidate is a run grouped under the search, and its measures are the run's own numbers
    for row in exhaustive.final_rows():
        run = store.get_run(row["run_id"])
        assert run.parent_id == exhaustive.search_id and run.status == "completed"
        assert run.final_metrics["test_accuracy"] == pytest.approx(row["test_accuracy"])
        assert store.events(run.id, "epoch")[-1]["val_loss"] == pytest.approx(row["val_loss"])


@pytest.mark.parametrize("strategy, budget, top", [("random", 8, 3), ("evolutionary", 8, 3)])
def test_sampling_strategies_reach_the_top_of_the_exhaustive_ranking(exhaustive, store, strategy, budget, top):
    """Stated margin: with 8 of 12 candidates, the best found is among the exhaustive top 3."""
    results = search("circles-vqc", strategy=strategy, budget=budget, store=store, seed=1, **SETTINGS)
    assert len(results.final_rows()) == budget
    ranking = [key for key, _ in _ranking(exhaustive)]
    assert results.best["key"] in ranking[:top]
    # the same candidate trained in another search has the same cost (deterministic evaluation)
    costs = dict(_ranking(exhaustive))
    assert all(r["val_loss"] == pytest.approx(costs[r["key"]], abs=1e-6) for r in results.final_rows())


@pytest.mark.slow
def test_vqe_strategy_finds_the_exhaustive_optimum_with_high_probability(exhaustive, store):
    results = search("circles-vqc", strategy="vqe", budget=12, store=store, **SETTINGS)
    report = results.report
    assert report["affordable"] and report["matches_exhaustive"]
    assert report["key"] == exhaustive.best["key"] == results.best["key"]
    assert report["probability"] >= 0.9
    assert math.fsum(report["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_vqe_strategy_on_a_partial_budget_measures_its_pick(exhaustive, store):
    """Budget 8 of 12: 7 sampled, the rest predicted; the VQE's pick is measured and lands in the top 4."""
    results = search("circles-vqc", strategy="vqe", budget=8, store=store, seed=2, **SETTINGS)
    report = results.report
    assert not report["affordable"] and report["key"] in {r["key"] for r in results.final_rows()}
    assert results.best["key"] in [key for key, _ in _ranking(exhaustive)][:4]


def test_supernet_discretises_to_a_valid_spec_that_trains(exhaustive, store):
    """Margin: the discretised circuit's val_loss is within 0.1 of the exhaustive optimum of the space."""
    results = search("circles-vqc", strategy="supernet", budget=1, store=store, **SETTINGS)
    (row,) = results.final_rows()
    spec = S.load_spec(results.spec(row["key"]))
    block = spec.block("vqc")
    assert block.ansatz == "custom" and row["status"] == "completed"
    assert store.get_run(row["run_id"]).spec == spec.to_dict()
    assert row["val_loss"] <= _ranking(exhaustive)[0][1] + 0.1
    # the architecture weights left uniform (0.25 of four operations) and now pick operations
    weights = results.report["architecture"]["gate_weights"]
    assert np.mean([max(position) for layer in weights for position in layer]) > 0.4


@pytest.mark.parametrize("encoding, features", [("angle", 3), ("reupload", 3), ("dense_angle", 6)])
def test_supernet_circuit_matches_the_dense_oracle_when_one_op_dominates(encoding, features):
    torch.manual_seed(1)
    net = SuperCircuit(qubits=3, depth=2, n_features=features, encoding=encoding, rotation="rx", input_scaling=0.7)
    with torch.no_grad():
        net.alpha.normal_().mul_(1e3)  # softmax becomes one-hot: the mixture is the discretised circuit
        net.beta.normal_().mul_(1e3)
        net.theta.uniform_(-3, 3)
    x = torch.rand(4, features) * 2 - 1
    block = discretised_block(S.Quantum(id="q", qubits=3, encoding=encoding, rotation="rx", input_scaling=0.7), net)
    _, angles = net.discretise()
    out = net(x).detach().double().numpy()
    for i in range(4):
        psi = final_state(block, x[i].double().numpy(), angles)
        expected = [np.real(psi.conj() @ pauli_matrix(p) @ psi) for p in net.observables]
        assert np.allclose(out[i], expected, atol=1e-5)


def test_supernet_mixture_is_differentiable_in_the_architecture_weights():
    net = SuperCircuit(qubits=2, depth=1, n_features=2)
    net(torch.rand(3, 2)).sum().backward()
    assert net.alpha.grad is not None and net.alpha.grad.abs().sum() > 0 and net.beta.grad.abs().sum() > 0


# -- successive halving, resume, records ----------------------------------------------------------------


def test_halving_rungs():
    assert halving_rungs(8, 2) == [1, 2, 4, 8] and halving_rungs(9, 3) == [1, 3, 9] and halving_rungs(1) == [1]


def test_successive_halving_continues_only_the_best_and_matches_full_training(exhaustive, store):
    results = search("circles-vqc", strategy="exhaustive", budget=12, store=store, halving=True, eta=3, **SETTINGS)
    rows = results.final_rows()
    full = [r for r in rows if not r["stopped_early"]]
    assert len(full) == math.ceil(12 / 3) and len(rows) == 12
    first_rung = {r["key"]: r["measures"]["val_loss"] for r in results.rows if r["epochs"] == 1}
    assert {r["key"] for r in full} == set(sorted(first_rung, key=first_rung.get)[:4])
    # a continued run (resumed from its checkpoint) equals a run trained for 3 epochs from the start
    costs = dict(_ranking(exhaustive))
    assert all(r["val_loss"] == pytest.approx(costs[r["key"]], abs=1e-5) for r in full)
    first_runs = {r["key"]: r["run_id"] for r in results.rows if r["epochs"] == 1}
    for r in full:  # the same run continued: its history holds all three epochs
        assert r["run_id"] == first_runs[r["key"]]
        assert [e["epoch"] for e in store.events(r["run_id"], "epoch")] == [0, 1, 2]


def test_an_interrupted_search_resumes_where_it_stopped(exhaustive, store):
    seen = []

    def stop_after_three(event):
        if event["kind"] == "candidate":
            seen.append(event["key"])
            if len(seen) == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        search("circles-vqc", strategy="random", budget=6, store=store, seed=5, on_event=stop_after_three, **SETTINGS)
    records = SearchRecords(store)
    interrupted = records.list()[0]
    assert interrupted.status == "interrupted" and len(records.candidates(interrupted.id)) == 3
    runs_before = len(store.list_runs())
    resumed = search(resume=interrupted.id, store=store)
    assert resumed.search_id == interrupted.id and resumed.report["replayed"] == 3
    assert len(store.list_runs()) == runs_before + 3  # only the missing three trained
    fresh = search("circles-vqc", strategy="random", budget=6, store=store, seed=5, **SETTINGS)
    assert {r["key"] for r in resumed.final_rows()} == {r["key"] for r in fresh.final_rows()}
    assert SearchResults.load(interrupted.id, store).best["key"] == resumed.best["key"]


def test_results_to_pandas_and_json(exhaustive):
    frame = exhaustive.to_pandas()
    assert len(frame) == 12 and {"key", "val_loss", "parameters", "circuit_depth", "two_qubit_gates",
                                 "executions_per_step", "time_per_step", "choice:blocks.vqc.depth"} <= set(frame.columns)
    # deeper circuits have more parameters: 2 qubits x 2 rotations per layer, + 2x2 + 2 classical for fc_in
    assert all(frame["parameters"] == 6 + 4 * frame["choice:blocks.vqc.depth"])
    again = SearchResults.from_json(exhaustive.to_json())
    assert again.best == exhaustive.best and again.pareto("val_loss", "parameters") == \
        exhaustive.pareto("val_loss", "parameters")


def test_python_entry_point_is_workbench_search(tmp_path):
    import workbench

    results = workbench.search(get_space("circles-vqc"), "circles", strategy="random", budget=2, epochs=1,
                               dataset_options={"n_samples": 40}, store=tmp_path / "r.sqlite3",
                               gradient_variance=False)
    assert isinstance(results, SearchResults) and len(results.final_rows()) == 2


def test_search_errors_are_explained(tmp_path):
    from workbench.search import SearchError
    from workbench.search.objectives import ObjectiveError
    from workbench.search.strategies import StrategyError

    with pytest.raises(ObjectiveError, match="unknown objective 'speed'"):
        search("circles-vqc", "circles", objective="speed", store=tmp_path / "r.sqlite3")
    with pytest.raises(StrategyError, match="unknown strategy 'annealing'"):
        search("circles-vqc", "circles", strategy="annealing", store=tmp_path / "r.sqlite3")
    with pytest.raises(SearchError, match="give a search space and a dataset"):
        search(store=tmp_path / "r.sqlite3")


def test_cli_search_prints_progress_and_a_results_table(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app

    out = tmp_path / "results.json"
    result = CliRunner().invoke(app, ["search", "circles-vqc", "--strategy", "exhaustive", "--budget", "3",
                                      "--epochs", "1", "-o", "n_samples=40", "--store", str(tmp_path / "r.sqlite3"),
                                      "--out", str(out), "--pareto", "val_accuracy,parameters"])
    assert result.exit_code == 0, result.output
    assert "candidates" in result.output and "3/3" in result.output
    assert "best: " in result.output and "★" in result.output
    saved = SearchResults.from_json(out.read_text())
    assert len(saved.final_rows()) == 3 and saved.best["key"] in result.output
    listed = CliRunner().invoke(app, ["search", "--list", "--store", str(tmp_path / "r.sqlite3")])
    assert listed.exit_code == 0 and saved.search_id in listed.output and "completed" in listed.output
    bad = CliRunner().invoke(app, ["search", "missing.json", "--dataset", "circles"])
    assert bad.exit_code == 2 and "does not exist" in bad.output
