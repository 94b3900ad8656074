"""XTuner's RoPE swap stops InternLM-7B's build, or gives its rotary embedding another base.

For every model it builds (`dispatch_modules`: SupervisedFinetune, DPO, reward models, the
HuggingFace trainer path), XTuner 0.2.0's `replace_rote` replaces each module of class
`InternLMRotaryEmbedding` by its own (dispatch/internlm.py: plain RoPE, its tables recomputed
from fp32 in the input's dtype) built with `model.config.rope_theta`, after
`assert hasattr(model.config, "rope_theta")`. InternLM's hub code never reads `rope_theta`: its
2023 code fixes that class's base at 10000; its 2024 code (internlm/internlm-7b @ 96e127d0) reads
`config.rotary = {"base", "type"}`, where "origin" selects that class and "dynamic" (the hub
config's) selects InternLMDynamicNTKScalingRotaryEmbedding, which XTuner leaves alone.
InternLM-7B's configs have no `rope_theta` (neither configuration class defines one; only
internlm-20b's config.json carries it, 10000, its code's base), so the 2023 code, or the 2024
code with `rotary.type: "origin"` (InternLM's documented way to turn dynamic NTK off), stops at
model build, before training, on any machine:

    AssertionError: `rope_theta` should be in the model config.

and a config whose `rope_theta` is not the base the module uses trains with XTuner's tables of
the wrong base, silently. Without Triton (CPU-only torch) XTuner's class does not even import:
its file imports XTuner's Triton kernels first (ModuleNotFoundError: triton).

With the patch XTuner's class replaces a module only where it computes that module's own
tables: its base is the first of the config's `rotary.base`, `rope_theta` and the class's
default `base` whose cos/sin table, over the module's cached length, is the module's own. The
model keeps its own module (and the run says why) where no base reproduces it, where the config
asks for a scaled RoPE (`rotary.type` other than "origin", `rope_scaling`) that XTuner's plain
one does not compute beyond that length, where XTuner's class cannot be imported, and where the
table has no values to compare (meta or fake tensors).
"""

from __future__ import annotations

TARGET = "xtuner.model.modules.dispatch"

# fp32 tables of the same formula agree to ~1e-6, 16-bit ones to their rounding; another base
# differs by ~0.1-1 at the far positions
_ATOL = 1e-4


def _log(message: str) -> None:
    from mmengine import print_log

    print_log(message, "current")


def _table(module, length: int):
    """cos and sin of `module` (a copy on the CPU, fp32) for positions 0..length-1, [L, dim]."""
    import copy

    import torch

    probe = copy.deepcopy(module).to("cpu")
    x = torch.zeros(1, dtype=torch.float32)
    cos, sin = probe(x, seq_len=length)
    dim = cos.shape[-1]
    return cos.float().reshape(-1, dim)[:length], sin.float().reshape(-1, dim)[:length]


def _candidates(module, config) -> list[float]:
    import inspect

    rotary = getattr(config, "rotary", None)
    out = [rotary.get("base") if isinstance(rotary, dict) else None,
           getattr(config, "rope_theta", None)]
    try:
        out.append(inspect.signature(type(module).__init__).parameters["base"].default)
    except (KeyError, TypeError, ValueError):
        pass
    return [b for i, b in enumerate(out)
            if isinstance(b, (int, float)) and b > 0 and b not in out[:i]]


def _scaled(config) -> str | None:
    """What in the config asks for a RoPE scaled beyond the trained length, if anything."""
    rotary = getattr(config, "rotary", None)
    if isinstance(rotary, dict) and rotary.get("type", "origin") != "origin":
        return f"rotary.type={rotary['type']!r}"
    if getattr(config, "rope_scaling", None):
        return f"rope_scaling={config.rope_scaling!r}"
    return None


def replacement(module, config, xtuner_cls):
    """(XTuner's module for `module`, or None; what was decided, in words)."""
    import torch

    scaled = _scaled(config)
    if scaled:
        return None, f"the config asks for a scaled RoPE ({scaled}); XTuner's is plain"
    bases = _candidates(module, config)
    try:
        dim = module.inv_freq.shape[0] * 2
        length = int(module.max_seq_len_cached)
        own = _table(module, length)
        atol = max([_ATOL] + [2 * torch.finfo(b.dtype).eps for b in module.buffers()
                              if b.is_floating_point()])
        for base in bases:
            new = xtuner_cls(dim, length, base)
            if all(torch.allclose(a, b, rtol=0, atol=atol)
                   for a, b in zip(own, _table(new, length), strict=True)):
                new = new.to(device=module.inv_freq.device, dtype=module.inv_freq.dtype)
                return new, f"base {base:g}, the module's own"
    except Exception as exc:  # noqa: BLE001 - tables without values (a fake device), another API
        return None, f"its table cannot be compared ({type(exc).__name__}: {exc})"
    return None, (f"no base among {bases} (the config's rotary.base, rope_theta, the class's "
                  f"default) gives its table")


def replace_rote(model) -> None:
    """XTuner's `replace_rote`, swapping only where the replacement computes the same tables."""
    from xtuner.model.modules.dispatch import ROTE_DISPATCH_MAPPING

    said = set()

    def once(message):
        if message not in said:
            said.add(message)
            _log(message)

    def traverse(module):
        for name, child in module.named_children():
            cls_name = type(child).__name__
            if cls_name not in ROTE_DISPATCH_MAPPING:
                traverse(child)
                continue
            try:
                xtuner_cls = ROTE_DISPATCH_MAPPING[cls_name].build()
            except ImportError as exc:
                once(f"kept the model's own {cls_name}: XTuner's does not import here ({exc})")
                continue
            new, decided = replacement(child, model.config, xtuner_cls)
            if new is None:
                once(f"kept the model's own {cls_name}: {decided}")
                continue
            once(f"replace {cls_name}: {decided}")
            setattr(module, name, new)

    traverse(model)


def apply(dispatch) -> None:
    dispatch.replace_rote = replace_rote
