"""The tokenizer of the pack's preference (DPO/ORPO) configs: its chat template is the config's
XTuner prompt template.

XTuner's build_preference_dataset formats each pair with `tokenizer.apply_chat_template`, while
its SFT path, its chat hook and `xtuner chat` use the config's PROMPT_TEMPLATE. `PairTokenizer`
loads the tokenizer and sets its chat template to that prompt template written as Jinja, so a
DPO run trains on the format the chat hook asks in (and the tiny smoke tokenizer, which has no
template, works). The recipe names it as the tokenizer's `type` when `preference` is set.
"""

from __future__ import annotations

import json


def _literal(text: str) -> str:
    return "{{ " + json.dumps(text, ensure_ascii=False) + " }}" if text else ""


def _fill(template: str, fields: dict[str, str]) -> str:
    """`template`'s literal text as Jinja output, each {field} as the Jinja expression given."""
    out, rest = [], template
    while rest:
        hits = [(rest.find("{" + f + "}"), f) for f in fields if "{" + f + "}" in rest]
        if not hits:
            out.append(_literal(rest))
            break
        at, field = min(hits)
        out += [_literal(rest[:at]), "{{ " + fields[field] + " }}"]
        rest = rest[at + len(field) + 2:]
    return "".join(out)


def chat_template(prompt_template, bos_token: str | None = None) -> str:
    """XTuner's prompt template (SYSTEM, INSTRUCTION, SUFFIX, SUFFIX_AS_EOS, SEP) as a Jinja chat
    template laid out as XTuner's template_map_fn + encode_fn lay out a conversation: BOS, then
    per round the system text (first round), the instruction, the reply, its suffix or EOS, SEP.
    No BOS where the conversation's text already starts with it (`bos_token`, the tokenizer's:
    SmolLM2's is ChatML's <|im_start|>), the pack's rule in training (patches.xtuner_template_bos).
    """
    from patches.xtuner_template_bos import adds_bos

    t = dict(prompt_template)
    end = _literal(t.get("SUFFIX", ""))
    if not t.get("SUFFIX_AS_EOS", False):
        end += "{{ eos_token }}"

    def opens_with(fmt: str) -> str:  # the literal text a turn starts with
        return fmt.split("{", 1)[0]

    with_system = bos_token is None or adds_bos(opens_with(t.get("SYSTEM", "{system}")), bos_token)
    without = bos_token is None or adds_bos(opens_with(t["INSTRUCTION"]), bos_token)
    bos = ("{% if messages and messages[0]['role'] == 'system' %}"
           + ("{{ bos_token }}" if with_system else "") + "{% else %}"
           + ("{{ bos_token }}" if without else "") + "{% endif %}")
    return (
        bos + "{% set ns = namespace(round=0) %}"
        "{% for m in messages %}"
        "{% if m['role'] == 'system' %}" + _fill(t.get("SYSTEM", "{system}"),
                                                  {"system": "m['content']"}) +
        "{% elif m['role'] == 'user' %}{% set ns.round = ns.round + 1 %}"
        + _fill(t["INSTRUCTION"], {"input": "m['content']", "round": "ns.round"}) +
        "{% else %}{{ m['content'] }}" + end + _literal(t.get("SEP", "")) +
        "{% endif %}{% endfor %}"
    )


def PairTokenizer(*, prompt_template, **kwargs):  # noqa: N802 - a `type` in configs
    """AutoTokenizer.from_pretrained(**kwargs) with the chat template of `prompt_template`."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(**kwargs)
    tokenizer.chat_template = chat_template(prompt_template, tokenizer.bos_token or "")
    return tokenizer
