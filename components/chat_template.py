"""XTuner's prompt templates as the runtimes outside XTuner need them.

A model answers well only in the format it was trained in. XTuner builds that format in two steps:
`template_map_fn` wraps each turn (SYSTEM + INSTRUCTION before the input, SUFFIX after the
output, SEP between turns) and `encode_fn` adds BOS before a turn and EOS after it unless the
template's SUFFIX is its end-of-turn marker (SUFFIX_AS_EOS). Two rules of the pack complete it,
in training and everywhere else alike:
- a turn whose text already begins with the BOS token gets no second one (SmolLM2's BOS is
  ChatML's `<|im_start|>`; patches/xtuner_template_bos.py);
- the config's `system` prompt is the default system prompt: a conversation without one gets it
  on its first turn, as a model's own template may do (components/template_map.py).

This module turns one template dict into the same string for other renderers:
- `jinja(template, bos_token=..., system=...)`: a Hugging Face `chat_template` (what lm-eval's
  `apply_chat_template`, the GGUF key `tokenizer.chat_template` and llama.cpp use);
- `ollama_template(template, ...)`: the Go template of an Ollama Modelfile;
- `stop_words(template, eos)`: where generation must stop.

`xtuner_ids` is the reference: it runs XTuner's own template_map_fn and encode_fn (with the
pack's rules, as training does), so the tests compare the other renderings with what training
really saw.
"""

from __future__ import annotations

import json
import string

from patches.xtuner_template_bos import adds_bos

ROLES = ("system", "user", "assistant")


class TemplateError(ValueError):
    """A template this module cannot translate (a field other than {input}/{round}/{system})."""


def as_dict(template) -> dict:
    """A plain dict of a template (XTuner's ConfigDict, an mmengine Config node, or a dict)."""
    return {k: template[k] for k in template.keys()}


def _pieces(fmt: str, allowed: set[str]) -> list[tuple[str, str | None]]:
    """`str.format` parts of `fmt`: (literal, field or None); the fields must be in `allowed`."""
    out = []
    for literal, field, spec, conv in string.Formatter().parse(fmt):
        if field is not None and (field not in allowed or spec or conv):
            raise TemplateError(f"template field {{{field}}} in {fmt!r} is not one of "
                                f"{sorted(allowed)}")
        out.append((literal, field))
    return out


# ---- the two template languages' common part -------------------------------------------------
# Jinja and Go's text/template both print a string literal as {{ "..." }} and a value as
# {{ expr }}; json.dumps' escapes are valid in both (Go's literals take Go source escapes, a
# superset of JSON's).

def _literal(text: str) -> str:
    return "{{ " + json.dumps(text) + " }}" if text else ""


def _fmt(fmt: str, values: dict[str, str]) -> str:
    """An XTuner format string ("...{input}...") as template text, each field an expression."""
    out = []
    for literal, field in _pieces(fmt, set(values)):
        out.append(_literal(literal))
        if field is not None:
            out.append("{{ " + values[field] + " }}")
    return "".join(out)


# ---- Jinja (Hugging Face chat_template) --------------------------------------------------------

def _turn_bos(t: dict, bos_token: str | None) -> tuple[bool, bool]:
    """Whether a user turn that follows an EOS (or starts the conversation) gets BOS: (with a
    system prompt, without one). The turn's text starts with SYSTEM or with INSTRUCTION, and a
    turn that already starts with the BOS token gets no second one (the pack's rule)."""
    def starts(fmt: str) -> str:
        return _pieces(fmt, {"system", "input", "round"})[0][0] if fmt else ""

    return (adds_bos(starts(t.get("SYSTEM") or ""), bos_token),
            adds_bos(starts(t["INSTRUCTION"]), bos_token))


def _bos_condition(with_system: bool, without: bool, after_eos: str, system: str, both: str,
                   negate: str) -> str:
    """The test (in the template language whose `and` and `not` forms are given) under which a
    user turn gets BOS, or "" when none does."""
    if with_system and without:
        return after_eos
    if with_system or without:
        return both.format(after_eos, system if with_system else negate.format(system))
    return ""


def jinja(template, *, bos_token: str | None, system: str = "") -> str:
    """The template as a Jinja chat_template over messages [{role, content}], rendering exactly the
    text XTuner trains on: a system message goes before the next user turn (as XTuner's `system`
    field of a turn), `system` (the config's prompt) before the first turn when the conversation
    has none, and a conversation ending in a user turn ends with the assistant's cue (the
    INSTRUCTION already holds it, so add_generation_prompt adds nothing). `bos_token` is the
    tokenizer's: whether a turn gets it depends on what the turn starts with."""
    t = as_dict(template)
    need_eos = not t.get("SUFFIX_AS_EOS", False)
    sys_text = (_fmt(t["SYSTEM"], {"system": "ns.system"}) if t.get("SYSTEM")
                else "{{ ns.system }}")
    instruction = _fmt(t["INSTRUCTION"], {"input": "m.content", "round": "ns.round"})
    after = _literal(t.get("SUFFIX", "") or "")
    if need_eos:
        after += "{{ eos_token }}"
    after += _literal(t.get("SEP", "") or "")
    with_system, without = _turn_bos(t, bos_token)
    when = _bos_condition(with_system, without, "ns.bos", "ns.system", "{} and {}", "not {}")
    bos = ("{%- if " + when + " and bos_token -%}{{ bos_token }}{%- endif -%}") if when else ""
    return (
        "{%- set ns = namespace(bos=true, system=" + json.dumps(system) + ", round=0) -%}"
        "{%- for m in messages -%}"
        "{%- if m.role == 'system' -%}{%- set ns.system = m.content -%}"
        "{%- elif m.role == 'user' -%}"
        "{%- set ns.round = ns.round + 1 -%}"
        # XTuner adds no BOS for tokenizers without one (Qwen's): neither does this
        + bos +
        "{%- if ns.system -%}" + sys_text + "{%- set ns.system = '' -%}{%- endif -%}"
        + instruction +
        "{%- elif m.role == 'assistant' -%}"
        "{{ m.content }}" + after +
        "{%- set ns.bos = " + ("true" if need_eos else "false") + " -%}"
        "{%- endif -%}"
        "{%- endfor -%}"
    )


