"""components.schedule: the recipe's warm-up + cosine schedule works for a dataset of any size
(mmengine's own classes stop a run whose warm-up rounds to 0 iterations, and train one whose
warm-up rounds to 1 at 1e-5 x its learning rate throughout)."""

from __future__ import annotations

import pytest
import torch
from mmengine.optim import CosineAnnealingLR, LinearLR
from mmengine.registry import PARAM_SCHEDULERS

from components.schedule import CosineLR, WarmupLR, iterations


def optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def recipe_schedule(warmup_cls, cosine_cls, warmup_ratio=0.03, max_epochs=1):
    """The two schedulers as configs/_base_/recipe_8gb.py writes them."""
    return [
        dict(type=warmup_cls, start_factor=1e-5, by_epoch=True, begin=0,
             end=warmup_ratio * max_epochs, convert_to_iter_based=True),
        dict(type=cosine_cls, eta_min=0.0, by_epoch=True, begin=warmup_ratio * max_epochs,
             end=max_epochs, convert_to_iter_based=True),
    ]


def build(schedule, epoch_length):
    opt = optimizer()
    return [PARAM_SCHEDULERS.build(dict(s), default_args=dict(optimizer=opt,
                                                              epoch_length=epoch_length))
            for s in schedule]


def test_mmengine_alone_stops_a_small_dataset_before_training():
    # 40 GSM8K rows packed into 23 sequences of 256 tokens: warm-up int(0.03 * 23) = 0 iterations
    with pytest.raises(ValueError, match="end should be larger than begin"):
        build(recipe_schedule(LinearLR, CosineAnnealingLR), epoch_length=23)


def learning_rates(schedulers, steps):
    """The learning rate of each training iteration, stepping as mmengine's ParamSchedulerHook."""
    opt = schedulers[0].optimizer
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        for s in schedulers:
            s.step()
    return rates


def test_mmengine_alone_never_warms_up_a_one_iteration_warmup():
    # 35 iterations x 0.03 = 1.05: the warm-up is iteration 0 at 1e-5 x lr, and nothing raises it
    rates = learning_rates(build(recipe_schedule(LinearLR, CosineAnnealingLR), 35), 35)
    assert max(rates) == pytest.approx(1e-5)


@pytest.mark.parametrize("epoch_length", [1, 2, 23, 33, 35, 1000])
def test_the_recipe_schedule_warms_up_then_decays_for_any_epoch_length(epoch_length):
    schedulers = build(recipe_schedule(WarmupLR, CosineLR), epoch_length)
    warmup, cosine = schedulers
    assert warmup.begin == 0 and warmup.end >= 2
    assert cosine.begin == warmup.end  # the decay starts where the warm-up ends
    assert cosine.end > cosine.begin
    rates = learning_rates(schedulers, epoch_length)
    assert rates[0] == pytest.approx(1e-5)
    if epoch_length >= 2:  # the full rate after the warm-up
        assert max(rates) == pytest.approx(1.0)
    if epoch_length > 2:  # then down
        assert rates[-1] < max(rates)
    if epoch_length == 1000:  # a real dataset: the same iterations as mmengine's own
        assert (warmup.end, cosine.begin, cosine.end) == (30, 30, 1000)


def test_iterations():
    assert iterations(0, 23) == 0
    assert iterations(0.03, 23) == 2
    assert iterations(0.5, 23) == 11
    assert iterations(3, 23) == 69
