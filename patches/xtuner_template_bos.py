"""A model whose BOS token is its chat template's turn marker trains on a doubled BOS.

XTuner's `encode_fn` puts the tokenizer's BOS before the first turn (and after every turn that
ended with EOS), whatever the template's text starts with. SmolLM2's BOS is `<|im_start|>`, the
token every ChatML turn starts with, so XTuner's qwen_chat template trains it on
`<|im_start|><|im_start|>user ...`, which the model's own chat template never produces (nor
llama.cpp, Ollama or `apply_chat_template` at inference). XTuner special-cases Qwen's tokenizer
classes (no BOS at all) and nothing else.

The rule the patch adds, for every tokenizer and template: a turn whose text already begins with
the BOS token gets no second one. (`adds_bos`, which components.chat_template uses too, so eval and
export render the same prompt.) The turn's leading BOS text is handed to XTuner's own encode_fn
as the BOS it adds, so the ids and labels are XTuner's, minus the duplicate; the caller's example
is never modified.
"""

from __future__ import annotations

import functools

TARGET = "xtuner.dataset.utils"


def adds_bos(text: str, bos_token: str | None) -> bool:
    """Whether a turn starting with `text` needs the tokenizer's BOS put before it."""
    return bool(bos_token) and not text.startswith(bos_token)


def _deduplicated(example: dict, bos_token: str, with_output: bool) -> dict | None:
    """`example` with the leading BOS text removed from each turn XTuner will give a BOS to, or
    None when no turn has one (a new dict: XTuner's map functions may hold the original)."""
    turns, changed, gets_bos = [], False, True
    for turn in example["conversation"]:
        text = turn.get("input") or ""
        if gets_bos and not adds_bos(text, bos_token):
            turn = dict(turn, input=text[len(bos_token):])
            changed = True
        turns.append(turn)
        # encode_fn: the next turn gets a BOS only after an EOS (need_eos_token, the default)
        gets_bos = with_output and turn.get("need_eos_token", True)
    return dict(example, conversation=turns) if changed else None


def _wrap(encode_fn, get_bos_eos_token_ids):
    @functools.wraps(encode_fn)
    def encode(example, tokenizer, max_length, input_ids_with_output=True, *args, **kwargs):
        bos_ids, _ = get_bos_eos_token_ids(tokenizer)
        bos_token = getattr(tokenizer, "bos_token", None)
        if bos_ids and bos_token and tokenizer.convert_tokens_to_ids(bos_token) in bos_ids:
            fixed = _deduplicated(example, bos_token, input_ids_with_output)
            if fixed is not None:
                example = fixed
        return encode_fn(example, tokenizer, max_length, input_ids_with_output, *args, **kwargs)

    encode.__wrapped_by_pack__ = True
    return encode


def apply(utils) -> None:
    if getattr(utils.encode_fn, "__wrapped_by_pack__", False):
        return
    utils.encode_fn = _wrap(utils.encode_fn, utils.get_bos_eos_token_ids)
