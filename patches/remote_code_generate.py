"""InternLM's remote model code cannot `generate` on transformers >= 4.50, so XTuner's chat hook
(which generates before training starts) kills the run, and `xtuner chat` fails.

InternLM-7B's and InternLM2's code on the hub (trust_remote_code) was written for transformers
4.3x, in one of two cache styles:
- tuples of (key, value) per layer (`past_key_values[0][0].shape[2]`). transformers 4.57 hands
  every model an empty DynamicCache instead, and the first forward dies in that line.
- the early Cache API (`_supports_cache_class = True`) calling `past_key_values.seen_tokens` and
  `.get_max_length()`, which transformers removed in 4.49-4.53.
For the first style, generation keeps the legacy tuples these classes expect (transformers' own
path for models that "only support legacy caches"); for the second, the two removed names come
back with their old meaning. Native transformers models are untouched.

Only the remote classes it was written for are handled, and only the versions of them it was
checked against (patches/_remote_code.py; doctor/data/remote_code.json: the fingerprints of
`prepare_inputs_for_generation` and the model's `forward`, where the cache is read): the first
`generate` of another version stops with a message naming its file and what differs. Remote
classes of other names are left to transformers.
"""

from __future__ import annotations

import functools

TARGET = "transformers.generation.utils"
WRITTEN_FOR = ("InternLMForCausalLM", "InternLM2ForCausalLM")
WAY_OUT = ("pin the model's `revision` to a version the patch knows; without the patch "
           "(XTUNER_PACK_PATCHES=-remote_code_generate) this code cannot `generate` on the "
           "pack's transformers, so XTuner's chat hook and `xtuner chat` fail.")


def is_remote(cls) -> bool:
    return any(k.__module__.startswith("transformers_modules.") for k in cls.__mro__)


@functools.cache
def handled(cls) -> bool:
    """A remote class this patch was written for, in a version it knows (else it raises)."""
    if not is_remote(cls):
        return False
    known = next((k for k in cls.__mro__ if k.__name__ in WRITTEN_FOR
                  and k.__module__.startswith("transformers_modules.")), None)
    if known is None:
        return False
    from ._remote_code import verify

    verify("remote_code_generate", known, WAY_OUT)
    return True


def is_legacy_cache_remote_code(cls) -> bool:
    """A remote class this patch handles that predates transformers' Cache objects."""
    return handled(cls) and not getattr(cls, "_supports_cache_class", False)


def apply(generation_utils) -> None:
    from transformers import cache_utils

    mixin = generation_utils.GenerationMixin
    native = mixin._supports_default_dynamic_cache.__func__

    def _supports_default_dynamic_cache(cls) -> bool:
        # called by every generate that uses a cache, before the cache is made: the check of
        # the remote code (handled) runs here
        return not is_legacy_cache_remote_code(cls) and native(cls)

    mixin._supports_default_dynamic_cache = classmethod(_supports_default_dynamic_cache)

    cache = cache_utils.Cache
    if not hasattr(cache, "seen_tokens"):  # removed in transformers 4.49
        cache.seen_tokens = property(lambda self: self.get_seq_length())
    if not hasattr(cache, "get_max_length"):  # renamed get_max_cache_shape in 4.49
        def get_max_length(self):
            size = self.get_max_cache_shape()
            return None if size is None or size < 0 else size  # None meant "no maximum"

        cache.get_max_length = get_max_length
