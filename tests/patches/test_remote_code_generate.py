"""Remote-code models of InternLM's era can `generate` on the pack's transformers.

XTuner's EvaluateChatHook generates before training, so without this patch a QLoRA run of
internlm/internlm-7b or internlm2-math-plus-7b dies before its first step. The toy model under
remote_code/ reproduces both cache styles of that code (see its header); it is loaded the way
the hub's code is, with trust_remote_code, from a local directory.
"""

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import python

HERE = Path(__file__).parent / "remote_code"

GENERATE = """
import torch
from transformers import AutoModelForCausalLM
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained({path!r}, trust_remote_code=True)
ids = torch.tensor([[1, 5, 9, 13]])
reference = model.generate(ids, max_new_tokens=8, do_sample=False, use_cache=False)
cached = model.generate(ids, max_new_tokens=8, do_sample=False)
print("SAME" if torch.equal(reference, cached) else "DIFFERENT", cached.tolist())
"""


def _toy_model(tmp_path: Path, cache_style: str) -> Path:
    import torch  # noqa: F401  (weights are saved by transformers below)
    from transformers import AutoConfig, AutoModelForCausalLM

    path = tmp_path / f"toy_{cache_style}"
    path.mkdir()
    for f in ("configuration_toy.py", "modeling_toy.py"):
        shutil.copy(HERE / f, path / f)
    (path / "config.json").write_text(json.dumps({
        "model_type": "toy_remote", "cache_style": cache_style, "architectures": ["ToyForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_toy.ToyConfig",
                     "AutoModelForCausalLM": "modeling_toy.ToyForCausalLM"},
    }))
    config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    AutoModelForCausalLM.from_config(config, trust_remote_code=True).save_pretrained(path)
    return path


@pytest.mark.parametrize("cache_style, error", [
    ("tuples", "AttributeError: 'NoneType' object has no attribute 'shape'"),  # as InternLM-7B's
    ("early_cache_api", "AttributeError: 'DynamicCache' object has no attribute 'seen_tokens'"),
])
def test_generate_fails_without_the_patch_and_matches_uncached_output_with_it(
    tmp_path, cache_style, error
):
    code = GENERATE.format(path=str(_toy_model(tmp_path, cache_style)))
    broken = python(code, XTUNER_PACK_PATCHES="-remote_code_generate")
    assert broken.returncode != 0
    assert error in broken.stdout
    fixed = python(code)
    assert fixed.returncode == 0, fixed.stdout[-2000:]
    assert "SAME" in fixed.stdout  # the cache is used correctly, not merely tolerated


def test_native_models_keep_transformers_cache():
    out = python("import transformers.generation.utils\n"
                 "from transformers import LlamaForCausalLM as M\n"
                 "print(M._supports_default_dynamic_cache())")
    assert out.stdout.strip().endswith("True")
