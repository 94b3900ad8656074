"""The loss of a causal LM materializes every logit, several times, in fp32.

transformers' models compute `logits = lm_head(hidden)` for every token ([batch, seq, vocab],
16-bit) and ForCausalLMLoss upcasts them (`logits.float()`); cross_entropy keeps an fp32
log-softmax for backward, and its backward holds that, the incoming and the outgoing fp32
gradient: 12 bytes per logit at the peak. Remote-code models (InternLM, InternLM2) add a shifted
`.contiguous()` copy. With the vocabularies of the pack's models (Qwen2.5 152k, Llama-3 128k,
InternLM 103k) that is 1.5-1.9 GiB at 1024 tokens, the largest working set of a step.

The patch computes the same loss from the final hidden states in chunks of `chunk_tokens`
tokens: each chunk's logits are computed, reduced to a summed cross-entropy and freed, and
recomputed in the backward pass (torch.utils.checkpoint), so at most one chunk of logits exists.
The loss is the mean over supervised tokens, as transformers' (labels shifted by one, -100
ignored). Generation and calls without labels use the model's own forward. It is opt-in per
config, through components.finetune.PatchedFinetune(loss_chunk=N); with fused_loss
(patches.fused_loss) a fused Triton kernel replaces it on CUDA where one is installed.
"""

from __future__ import annotations

import types

TARGET = None  # installed on a built model by install(), not on an import

# Models whose forward scales or caps the logits before the loss; the chunked loss would differ.
UNSUPPORTED_CONFIG_FIELDS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def chunked_causal_lm_loss(hidden, head, labels, chunk_tokens: int, ignore_index: int = -100):
    """Mean next-token cross-entropy of `head(hidden)` without materializing all logits."""
    import torch
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint

    shifted = F.pad(labels[:, 1:], (0, 1), value=ignore_index).reshape(-1)
    flat = hidden.reshape(-1, hidden.shape[-1])
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, flat.shape[0], chunk_tokens):
        stop = start + chunk_tokens
        total = total + checkpoint(_chunk_loss_sum, flat[start:stop], shifted[start:stop], head,
                                   ignore_index, use_reentrant=False)
    return total / (shifted != ignore_index).sum()


def _chunk_loss_sum(hidden, labels, head, ignore_index):
    import torch.nn.functional as F

    return F.cross_entropy(head(hidden).float(), labels, ignore_index=ignore_index,
                           reduction="sum")


def install(causal_lm, chunk_tokens: int = 128, fused_loss: str | None = None) -> None:
    """Make `causal_lm`'s forward compute its training loss in chunks (PEFT-wrapped or not).

    fused_loss ("auto", "liger", "cce", "chunked", None): a fused linear cross-entropy kernel
    for the batches patches.fused_loss finds it usable for; the chunked loss for the rest."""
    from . import fused_loss as fused

    fused.validate(fused_loss)
    model = causal_lm.get_base_model() if hasattr(causal_lm, "get_base_model") else causal_lm
    for field in UNSUPPORTED_CONFIG_FIELDS:
        if getattr(model.config, field, None) not in (None, 1, 1.0):
            raise ValueError(f"chunked_ce: {type(model).__name__} sets {field}; its loss is not "
                             "a plain cross-entropy of lm_head(hidden)")
    if chunk_tokens < 1:
        raise ValueError(f"chunked_ce: chunk_tokens must be >= 1, not {chunk_tokens}")
    decoder = getattr(model, model.base_model_prefix)
    original = model.forward

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, labels=None,
                inputs_embeds=None, **kwargs):
        import torch
        from transformers.modeling_outputs import CausalLMOutputWithPast

        if labels is None or not torch.is_grad_enabled():
            return original(input_ids=input_ids, attention_mask=attention_mask,
                            position_ids=position_ids, labels=labels,
                            inputs_embeds=inputs_embeds, **kwargs)
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask,
                         position_ids=position_ids, inputs_embeds=inputs_embeds,
                         use_cache=False)[0]
        head = self.get_output_embeddings()
        kind = fused.choose(fused_loss, hidden, head) if fused_loss else "chunked"
        self._pack_loss_kind = kind  # what the last step ran (for logs and tests)
        if kind == "chunked":
            loss = chunked_causal_lm_loss(hidden, head, labels, chunk_tokens)
        else:
            loss = fused.FUNCTIONS[kind](hidden, head, labels)
        return CausalLMOutputWithPast(loss=loss)

    model.forward = types.MethodType(forward, model)
    model._chunked_ce_tokens = chunk_tokens
