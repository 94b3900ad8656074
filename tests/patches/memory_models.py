"""Small real models for the memory-patch tests, built through XTuner's own SupervisedFinetune."""

from __future__ import annotations

from pathlib import Path

import torch

VOCAB = 8192  # large enough that logits dominate a step, as with the pack's real vocabularies
HIDDEN = 128


def llama_dir(path: Path, *, vocab=VOCAB, hidden=HIDDEN, layers=2, dtype=torch.bfloat16,
              tied=False) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    if (path / "config.json").is_file():
        return path
    config = LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=vocab,
                         tie_word_embeddings=tied)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(dtype).save_pretrained(path)
    return path


def llm_cfg(model_dir: Path, *, quant=True, dtype=torch.bfloat16):
    from mmengine.config import ConfigDict
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    cfg = ConfigDict(type=AutoModelForCausalLM.from_pretrained,
                     pretrained_model_name_or_path=str(model_dir), torch_dtype=dtype)
    if quant:
        cfg.quantization_config = ConfigDict(
            type=BitsAndBytesConfig, load_in_4bit=True, bnb_4bit_use_double_quant=True,
            bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
    return cfg


def lora_cfg(r=8, dropout=0.0):
    from mmengine.config import ConfigDict
    from peft import LoraConfig

    return ConfigDict(type=LoraConfig, r=r, lora_alpha=2 * r, lora_dropout=dropout,
                      task_type="CAUSAL_LM")


def build(model_dir: Path, *, patches: dict | None, quant=True, dtype=torch.bfloat16, r=8,
          dropout=0.0):
    """XTuner's SupervisedFinetune as a config builds it (components.finetune if `patches`)."""
    from xtuner.model import SupervisedFinetune

    from components.finetune import PatchedFinetune

    torch.manual_seed(0)  # same LoRA initialisation in every build
    kwargs = dict(llm=llm_cfg(model_dir, quant=quant, dtype=dtype), lora=lora_cfg(r, dropout))
    model = (SupervisedFinetune(**kwargs) if patches is None
             else PatchedFinetune(base=SupervisedFinetune, **patches, **kwargs))
    return model.train()


def batch(tokens=256, vocab=VOCAB, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (1, tokens), generator=g)
    labels = ids.clone()
    labels[:, : tokens // 8] = -100  # the prompt part of a packed sample is not supervised
    return dict(input_ids=ids, labels=labels, attention_mask=torch.ones_like(ids))


def loss_of(model, data, autocast_dtype=None):
    ctx = (torch.autocast("cpu", dtype=autocast_dtype) if autocast_dtype
           else torch.autocast("cpu", enabled=False))
    with ctx:
        return model(dict(data), mode="loss")["loss"]


def lora_grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()
            if p.requires_grad and p.grad is not None}


def param_bytes(model) -> dict[str, int]:
    """Bytes of the model's parameters by dtype (4-bit weights are uint8 storage)."""
    out: dict[str, int] = {}
    for p in model.parameters():
        key = str(p.dtype).replace("torch.", "")
        out[key] = out.get(key, 0) + p.numel() * p.element_size()
    return out



def internlm2_classes():
    from bench.vram import internlm2_classes as load

    return load()


from bench.remote_models import VOCAB_REMOTE, build_remote, remote_dir  # noqa: E402,F401
