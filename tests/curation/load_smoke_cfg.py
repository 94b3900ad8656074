# The pack's CPU smoke recipe with its dataset replaced by `load_conversations` (GSM8K, the
# InternLM2 chat template): what a config of the pack does, run by test_load_train.py through
# the real `xtuner train`, with --cfg-options pointing data_files at the fixture.
# ruff: noqa: F403, F405
from mmengine.config import read_base
from xtuner.utils import PROMPT_TEMPLATE

from curation.convert.load import load_conversations

with read_base():
    from ...configs.smoke.tiny_llama_qlora_oasst_cpu import *

train_dataloader.dataset.dataset = dict(type=load_conversations, source="gsm8k", split="train")
train_dataloader.dataset.dataset_map_fn = None
train_dataloader.dataset.template_map_fn.template = PROMPT_TEMPLATE.internlm2_chat
