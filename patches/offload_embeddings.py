"""A frozen input embedding table does not need to be on the GPU.

Under LoRA/QLoRA the input embedding is frozen and 16-bit (patches.keep_16bit), yet it sits in
GPU memory for the whole run: Qwen2.5-7B's 152k x 3584 table is 1.02 GiB, InternLM2-7B's 0.70,
InternLM-7B's 0.79 of an 8 GiB card. A lookup reads one row per token, so the table can live in
CPU memory: the patch moves the weight to the CPU, out of the module's parameters (so that
mmengine's `model.to("cuda")` leaves it there), and the embedding's forward gathers the batch's
rows on the CPU and copies only those to the device of the token ids.

Cost per step: one CPU gather and one host-to-device copy of tokens x hidden 16-bit values
(2048 tokens of Qwen2.5-7B: 14 MiB, about 1-2 ms over PCIe 3.0 x16), per forward pass; the
backward pass does not touch the frozen table. Refused for tied embeddings (Llama-3.2-3B: the
head reads the whole table for every token) and for trainable ones. The table is no longer a
parameter: XTuner's LoRA checkpoints (adapter weights only) are unchanged. Opt-in per config,
through components.finetune.PatchedFinetune(offload_embeddings=True).
"""

from __future__ import annotations

import types

TARGET = None  # installed on a built model by install(), not on an import


def offloaded_forward(self, input_ids):
    import torch.nn.functional as F

    rows = F.embedding(input_ids.to(self.weight.device), self.weight, self.padding_idx,
                       self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse)
    return rows.to(input_ids.device)


def install(causal_lm, device: str = "cpu") -> int:
    """Keep `causal_lm`'s input embedding table on `device`; returns the bytes moved off."""
    import torch

    model = causal_lm.get_base_model() if hasattr(causal_lm, "get_base_model") else causal_lm
    embed = model.get_input_embeddings()
    head = model.get_output_embeddings()
    if not isinstance(embed, torch.nn.Embedding):
        raise ValueError(f"offload_embeddings: {type(model).__name__}'s input embedding is a "
                         f"{type(embed).__name__}, not an nn.Embedding")
    weight = embed.weight
    if head is not None and getattr(head, "weight", None) is weight:
        raise ValueError(f"offload_embeddings: {type(model).__name__} ties its input embedding "
                         "to the LM head, which reads the whole table every step; keep it on "
                         "the GPU (offload_embeddings=False)")
    if weight.requires_grad:
        raise ValueError("offload_embeddings: the input embedding is trainable; only a frozen "
                         "table can leave the GPU")
    on_device = weight.device.type != device
    table = weight.detach().to(device)
    del embed._parameters["weight"]
    embed.weight = table  # a plain tensor attribute: Module.to() no longer moves it
    embed.forward = types.MethodType(offloaded_forward, embed)
    del weight
    if on_device and torch.cuda.is_available():
        torch.cuda.empty_cache()  # hand the table's block back to the driver
    embed._pack_offloaded = device
    return table.numel() * table.element_size() if on_device else 0
