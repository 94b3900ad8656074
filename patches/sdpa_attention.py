"""InternLM's and InternLM2's remote code computes attention eagerly, in fp32, per head and key.

Their hub code (trust_remote_code) has an `InternLMAttention` / `InternLM2Attention` class that
forms the full score matrix `q @ k^T` for every head, adds the 4-D additive mask, and takes an
fp32 softmax: autograd keeps the fp32 probabilities and their 16-bit copy (6 bytes per head and
key and token), and the backward a 16-bit gradient of them. For InternLM2-7B at 2048 tokens that
is 1.5 GiB in the layer being recomputed, growing with the square of the length. XTuner
dispatches these classes to flash-attn only when flash_attn is installed, which Turing (the
8 GB cards) cannot run, and its InternLM2 dispatch targets the flash class alone.

The patch replaces the forward of each such module with the same computation through
torch.nn.functional.scaled_dot_product_attention: the module's own projections, rotary embedding
(`rotary_emb` and the remote module's `apply_rotary_pos_emb`) and `repeat_kv`. A mask that is
purely causal (packed training: no padding) becomes `is_causal=True`, so no score matrix exists
at all; any other mask is passed as the additive mask it is. Calls with a KV cache or
`output_attentions` (generation, the chat hook) run the original eager forward, untouched. It is
opt-in per config, through components.finetune.PatchedFinetune(sdpa_attention=True); native
transformers models (already SDPA) are left alone.

The hub serves whatever code its repository holds that day, and this forward is only right for
the eager forward it replaces. So before patching, each class is checked against the versions
the patch was written for and tested on (patches/_remote_code.py; doctor/data/remote_code.json:
the fingerprints of `forward`, `apply_rotary_pos_emb` and `repeat_kv`): any other version stops
the run with a message naming its file and what differs.
"""

from __future__ import annotations

import inspect
import sys
import types

TARGET = None  # installed on a built model by install(), not on an import

# Eager classes of the remote code; their FlashAttention2/Sdpa subclasses are already efficient.
EAGER_CLASSES = ("InternLMAttention", "InternLM2Attention")


def _bound(original, hidden_states, args, kwargs) -> dict:
    bound = inspect.signature(original).bind(hidden_states, *args, **kwargs)
    return bound.arguments


def _causal_only(mask, q_len: int) -> bool:
    """The additive mask allows exactly the causal triangle (computed once per mask tensor: the
    model builds one mask per forward and hands the same tensor to every layer)."""
    import torch

    cached = getattr(mask, "_pack_causal_only", None)
    if cached is None:
        allowed = mask[..., :q_len, :q_len] == 0
        tril = torch.ones(q_len, q_len, dtype=torch.bool, device=mask.device).tril()
        cached = mask.shape[-1] == q_len and bool((allowed == tril).all())
        mask._pack_causal_only = cached
    return cached


def _qkv(self, hidden_states):
    """(q, k, v) as [batch, heads, seq, head_dim], k and v with their own (kv) heads."""
    bsz, q_len, _ = hidden_states.shape
    d = self.head_dim
    if hasattr(self, "wqkv"):  # InternLM2: fused, grouped as (kv head, groups + 2, head_dim)
        groups = self.num_key_value_groups
        qkv = self.wqkv(hidden_states).view(bsz, q_len, -1, groups + 2, d)
        q = qkv[..., :groups, :].reshape(bsz, q_len, -1, d)
        k, v = qkv[..., -2, :], qkv[..., -1, :]
    else:  # InternLM: Llama's q/k/v projections
        q = self.q_proj(hidden_states).view(bsz, q_len, -1, d)
        k = self.k_proj(hidden_states).view(bsz, q_len, -1, d)
        v = self.v_proj(hidden_states).view(bsz, q_len, -1, d)
    return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)


def sdpa_forward(self, hidden_states, *args, **kwargs):
    import torch
    import torch.nn.functional as F

    call = _bound(self._pack_eager_forward, hidden_states, args, kwargs)
    cache = call.get("past_key_value", call.get("past_key_values"))
    if cache is not None or call.get("use_cache") or call.get("output_attentions"):
        return self._pack_eager_forward(hidden_states, *args, **kwargs)
    remote = sys.modules[type(self).__module__]
    position_ids = call.get("position_ids")
    bsz, q_len, _ = hidden_states.shape
    if position_ids is None:
        position_ids = torch.arange(q_len, device=hidden_states.device)[None]
    q, k, v = _qkv(self, hidden_states)
    rotary = self.rotary_emb
    if "seq_len" in inspect.signature(rotary.forward).parameters:  # cos/sin tables by length
        cos, sin = rotary(v, seq_len=q_len)
    else:  # cos/sin per position
        cos, sin = rotary(v, position_ids)
    q, k = remote.apply_rotary_pos_emb(q, k, cos, sin, position_ids)
    groups = getattr(self, "num_key_value_groups", 1)
    if groups > 1:  # expanded as the eager code does: the memory-efficient kernel has no GQA
        k, v = remote.repeat_kv(k, groups), remote.repeat_kv(v, groups)
    mask = call.get("attention_mask")
    if mask is not None and _causal_only(mask, q_len):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        if mask is not None:  # additive, as the eager code adds it; clamped as it clamps
            mask = mask[..., : k.shape[-2]].clamp(min=torch.finfo(q.dtype).min).to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = out.transpose(1, 2).reshape(bsz, q_len, -1)
    out = self.wo(out) if hasattr(self, "wo") else self.o_proj(out)
    return out, None, None


WAY_OUT = ("`--cfg-options model.sdpa_attention=False` runs the model's own eager attention, "
           "which needs a shorter max_length (`python -m doctor fit` on a run file with "
           "`sdpa_attention=False` says how short), or pin the model's `revision` to a version "
           "the patch knows.")


def install(causal_lm) -> int:
    """Route the eager attention modules of `causal_lm` (PEFT-wrapped or not) through SDPA.
    Returns how many modules were patched (0 for models without such modules). Raises
    RemoteCodeChanged, before patching anything, for an attention class it does not know."""
    from ._remote_code import verify

    targets = [m for m in causal_lm.modules()
               if type(m).__name__ in EAGER_CLASSES and not hasattr(m, "_pack_eager_forward")
               # not already dispatched elsewhere (XTuner's flash-attn forward)
               and getattr(m.forward, "__func__", None) is type(m).forward]
    for cls in {type(m) for m in targets}:
        verify("sdpa_attention", cls, WAY_OUT)
    for module in targets:
        module._pack_eager_forward = module.forward
        module.forward = types.MethodType(sdpa_forward, module)
    return len(targets)
