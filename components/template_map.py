"""XTuner's template map function with the config's system prompt as the default system prompt.

A model's own chat template may put a system prompt before a conversation that has none
(SmolLM2-Instruct's: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"), so
that is the text it sees at inference, in `apply_chat_template`, llama.cpp and Ollama. The recipe's
`system` knob is that prompt: XTuner's chat hook asks with it, and with this map function the
first turn of every training conversation without a system prompt gets it too; `aftertrain eval`
and `export` use it the same way (components.chat_template). With `system=""` this is XTuner's own
template_map_fn, unchanged.
"""

from __future__ import annotations

from functools import partial


def with_default_system(example: dict, system: str) -> dict:
    """`example` with `system` on its first turn when that turn has none (a new dict: XTuner's
    template_map_fn rewrites the turns it is given)."""
    conv = [dict(turn) for turn in example.get("conversation", [])]
    if system and conv and not conv[0].get("system"):
        conv[0]["system"] = system
    return dict(example, conversation=conv)


def _map(example, *, template, system):
    from xtuner.dataset.map_fns.template_map_fn import template_map_fn

    return template_map_fn(with_default_system(example, system), template)


def template_map_fn_factory(template, system: str = ""):
    from xtuner.dataset.map_fns import template_map_fn_factory as xtuner_factory

    if not system:
        return xtuner_factory(template)
    if isinstance(template, str):  # a resumed run's config names it (as XTuner's factory allows)
        from mmengine.utils.misc import get_object_from_string

        template = get_object_from_string(template)
    return partial(_map, template=template, system=system)
