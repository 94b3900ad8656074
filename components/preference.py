"""The tokenizer of the pack's preference (DPO/ORPO) configs: its chat template is the config's
XTuner prompt template.

XTuner's build_preference_dataset formats each pair with `tokenizer.apply_chat_template`, while
its SFT path, its chat hook and `xtuner chat` use the config's PROMPT_TEMPLATE. `PairTokenizer`
loads the tokenizer and sets its chat template to that prompt template written as Jinja by the
same renderer eval and export use (components/chat_template.py: the text XTuner's SFT lays out,
BOS and EOS between turns included), so a DPO run trains on the format the chat hook asks in
(and the tiny smoke tokenizer, which has no template, works). The recipe names it as the
tokenizer's `type` when `preference` is set.
"""

from __future__ import annotations

from .chat_template import jinja


def PairTokenizer(*, prompt_template, **kwargs):  # noqa: N802 - a `type` in configs
    """AutoTokenizer.from_pretrained(**kwargs) with the chat template of `prompt_template`."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(**kwargs)
    tokenizer.chat_template = jinja(prompt_template, bos_token=tokenizer.bos_token)
    return tokenizer
