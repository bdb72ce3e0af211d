"""Hybrid TD3 (issue 14): it learns Pendulum in a small budget, and a resumed run continues the same run exactly."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from workbench.cli import app
from workbench.rl import RLError, TD3Config, TD3Run, resume_td3
from workbench.store import RunStore


@pytest.mark.slow
def test_hybrid_td3_improves_its_return_on_pendulum(tmp_path):
    """4000 environment steps (500 random first): the deterministic policy's mean return over 3 evaluation
    episodes rises from the initial actor's (about -1200 to -1600) to above -700 and by at least 400."""
    run = TD3Run(TD3Config(agent="hybrid", steps=4000, start_steps=500, log_every=500, seed=0),
                 store=RunStore(tmp_path / "runs.db"))
    assert run.agent.actor.quantum_layers, "the hybrid actor holds a quantum block"
    before = run.evaluate()["test_return"]
    result = run.run()
    assert result["status"] == "completed"
    after = result["final"]["test_return"]
    assert after > -700 and after > before + 400, (before, after)
    steps = run.stream.events("step")
    assert steps and all(e["circuit_executions"] > 0 and e["critic_loss"] >= 0 for e in steps)
    assert any("quantum_grad_variance" in e for e in steps)


def _episode_returns(store: RunStore, run_id: str) -> list[tuple[int, float]]:
    return [(e["step"], e["return"]) for e in store.events(run_id, kind="episode")]


@pytest.mark.slow
def test_resume_after_interruption_continues_the_same_run(tmp_path):
    """A run cancelled mid-way and resumed (replay buffer, optimisers and RNG from the checkpoint) records the
    same episode returns as an uninterrupted run with the same seed, under the same run id, with no gap."""
    config = dict(agent="classical", steps=800, start_steps=200, batch_size=32, log_every=100, seed=3)
    store = RunStore(tmp_path / "runs.db")
    whole = TD3Run(TD3Config(**config), store=store)
    assert whole.run()["status"] == "completed"

    interrupted = TD3Run(TD3Config(**config), store=store)
    interrupted.stream.subscribe(lambda e: interrupted.cancel() if e["kind"] == "episode" and e["epoch"] == 2
                                 else None)
    first = interrupted.run()
    assert first["status"] == "cancelled" and interrupted.position["step"] < 800
    checkpoint_step = store.latest_checkpoint(first["run_id"])[0]
    assert 0 < checkpoint_step < 800
    resumed = resume_td3(first["run_id"], store)
    assert resumed.buffer.position == checkpoint_step  # the replay buffer came back with the checkpoint
    second = resumed.run()
    assert second["status"] == "completed" and second["run_id"] == first["run_id"]
    expected = _episode_returns(store, whole.run_id)
    got = _episode_returns(store, first["run_id"])
    assert [s for s, _ in got] == [s for s, _ in expected]
    assert [r for _, r in got] == pytest.approx([r for _, r in expected], rel=1e-5)
    assert second["final"]["test_return"] == pytest.approx(store.get_run(whole.run_id).final_metrics["test_return"],
                                                           rel=1e-5)


def test_classical_twin_has_the_hybrid_actors_parameter_budget():
    hybrid = TD3Run(TD3Config(agent="hybrid", steps=10, start_steps=10))
    classical = TD3Run(TD3Config(agent="classical", steps=10, start_steps=10))
    assert not classical.agent.actor.quantum_layers
    quantum = sum(layer.weight.numel() for layer in hybrid.agent.actor.quantum_layers.values())
    assert hybrid.agent.actor_parameters <= classical.agent.actor_parameters <= hybrid.agent.actor_parameters + quantum


def test_cli_trains_records_and_explains_bad_input(tmp_path):
    runner = CliRunner()
    db = tmp_path / "runs.db"
    result = runner.invoke(app, ["rl", "train", "--agent", "classical", "--steps", "250", "--start-steps", "200",
                                 "--store", str(db)])
    assert result.exit_code == 0, result.output
    (record,) = RunStore(db).list_runs()
    assert record.status == "completed" and record.dataset["name"] == "Pendulum-v1"
    assert "test_return" in record.final_metrics and record.final_metrics["steps"] == 250
    bad = runner.invoke(app, ["rl", "train", "--env", "NoSuchEnv-v0", "--store", str(db)])
    assert bad.exit_code == 2 and "cannot make environment 'NoSuchEnv-v0'" in bad.output
    with pytest.raises(RLError, match="agent 'quantum'"):
        TD3Config(agent="quantum")


def test_mujoco_hopper_runs_when_installed():
    pytest.importorskip("mujoco")
    run = TD3Run(TD3Config(env="Hopper-v5", agent="hybrid", steps=60, start_steps=40, batch_size=16, log_every=20))
    result = run.run()
    assert result["status"] == "completed" and run.stream.events("step")
    assert torch.isfinite(torch.tensor(result["final"]["test_return"]))
