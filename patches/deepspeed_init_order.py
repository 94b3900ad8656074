"""`xtuner train --deepspeed` initializes LoRA differently from the same config without it.

Same config, same `randomness.seed`: with `--deepspeed` every LoRA A matrix starts from other
random numbers than without it, so the run is a different run. Measured with the smoke model on
2 CPU processes, ZeRO-2 against one process: the first step's loss is equal, the next ones differ
by up to 1.7e-2 in 8 steps (1.1e-4 with the patch); demo/smoke_dist.py, docs/multi-gpu.md. Not an
optimizer, clipping or loss-scale difference: the gradients differ from the first step, because
the weights do.

The cause is an order. `--deepspeed` makes XTuner use mmengine's FlexibleRunner, and mmengine
0.10 builds the model at a different point in its two runners, both after seeding:
- `Runner.__init__` builds the model, and `train()` builds the train loop later;
- `FlexibleRunner.train()` builds the train loop first, then `strategy.prepare` the model.
Building an iteration-based train loop already iterates its dataloader (mmengine's
`_InfiniteDataloaderIterator`), and torch draws the loader's base seed from the global generator
(`torch.empty((), dtype=torch.int64).random_()` in `_BaseDataLoaderIter.__init__`). Without
DeepSpeed that draw comes after the LoRA init; with it, before, so peft's `kaiming_uniform_`
starts one draw later in the stream. (`LoRA B` starts at zero, so the first loss cannot show it.)

The patch builds the model at the start of `FlexibleRunner.train()`, before the train loop, with
the strategy's own `build_model` (`strategy.prepare` takes an already built module as is): the
random stream is consumed in Runner's order, so one seed gives one initialization with or
without DeepSpeed.
"""

from __future__ import annotations

import functools

TARGET = "mmengine.runner._flexible_runner"


def apply(module) -> None:
    cls = module.FlexibleRunner
    if getattr(cls.train, "__pack_patch__", None):
        return
    original = cls.train

    @functools.wraps(original)
    def train(self):
        if isinstance(self.model, dict):  # not built yet: build it where Runner does, first
            self.model = self.strategy.build_model(self.model)
        return original(self)

    train.__pack_patch__ = "deepspeed_init_order"
    cls.train = train
