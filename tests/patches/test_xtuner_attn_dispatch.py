"""XTuner's attention dispatch (taken whenever flash-attn is installed) on one process.

There is no flash-attn on a CPU machine, so the test takes XTuner's dispatch path by setting the
flag it computes from flash-attn's presence (SUPPORT_FLASH2); the dispatched forward then runs
transformers' SDPA kernel where it would run flash-attn's, everything else as on a GPU.
"""

from tests.helpers import python

DISPATCHED = """
import torch
import xtuner.model.modules.dispatch as dispatch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained({path!r}, attn_implementation="sdpa")
ids = torch.tensor([[1, 5, 9, 13]])
native = model(input_ids=ids).logits
native_gen = model.generate(ids, max_new_tokens=6, do_sample=False, use_cache=False)
dispatch.SUPPORT_FLASH2 = True  # what XTuner sets when flash_attn is installed
dispatch.dispatch_modules(model, use_varlen_attn=False)
print("SAME_LOGITS", torch.allclose(model(input_ids=ids).logits, native, atol=1e-5))
cached = model.generate(ids, max_new_tokens=6, do_sample=False)
print("SAME_GENERATION", torch.equal(cached, native_gen))
"""


def test_dispatched_attention_needs_a_process_group_without_the_patch(tiny_model):
    out = python(DISPATCHED.format(path=str(tiny_model)),
                 XTUNER_PACK_PATCHES="-xtuner_attn_dispatch")
    assert out.returncode != 0
    assert "Default process group has not been initialized" in out.stdout


def test_dispatched_attention_matches_native_in_training_and_cached_generation(tiny_model):
    out = python(DISPATCHED.format(path=str(tiny_model)))
    assert out.returncode == 0, out.stdout[-2000:]
    assert "SAME_LOGITS True" in out.stdout
    assert "SAME_GENERATION True" in out.stdout
