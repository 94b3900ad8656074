"""The per-token terms of the estimator against what autograd really keeps, on the CPU.

One decoder layer of transformers' Llama with PEFT LoRA (on bitsandbytes 4-bit or 16-bit linears,
after PEFT's upcast or patches.keep_16bit) runs forward under bf16 autocast, as XTuner's
AmpOptimWrapper runs fp16 on a GPU; a saved-tensors hook adds up the storages autograd keeps for
backward. The estimator, told it is on the CPU (dropout masks are floats there, bools on CUDA),
must give the same bytes per token. The logits term is checked on a whole step with a
dispatcher-tracked peak.
"""

from __future__ import annotations

import pytest
import torch

from bench.memtrack import LiveBytes
from doctor.fit.arch import from_config
from doctor.fit.estimate import Setup, dtypes, estimate, layer_saved_per_token

CFG = dict(model_type="llama", hidden_size=384, intermediate_size=1536, num_hidden_layers=2,
           num_attention_heads=6, num_key_value_heads=2, vocab_size=512,
           tie_word_embeddings=False)


def peft_llama(tmp_path, *, quant, keep_16bit, dropout, attn="sdpa", cfg=CFG, checkpointing=False):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig

    from patches.keep_16bit import prepare_keep_16bit

    path = tmp_path / "llama"
    if not (path / "config.json").exists():
        fields = {k: v for k, v in cfg.items() if k != "model_type"}
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(LlamaConfig(**fields)).to(torch.bfloat16).save_pretrained(
            path)
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True,
                           bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=q if quant else None,
                                                 dtype=torch.bfloat16, attn_implementation=attn)
    # without checkpointing, so that the layer's own saved tensors can be seen
    prepare = prepare_keep_16bit if keep_16bit else prepare_model_for_kbit_training
    model = prepare(model, checkpointing)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout,
                                            target_modules=targets))


def saved_by_one_layer(model, tokens: int) -> int:
    base = model.get_base_model()
    layer = base.model.layers[0]
    stream = base.model.embed_tokens.weight.dtype
    x = torch.randn(1, tokens, base.config.hidden_size, dtype=stream, requires_grad=True)
    position_ids = torch.arange(tokens)[None]
    cos_sin = base.model.rotary_emb(x, position_ids)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params and ptr != x.untyped_storage().data_ptr():
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    layer.train()
    with torch.autocast("cpu", dtype=torch.bfloat16), \
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x, attention_mask=None, position_ids=position_ids, position_embeddings=cos_sin)
    return sum(seen.values()) - 2 * cos_sin[0].untyped_storage().nbytes()  # cos, sin: shared


CASES = [  # quant, keep_16bit, dropout, attention
    (True, False, 0.0, "sdpa"),  # XTuner's QLoRA as shipped: fp32 residual stream
    (True, True, 0.0, "sdpa"),  # with patches.keep_16bit
    (True, True, 0.1, "sdpa"),  # LoRA dropout keeps its masks
    (False, False, 0.0, "sdpa"),  # plain LoRA on an upcast (fp32) base
    (False, True, 0.05, "sdpa"),  # plain LoRA on a 16-bit base
    (True, True, 0.0, "eager"),  # InternLM's remote code attends eagerly
]


@pytest.mark.parametrize("quant, keep_16bit, dropout, attn", CASES,
                         ids=["qlora-stock", "qlora-16bit", "qlora-dropout", "lora-fp32",
                              "lora-16bit-dropout", "eager"])
def test_one_layers_saved_activations_per_token(tmp_path, quant, keep_16bit, dropout, attn):
    model = peft_llama(tmp_path, quant=quant, keep_16bit=keep_16bit, dropout=dropout, attn=attn)
    arch = from_config(CFG, attn=attn)
    short, long = 128, 256
    measured = saved_by_one_layer(model, long) - saved_by_one_layer(model, short)

    def est(tokens):
        setup = Setup(arch, quant="nf4" if quant else None, upcast=not keep_16bit, lora_r=8,
                      lora_dropout=dropout, seq=tokens, device="cpu",
                      lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                    "up_proj", "down_proj"))
        return layer_saved_per_token(setup, dtypes(setup)) * tokens

    # rope's cos/sin are counted once per model by the estimator, not per layer
    assert measured == pytest.approx(est(long) - est(short), rel=0.02)


def test_the_logits_term_of_a_whole_step(tmp_path):
    """transformers' loss on 16-bit logits: the step's peak grows by the estimator's bytes per
    token, which the logits dominate (a wide vocabulary over a narrow model)."""
    cfg = dict(CFG, hidden_size=64, intermediate_size=128, num_attention_heads=4,
               num_key_value_heads=2, vocab_size=16384)
    model = peft_llama(tmp_path, quant=True, keep_16bit=True, dropout=0.0, cfg=cfg,
                       checkpointing=True)
    arch = from_config(cfg)

    def peak(tokens):
        ids = torch.randint(0, cfg["vocab_size"], (1, tokens))
        model.zero_grad(set_to_none=True)
        with LiveBytes() as mem:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
        return mem.peak

    def est(tokens):
        e = estimate(Setup(arch, upcast=False, lora_r=8, lora_dropout=0.0, seq=tokens,
                           device="cpu", lora_targets=("q_proj", "k_proj", "v_proj", "o_proj",
                                                       "gate_proj", "up_proj", "down_proj")))
        return sum(e.parts.get(k, 0) for k in ("activations", "logits_loss", "layer_backward"))

    assert peak(512) - peak(256) == pytest.approx(est(512) - est(256), rel=0.10)
