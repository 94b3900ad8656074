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
"""

from __future__ import annotations

TARGET = "transformers.generation.utils"


def is_legacy_cache_remote_code(cls) -> bool:
    """A class loaded with trust_remote_code that predates transformers' Cache objects."""
    remote = any(k.__module__.startswith("transformers_modules.") for k in cls.__mro__)
    return remote and not getattr(cls, "_supports_cache_class", False)


def apply(generation_utils) -> None:
    from transformers import cache_utils

    mixin = generation_utils.GenerationMixin
    native = mixin._supports_default_dynamic_cache.__func__

    def _supports_default_dynamic_cache(cls) -> bool:
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
