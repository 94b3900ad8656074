"""Tiny InternLM / InternLM2 models loaded as remote code (trust_remote_code) from a local
directory, for the memory-patch tests and bench/patch_effects.py."""

from __future__ import annotations

from pathlib import Path

import torch

REMOTE = Path(__file__).resolve().parents[1] / "tests" / "patches" / "remote_code"
VOCAB_REMOTE = 512


def remote_dir(path: Path, family: str, *, hidden=64, layers=2, heads=4, kv_heads=2,
               vocab=VOCAB_REMOTE, dtype=torch.float32) -> Path:
    """A tiny model loaded the way the hub's InternLM code is (trust_remote_code, a local
    directory): "internlm" is the pack's stand-in for InternLM-7B's modeling code (remote_code/
    internlm/); "internlm2" is InternLM2's modeling code as XTuner ships a copy of it
    (xtuner/_lite/modelings/internlm2), with the eager attention the hub's code defaults to."""
    import json
    import shutil

    from transformers import AutoConfig, AutoModelForCausalLM

    if (path / "config.json").is_file():
        return path
    path.mkdir(parents=True)
    fields = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                  num_hidden_layers=layers, num_attention_heads=heads, tie_word_embeddings=False)
    if family == "internlm":
        source, name = REMOTE / "internlm", "internlm"
    else:
        import xtuner

        source = Path(xtuner.__file__).parent / "_lite" / "modelings" / "internlm2"
        name = "internlm2"
        fields.update(num_key_value_heads=kv_heads, attn_implementation="eager", bias=False)
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
