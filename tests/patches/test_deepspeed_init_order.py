"""patches/deepspeed_init_order.py: one seed, one initialization, with or without `--deepspeed`.

`xtuner train --deepspeed` trains with mmengine's FlexibleRunner, without it with Runner. The
failure needs no DeepSpeed: FlexibleRunner on its default (single-device) strategy builds the
model after the train loop as it does under DeepSpeed, so this runs everywhere, CI included.
The end-to-end check (ZeRO-2 on 2 processes against 1) is tests/demo/test_smoke_dist.py.
"""

from tests.helpers import python

# Both runners, same seed, same iteration-based loop over an infinite sampler (the recipe's);
# the model's init weights and the global generator's state as training starts.
INIT = """
import hashlib, tempfile
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from mmengine.runner import Runner
from mmengine.runner._flexible_runner import FlexibleRunner


@MODELS.register_module()
class InitProbe(BaseModel):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(16, 16)  # kaiming_uniform_, like peft's LoRA A

    def forward(self, inputs, mode="loss"):
        return dict(loss=self.lin(inputs).pow(2).mean())


def digest(t):
    return hashlib.sha1(t.detach().numpy().tobytes()).hexdigest()[:12]


class Grab(Hook):
    def before_train(self, runner):
        model = getattr(runner.model, "module", runner.model)
        self.seen = (digest(model.lin.weight), digest(torch.get_rng_state()))


def start(runner_cls):
    grab = Grab()
    with tempfile.TemporaryDirectory() as work_dir:
        runner_cls(
            model=dict(type="InitProbe"), work_dir=work_dir, experiment_name=runner_cls.__name__,
            train_dataloader=dict(dataset=[dict(inputs=torch.ones(16))] * 4, batch_size=2,
                                  sampler=dict(type="InfiniteSampler", shuffle=True),
                                  collate_fn=dict(type="default_collate")),
            train_cfg=dict(by_epoch=False, max_iters=1),
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.0)),
            randomness=dict(seed=42), custom_hooks=[grab],
            default_hooks=dict(logger=None, checkpoint=None),
        ).train()
    return grab.seen


runner, flexible = start(Runner), start(FlexibleRunner)
print("weights", runner[0], flexible[0], "rng", runner[1], flexible[1])
"""


def _digests(out) -> list[str]:
    assert out.returncode == 0, out.stdout[-3000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("weights ")][-1]
    return line.split()


def test_without_the_patch_the_flexible_runner_initializes_other_weights():
    _, runner, flexible, _, _, _ = _digests(
        python(INIT, XTUNER_PACK_PATCHES="-deepspeed_init_order"))
    assert runner != flexible  # the train loop's dataloader drew first
    _, runner, flexible, _, rng_runner, rng_flexible = _digests(python(INIT))
    assert runner == flexible
    # and the random stream goes on from the same state: dropout, data order, later draws
    assert rng_runner == rng_flexible
