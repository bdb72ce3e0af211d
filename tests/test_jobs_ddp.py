"""torch.distributed: two gloo processes with DDP take the same steps as one process on the whole batch."""

from __future__ import annotations

import pytest
import torch

import workbench as wb
from workbench.data import load_dataset
from workbench.jobs.ddp import train_ddp
from workbench.training import TrainConfig
from workbench.training.trainer import loss_function

CIRCLES = {"n_samples": 100, "noise": 0.05, "standardize": True}


@pytest.mark.slow
def test_two_ddp_processes_equal_one_process_on_the_combined_batch():
    spec = wb.templates.get("vqc-circles")
    # SGD: weights are then a linear function of the averaged gradients. (Adam divides by sqrt(v) + 1e-8, which
    # turns float noise in the analytically-zero gradients of the last RZ gates into visible steps.)
    config = TrainConfig(epochs=1, batch_size=16, lr=0.2, seed=3, optimizer="sgd")
    steps = 4
    events = []
    result = train_ddp(spec, {"name": "circles", "options": CIRCLES}, config, nproc=2, max_steps=steps,
                       on_event=events.append)
    # The oracle: plain torch, one process, the whole batch of each step, same init and order.
    data = load_dataset("circles", **CIRCLES)
    torch.manual_seed(config.seed)
    model = wb.compile(spec)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    loss_fn = loss_function("classification", 1)
    order = torch.randperm(len(data.X_train), generator=torch.Generator().manual_seed(config.seed))
    losses = []
    for b in range(steps):
        index = order[b * 16:(b + 1) * 16]
        optimizer.zero_grad()
        loss = loss_fn(model(data.X_train[index]), data.y_train[index])
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    for name, value in model.state_dict().items():
        assert torch.allclose(result["state_dict"][name], value, atol=1e-5), name
    assert [e["loss"] for e in events] == pytest.approx(losses, abs=1e-5)
    assert [e["step"] for e in events] == list(range(steps)) and result["final"]["ranks"] == 2
    initial = wb.compile(spec)  # the weights really moved: the check is not trivially true
    assert any(not torch.allclose(initial.state_dict()[k], v) for k, v in model.state_dict().items())


def test_uneven_batches_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="multiple of 3"):
        train_ddp(wb.templates.get("vqc-circles"), "circles", TrainConfig(batch_size=16), nproc=3)
