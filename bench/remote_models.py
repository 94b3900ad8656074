"""Tiny InternLM / InternLM2 models loaded as remote code (trust_remote_code) from a local
directory, for the memory-patch tests, bench/patch_effects.py and bench/remote_code_check.py."""

from __future__ import annotations

from pathlib import Path

import torch

REMOTE = Path(__file__).resolve().parents[1] / "tests" / "patches" / "remote_code"
VOCAB_REMOTE = 512


def remote_dir(path: Path, family: str, *, hidden=64, layers=2, heads=4, kv_heads=2,
               vocab=VOCAB_REMOTE, dtype=torch.float32, source: Path | None = None,
               config: dict | None = None) -> Path:
    """A tiny model loaded the way the hub's InternLM code is (trust_remote_code, a local
    directory): "internlm" is the pack's stand-in for InternLM-7B's modeling code (remote_code/
    internlm/); "internlm2" is InternLM2's modeling code as XTuner ships a copy of it
    (xtuner/_lite/modelings/internlm2), with the eager attention the hub's code defaults to.
    `source`: another directory holding that family's `modeling_*.py` and `configuration_*.py`
    (a hub snapshot); `config`: fields that override the tiny config's."""
    import json
    import shutil

    from transformers import AutoConfig, AutoModelForCausalLM

    if (path / "config.json").is_file():
        return path
    path.mkdir(parents=True)
    fields = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                  num_hidden_layers=layers, num_attention_heads=heads, tie_word_embeddings=False)
    if family == "internlm":
        source, name = source or REMOTE / "internlm", "internlm"
    else:
        import xtuner

        source = source or Path(xtuner.__file__).parent / "_lite" / "modelings" / "internlm2"
        name = "internlm2"
        fields.update(num_key_value_heads=kv_heads, attn_implementation="eager", bias=False)
    fields.update(config or {})
    for f in (f"configuration_{name}.py", f"modeling_{name}.py"):
        shutil.copy(source / f, path / f)
    cls = "InternLM" if name == "internlm" else "InternLM2"
    (path / "config.json").write_text(json.dumps(dict(
        fields, model_type=name, architectures=[f"{cls}ForCausalLM"],
        auto_map={"AutoConfig": f"configuration_{name}.{cls}Config",
                  "AutoModelForCausalLM": f"modeling_{name}.{cls}ForCausalLM"})))
    config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, trust_remote_code=True).to(dtype)
    model.save_pretrained(path)
    return path


def build_remote(model_dir: Path, *, patches: dict | None, dtype=torch.float32, r=8):
    """XTuner's SupervisedFinetune over a remote-code model, LoRA on every linear but the head;
    with components.finetune.PatchedFinetune(**patches) when `patches` is not None."""
    from mmengine.config import ConfigDict
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from xtuner.model import SupervisedFinetune

    from components.finetune import PatchedFinetune

    torch.manual_seed(0)
    llm = ConfigDict(type=AutoModelForCausalLM.from_pretrained,
                     pretrained_model_name_or_path=str(model_dir), torch_dtype=dtype,
                     trust_remote_code=True)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
               "wqkv", "wo", "w1", "w2", "w3"]
    lora = ConfigDict(type=LoraConfig, r=r, lora_alpha=2 * r, lora_dropout=0.0,
                      target_modules=targets, task_type="CAUSAL_LM")
    model = (SupervisedFinetune(llm=llm, lora=lora) if patches is None
             else PatchedFinetune(base=SupervisedFinetune, llm=llm, lora=lora, **patches))
    for name, p in model.named_parameters():  # LoRA B starts at 0: give the adapters a slope
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02, generator=torch.Generator().manual_seed(3))
    return model.train()
