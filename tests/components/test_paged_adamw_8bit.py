"""components.paged_adamw_8bit: a quarter of AdamW's state bytes, and training that goes as far."""

from __future__ import annotations

import warnings

import pytest
import torch

from components.paged_adamw_8bit import PagedAdamW8bit
from tests.patches.memory_models import batch, build, llama_dir, loss_of

STEPS = 15


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return llama_dir(tmp_path_factory.mktemp("adam8") / "llama")


def state_bytes(optimizer) -> int:
    seen, total = set(), 0
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value) and value.untyped_storage().data_ptr() not in seen:
                seen.add(value.untyped_storage().data_ptr())  # bnb shares its quantile maps
                total += value.untyped_storage().nbytes()
    return total


def train(model_dir, make_optimizer):
    model = build(model_dir, patches=dict(loss_chunk=64), r=32)  # adapters >= 4096 elements
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params)
    data = batch(128)
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = loss_of(model, data, torch.bfloat16)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, state_bytes(optimizer), sum(p.numel() for p in params)


def test_state_is_a_quarter_and_training_goes_as_far(model_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses_8, bytes_8, n = train(model_dir, lambda p: PagedAdamW8bit(p, lr=2e-3))
    assert not [w for w in caught if "aged optimizers" in str(w.message)]  # no CPU fallback note
    losses_32, bytes_32, _ = train(model_dir, lambda p: torch.optim.AdamW(p, lr=2e-3))
    assert bytes_32 >= 8 * n  # two fp32 moments per parameter
    assert bytes_8 < 0.35 * bytes_32, (bytes_8, bytes_32)
    # the same fit of one batch, step for step, within a few percent
    assert losses_8[-1] < 0.8 * losses_8[0]
    assert losses_8[-1] == pytest.approx(losses_32[-1], rel=0.05)


def test_cpu_parameters_get_the_unpaged_class():
    import bitsandbytes as bnb

    opt = PagedAdamW8bit([torch.nn.Parameter(torch.zeros(64, 64))])
    assert type(opt) is bnb.optim.AdamW8bit
    groups = PagedAdamW8bit([{"params": [torch.nn.Parameter(torch.zeros(4))], "lr": 0.1}])
    assert groups.param_groups[0]["lr"] == 0.1
