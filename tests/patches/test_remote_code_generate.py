"""Remote-code models of InternLM's era can `generate` on the pack's transformers, and only the
versions of their code the patch was written for.

XTuner's EvaluateChatHook generates before training, so without this patch a QLoRA run of
internlm/internlm-7b or internlm2-math-plus-7b dies before its first step. The two stand-ins are
loaded the way the hub's code is, with trust_remote_code, from a local directory: the pack's
stand-in for InternLM-7B (tuple caches, `past_key_values[0][0].shape[2]`) and XTuner's copy of
InternLM2 (the early Cache API: `get_max_length()`).
"""

import pytest

from bench.remote_models import remote_dir
from tests.helpers import python
from tests.patches.remote_edits import CACHE_CHANGE, SOFTMAX, edited_copy

GENERATE = """
import torch
from transformers import AutoModelForCausalLM
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained({path!r}, trust_remote_code=True).eval()
ids = torch.tensor([[1, 5, 9, 13]])
with torch.no_grad():
    reference = model.generate(ids, max_new_tokens=8, do_sample=False, use_cache=False)
    cached = model.generate(ids, max_new_tokens=8, do_sample=False, use_cache=True)  # as the hook
print("SAME" if torch.equal(reference, cached) else "DIFFERENT", cached.tolist())
"""


@pytest.fixture(scope="module", params=["internlm", "internlm2"])
def family_dir(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / f"gen_{request.param}"
    return request.param, remote_dir(path, request.param, layers=1)


def test_generate_fails_without_the_patch_and_matches_uncached_output_with_it(family_dir):
    family, path = family_dir
    code = GENERATE.format(path=str(path))
    broken = python(code, XTUNER_PACK_PATCHES="-remote_code_generate")
    assert broken.returncode != 0
    error = {"internlm": "AttributeError: 'NoneType' object has no attribute 'shape'",
             "internlm2": "AttributeError: 'DynamicCache' object has no attribute "
                          "'get_max_length'"}[family]
    assert error in broken.stdout
    fixed = python(code)
    assert fixed.returncode == 0, fixed.stdout[-2000:]
    assert "SAME" in fixed.stdout  # the cache is used correctly, not merely tolerated


def generate(path):
    """The chat hook's call, in this process (the startup patches are in force here too)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True).eval()
    with torch.no_grad():
        return model.generate(torch.tensor([[1, 5, 9, 13]]), max_new_tokens=4, do_sample=False,
                              use_cache=True)


def test_a_changed_version_is_refused_naming_its_file(family_dir, tmp_path):
    from patches._remote_code import RemoteCodeChanged

    family, path = family_dir
    old, new = CACHE_CHANGE[family]
    changed = edited_copy(path, tmp_path / f"changed_gen_{family}", old, new)
    with pytest.raises(RemoteCodeChanged) as err:  # before the unknown code ran
        generate(changed)
    text = str(err.value)
    cls = "InternLMForCausalLM" if family == "internlm" else "InternLM2ForCausalLM"
    assert text.startswith("remote_code_generate was not written for this remote code: ")
    assert f"changed_gen_{family}/modeling_{family}.py" in text.splitlines()[0]  # what runs
    assert f"{cls}: {cls}.prepare_inputs_for_generation differ" in text


def test_what_it_does_not_rely_on_may_change(tmp_path):
    """The attention's softmax is not the cache handling: remote_code_generate accepts it."""
    family, path = "internlm2", remote_dir(tmp_path / "model", "internlm2", layers=1)
    changed = edited_copy(path, tmp_path / f"softmax_gen_{family}", SOFTMAX,
                          SOFTMAX.replace(")", ").mul(0.5)"), comment=True)
    assert generate(changed).shape == (1, 8)


def test_remote_classes_of_other_names_are_left_to_transformers():
    from patches import remote_code_generate as patch

    other = type("ToyForCausalLM", (), {"__module__": "transformers_modules.toy.modeling_toy"})
    assert patch.is_remote(other) and not patch.handled(other)


def test_native_models_keep_transformers_cache():
    out = python("import transformers.generation.utils\n"
                 "from transformers import LlamaForCausalLM as M\n"
                 "print(M._supports_default_dynamic_cache())")
    assert out.stdout.strip().endswith("True")
