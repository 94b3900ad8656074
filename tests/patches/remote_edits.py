"""Copies of the remote-code stand-ins with one edit, for the tests of the patches' check of the
code they patch (patches/_remote_code.py): a change of computation must be refused, a change of
comments and formatting accepted."""

from __future__ import annotations

import shutil
from pathlib import Path

# In both stand-ins (InternLM's and XTuner's InternLM2) the attention's fp32 softmax is written
# `softmax(attn_weights, dim=-1, dtype=torch.float32)`, once.
SOFTMAX = "dim=-1, dtype=torch.float32)"
CHANGED = "dim=-1, dtype=torch.float32).mul(0.5)"  # attention weights halved: another model
REFORMATTED = "dim = -1,  dtype = torch.float32 )"  # the same code, spaced otherwise

# remote_code_generate relies on prepare_inputs_for_generation, where the cache is read
CACHE_CHANGE = {
    "internlm": ("input_ids = input_ids[:, -1:]", "input_ids = input_ids[:, -1:].clone()"),
    "internlm2": ("cache_length = past_length = past_key_values[0][0].shape[2]",
                  "cache_length = past_length = past_key_values[0][0].shape[-2]"),
}


def modeling_file(model_dir: Path) -> Path:
    (file,) = [p for p in model_dir.glob("modeling_*.py")]
    return file


def edited_copy(model_dir: Path, dest: Path, old: str, new: str, *, comment=False) -> Path:
    """model_dir copied to dest (a new name: transformers caches remote modules by directory
    name) with `old` replaced by `new` once in its modeling file."""
    shutil.copytree(model_dir, dest)
    file = modeling_file(dest)
    text = file.read_text()
    assert text.count(old) == 1, (file, old)
    text = text.replace(old, new)
    if comment:
        text = "# a comment added by a later revision\n" + text.replace(
            "\n\n\n", "\n\n\n# and another, between two definitions\n", 1)
    file.write_text(text)
    return dest


SPY = '''# Code a hub repository added: it records that it ran, in the file SPY_MARK names.
import os
from pathlib import Path

from transformers import LlamaConfig, LlamaForCausalLM

if os.environ.get("SPY_MARK"):
    with open(os.environ["SPY_MARK"], "a") as f:
        f.write(__name__ + "\\n")


class SpyConfig(LlamaConfig):
    model_type = "llama"


class SpyForCausalLM(LlamaForCausalLM):
    config_class = SpyConfig
'''


def with_spy_code(model_dir: Path) -> Path:
    """A model of an architecture transformers ships (Llama) whose repository has added its own
    Python code and named it in config.json's auto_map, as any hub repository can: loading it
    with trust_remote_code runs that code, which writes to $SPY_MARK."""
    import json

    (model_dir / "modeling_spy.py").write_text(SPY)
    config = json.loads((model_dir / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "modeling_spy.SpyConfig",
                          "AutoModelForCausalLM": "modeling_spy.SpyForCausalLM"}
    (model_dir / "config.json").write_text(json.dumps(config, indent=1))
    return model_dir
