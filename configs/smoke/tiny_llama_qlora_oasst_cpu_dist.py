# The embedded default for `make smoke-dist`: the smoke config, made comparable across process
# counts (demo/smoke_dist.py runs it with 1 and 2 processes and compares the loss curves).
#
#   NPROC_PER_NODE=2 xtuner train configs/smoke/tiny_llama_qlora_oasst_cpu_dist.py \
#       --cfg-options optim_wrapper.accumulative_counts=2 train_cfg.max_epochs=None \
#       train_cfg.max_iters=24
#
# What differs from tiny_llama_qlora_oasst_cpu.py, each for the comparison:
# - a constant learning rate: mmengine steps the schedule every iteration, not every optimizer
#   step, so a 1-process run with twice the accumulation would see a different LR at step t;
# - every rank records the loss of each of its iterations (mmengine logs rank 0's only);
# - no chat sample before training (it adds seconds and nothing to compare);
# - the run's length: the runner sets train_cfg.max_iters per process count.
from mmengine.config import read_base
from mmengine.hooks import CheckpointHook

from components.rank_losses import RankLossHook

with read_base():
    from .tiny_llama_qlora_oasst_cpu import *

param_scheduler = None
custom_hooks = [custom_hooks[0], dict(type=RankLossHook)]  # DatasetInfoHook + per-rank losses
default_hooks.update(checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=10000,
                                     max_keep_ckpts=1))