# ---- Ollama (Go text/template) -----------------------------------------------------------------

def ollama_template(template, *, bos_token: str, eos_token: str, system: str = "") -> str:
    """The Modelfile TEMPLATE: the same text over Ollama's .Messages. Ollama adds the model's BOS
    itself when it tokenizes (where the GGUF says add_bos_token), so the first turn's BOS is left
    to it; BOS/EOS between turns are written out (Ollama parses special tokens in the prompt)."""
    t = as_dict(template)
    need_eos = not t.get("SUFFIX_AS_EOS", False)
    sys_text = _fmt(t["SYSTEM"], {"system": "$system"}) if t.get("SYSTEM") else "{{ $system }}"
    if uses_round(t):
        raise TemplateError(f"INSTRUCTION {t['INSTRUCTION']!r} numbers its rounds: Ollama's "
                            "templates have no arithmetic to count them")
    instruction = _fmt(t["INSTRUCTION"], {"input": ".Content"})
    after = _literal(t.get("SUFFIX", "") or "")
    if need_eos:
        after += _literal(eos_token)
    after += _literal(t.get("SEP", "") or "")
    with_system, without = _turn_bos(t, bos_token)
    when = _bos_condition(with_system, without, "$bos", "$system", "and {} {}", "(not {})")
    bos = ("{{- if " + when + " }}" + _literal(bos_token) + "{{- end }}") if when else ""
    return (
        "{{- $bos := false }}{{- $system := " + json.dumps(system) + " }}"
        "{{- range .Messages }}"
        "{{- if eq .Role \"system\" }}{{- $system = .Content }}"
        "{{- else if eq .Role \"user\" }}"
        + bos +
        "{{- if $system }}" + sys_text + "{{- $system = \"\" }}{{- end }}"
        + instruction +
        "{{- else if eq .Role \"assistant\" }}"
        "{{ .Content }}" + after +
        "{{- $bos = " + ("true" if need_eos else "false") + " }}"
        "{{- end }}"
        "{{- end }}"
    )


def uses_round(template) -> bool:
    t = as_dict(template)
    return any(f == "round" for _, f in _pieces(t["INSTRUCTION"], {"input", "round"}))


# ---- stop words and the reference rendering ----------------------------------------------------

def xtuner_bos(tokenizer) -> str | None:
    """The BOS token XTuner's encode_fn puts before a turn for this tokenizer (none for Qwen's)."""
    from xtuner.dataset.utils import get_bos_eos_token_ids

    return tokenizer.bos_token if get_bos_eos_token_ids(tokenizer)[0] else None


def stop_words(template, eos_token: str | None) -> list[str]:
    """Strings that end an answer: the template's STOP_WORDS, its SUFFIX when that is the
    end-of-turn marker, the tokenizer's EOS; in that order, without repeats."""
    t = as_dict(template)
    words = list(t.get("STOP_WORDS", []) or [])
    if t.get("SUFFIX_AS_EOS") and t.get("SUFFIX"):
        words.append(t["SUFFIX"])
    if eos_token:
        words.append(eos_token)
    return list(dict.fromkeys(w for w in words if w))


def to_conversation(messages: list[dict]) -> list[dict]:
    """[{role, content}] -> XTuner's [{"system", "input", "output"}] turns."""
    turns, system = [], ""
    for m in messages:
        role, content = m["role"], m["content"]
        if role not in ROLES:
            raise TemplateError(f"message role {role!r} is not one of {ROLES}")
        if role == "system":
            system = content
        elif role == "user":
            turns.append({"system": system, "input": content, "output": ""})
            system = ""
        elif not turns:
            raise TemplateError("an assistant message before any user message")
        else:
            turns[-1]["output"] = content
    return turns


def xtuner_ids(template, messages: list[dict], tokenizer, *, system: str = "",
               prompt_only: bool = False) -> list[int]:
    """The ids XTuner trains on for `messages`: the recipe's template map function (XTuner's, with
    `system` as the default system prompt) and XTuner's encode_fn (with the pack's BOS rule in
    force: patches/xtuner_template_bos.py). `prompt_only`: a conversation of one unanswered user
    turn, encoded up to where the answer starts (encode_fn's input_ids_with_output=False)."""
    from xtuner.dataset.utils import encode_fn
    from xtuner.utils import PROMPT_TEMPLATE

    from components.template_map import template_map_fn_factory

    conv = to_conversation(messages)
    if prompt_only and (len(conv) != 1 or conv[0]["output"]):
        raise TemplateError("a prompt is one unanswered user turn (and a system message)")
    # template_map_fn rewrites the turns it is given: nothing here is read after the call
    map_fn = template_map_fn_factory(type(PROMPT_TEMPLATE.default)(as_dict(template)), system)
    example = map_fn({"conversation": conv})
    return encode_fn(example, tokenizer, 10**9,
                     input_ids_with_output=not prompt_only)["input_ids"]


def xtuner_render(template, messages: list[dict], tokenizer, *, system: str = "") -> str:
    """`xtuner_ids` decoded back with their special tokens: the text XTuner trains on."""
    ids = xtuner_ids(template, messages, tokenizer, system=system)
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
