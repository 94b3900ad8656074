"""With flash-attn installed, XTuner's attention dispatch breaks single-GPU runs on this stack.

When flash_attn is importable (Ampere and newer cards), xtuner 0.2.0 replaces the attention
forward of Llama, Qwen2, Mistral, InternLM2... with its own (model/modules/dispatch/*.py). Two
things there fail with one GPU and current transformers:
- they call `torch.distributed.get_rank()` unconditionally, and `xtuner train` on one GPU runs
  without a process group: `ValueError: Default process group has not been initialized`
  at the first forward (without --deepspeed, which creates one);
- they were written for transformers 4.48, whose decoder layers passed `past_key_value`; since
  4.56 it is `past_key_values`, which they ignore, so generation with a KV cache (XTuner's chat
  hook, `xtuner chat`) silently attends to the newest token only and prints garbage.
The patch gives those modules a `dist` whose get_rank() is 0 without a process group (as
mmengine.dist.get_rank is) and hands the cache to them under the old name.
"""

from __future__ import annotations

import functools

_ARCHS = ("llama", "qwen2", "mistral", "internlm", "internlm2", "internlm3", "phi3", "deepseek_v2")
TARGET = tuple(f"xtuner.model.modules.dispatch.{arch}" for arch in _ARCHS)


class _SingleProcessDist:
    """torch.distributed, except that get_rank() works without a process group."""

    def __getattr__(self, name):
        import torch.distributed

        return getattr(torch.distributed, name)

    @staticmethod
    def get_rank(group=None) -> int:
        import torch.distributed as dist

        return dist.get_rank(group) if dist.is_available() and dist.is_initialized() else 0


def _accepts_new_cache_name(forward):
    @functools.wraps(forward)
    def attn_forward(self, *args, past_key_values=None, **kwargs):
        if past_key_values is not None:
            kwargs.setdefault("past_key_value", past_key_values)
        return forward(self, *args, **kwargs)

    return attn_forward


def apply(dispatch_module) -> None:
    import inspect  # here, not at the top: this module loads at every interpreter start

    dispatch_module.dist = _SingleProcessDist()
    for name, fn in list(vars(dispatch_module).items()):
        if (
            name.endswith("_forward")
            and inspect.isfunction(fn)
            and fn.__module__ == dispatch_module.__name__
            and "past_key_value" in inspect.signature(fn).parameters
        ):
            setattr(dispatch_module, name, _accepts_new_cache_name(fn))
