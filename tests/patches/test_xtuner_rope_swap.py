"""XTuner's RoPE swap on InternLM's remote code, as `xtuner train` builds the model
(SupervisedFinetune -> dispatch_modules -> replace_rote).

The stand-in has the hub's shapes: no `rope_theta` in the config, the 2023 code's
InternLMRotaryEmbedding with its base fixed, the 2024 code's `rotary={"base", "type"}` choosing
between InternLMRotaryEmbedding ("origin") and the dynamic NTK class ("dynamic", the hub
config's). XTuner's replacement class lives in a module that imports its Triton kernels first; a
GPU machine has Triton, this one has not, so the GPU runs here get an empty kernel package
(bench.remote_code_check.xtuner_rotary_without_triton): the swap does not use the kernels, and the
real code's builds give the same results with Triton 3.8 installed (docs/provenance.md)."""

import json

import pytest

from bench.remote_models import remote_dir
from tests.helpers import python

TOKENS = 96

BUILD = """
import json, torch, transformers
from mmengine.config import ConfigDict
from transformers import AutoModelForCausalLM
from xtuner.model import SupervisedFinetune
transformers.logging.set_verbosity_error()
if {gpu}:
    from bench.remote_code_check import xtuner_rotary_without_triton
    xtuner_rotary_without_triton()  # the import a GPU machine's Triton allows
ids = torch.randint(3, 500, (1, {tokens}), generator=torch.Generator().manual_seed(1))
for name, path in json.loads({cases!r}).items():
    own = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True).eval()
    try:
        llm = ConfigDict(type=AutoModelForCausalLM.from_pretrained,
                         pretrained_model_name_or_path=path, trust_remote_code=True)
        model = SupervisedFinetune(llm=llm).eval()
    except Exception as exc:
        print(f"{{name}}: FAILED {{type(exc).__name__}}: {{exc}}", flush=True)
        continue
    rotary = model.llm.model.layers[0].self_attn.rotary_emb
    with torch.no_grad():
        diff = float((model.llm(ids).logits - own(ids).logits).abs().max())
    print(f"{{name}}: BUILT {{type(rotary).__module__}}.{{type(rotary).__name__}} "
          f"{{'SAME' if diff == 0 else 'DIFFERENT'}} (max |logit diff| {{diff:.2g}})", flush=True)
"""

# config.json fields of each stand-in, as the hub's configs have them
CASES = {
    "2023 code": {},  # no rotary, no rope_theta: base fixed at 10000 in the code
    "2024 origin": dict(rotary={"base": 50000, "type": "origin"}),
    "rope_theta disagrees": dict(rotary={"base": 50000, "type": "origin"}, rope_theta=10000),
    "2024 dynamic": dict(rotary={"base": 50000, "type": "dynamic", "scaling_factor": 2.0},
                         max_position_embeddings=TOKENS // 2),  # the scaling acts
    "20B config": dict(rope_theta=10000.0, rope_scaling=None),  # internlm-20b's 2023 config.json
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("rope")
    return json.dumps({name: str(remote_dir(root / f"rope_{i}", "internlm", layers=1,
                                            config=fields))
                       for i, (name, fields) in enumerate(CASES.items())})


def build(cases, gpu: bool, **env) -> dict[str, str]:
    out = python(BUILD.format(gpu=gpu, tokens=TOKENS, cases=cases), **env)
    assert out.returncode == 0, out.stdout[-3000:]
    lines = {}
    for line in out.stdout.splitlines():
        name, _, result = line.partition(": ")
        if name in CASES:
            lines[name] = result
    assert set(lines) == set(CASES), out.stdout[-3000:]
    return {**lines, "log": out.stdout}


def test_without_the_patch_internlm_7b_configs_stop_at_build_or_get_another_base(cases):
    got = build(cases, gpu=True, XTUNER_PACK_PATCHES="-xtuner_rope_swap")
    for name in ("2023 code", "2024 origin"):  # InternLM-7B's configs have no rope_theta
        assert got[name] == "FAILED AssertionError: `rope_theta` should be in the model config."
    # rope_theta is not the base the module uses: XTuner's tables, silently another base
    assert got["rope_theta disagrees"].startswith(
        "BUILT xtuner.model.modules.dispatch.internlm.InternLMRotaryEmbedding DIFFERENT")
    # the hub config's dynamic NTK class is not XTuner's to swap
    assert "modeling_internlm.InternLMDynamicNTKScalingRotaryEmbedding SAME" in got["2024 dynamic"]


def test_with_the_patch_xtuner_swaps_in_the_module_own_base_and_the_outputs_stay(cases):
    got = build(cases, gpu=True)
    for name in ("2023 code", "2024 origin", "rope_theta disagrees", "20B config"):
        assert got[name].startswith(
            "BUILT xtuner.model.modules.dispatch.internlm.InternLMRotaryEmbedding SAME"), got[name]
    assert "replace InternLMRotaryEmbedding: base 10000, the module's own" in got["log"]
    assert "replace InternLMRotaryEmbedding: base 50000, the module's own" in got["log"]
    assert got["2024 dynamic"].endswith("InternLMDynamicNTKScalingRotaryEmbedding SAME "
                                        "(max |logit diff| 0)")


def test_without_triton_the_model_keeps_its_own_rotary_embedding(cases):
    broken = build(cases, gpu=False, XTUNER_PACK_PATCHES="-xtuner_rope_swap")
    assert broken["20B config"].startswith("FAILED ModuleNotFoundError")
    assert "No module named 'triton'" in broken["20B config"]
    got = build(cases, gpu=False)
    for name in CASES:
        assert got[name].startswith("BUILT transformers_modules.") and " SAME " in got[name]
    assert "kept the model's own InternLMRotaryEmbedding: XTuner's does not import here" in got[
        "log"]


# The decision itself, in this process, with the stand-in's class in the role of XTuner's (the
# same plain RoPE and constructor): where XTuner's class would not compute the module's own
# tables, the model keeps its module.


def rotary(base, **kw):
    import torch

    from tests.patches.remote_code.internlm.modeling_internlm import InternLMRotaryEmbedding

    torch.manual_seed(0)
    return InternLMRotaryEmbedding(16, 64, base=base, **kw), InternLMRotaryEmbedding


def test_a_module_no_base_of_the_config_reproduces_is_kept():
    from types import SimpleNamespace

    from patches.xtuner_rope_swap import replacement

    module, plain = rotary(20000)
    new, why = replacement(module, SimpleNamespace(rope_theta=10000), plain)
    assert new is None and why.startswith("no base among [10000]")
    new, why = replacement(module, SimpleNamespace(rotary={"base": 20000, "type": "origin"},
                                                   rope_theta=10000), plain)
    assert new is not None and why == "base 20000, the module's own"


def test_a_config_asking_for_a_scaled_rope_keeps_the_module():
    from types import SimpleNamespace

    from patches.xtuner_rope_swap import replacement

    module, plain = rotary(10000)
    for config in (SimpleNamespace(rotary={"base": 10000, "type": "dynamic"}),
                   SimpleNamespace(rope_theta=10000, rope_scaling={"type": "linear", "factor": 2})):
        new, why = replacement(module, config, plain)
        assert new is None and "asks for a scaled RoPE" in why


def test_16bit_tables_still_find_their_base_and_a_wrong_one_is_still_refused():
    """A model cast to bf16 (DeepSpeed's engine does) holds 16-bit tables: XTuner's fp32 ones
    replace them (its swap's purpose), but only with the base they were made of."""
    from types import SimpleNamespace

    import torch

    from patches.xtuner_rope_swap import replacement

    module, plain = rotary(10000)
    module.to(torch.bfloat16)
    assert replacement(module, SimpleNamespace(rope_theta=10000), plain)[0] is not None
    wrong = rotary(20000)[0].to(torch.bfloat16)
    assert replacement(wrong, SimpleNamespace(rope_theta=10000), plain)[0] is None


def test_tables_without_values_keep_the_module_rather_than_fail_the_build():
    """On the fake GPU (meta or fake tensors) no table can be compared."""
    from types import SimpleNamespace

    import torch

    from patches.xtuner_rope_swap import replacement

    with torch.device("meta"):
        module, plain = rotary(10000)
    new, why = replacement(module, SimpleNamespace(rope_theta=10000), plain)
    assert new is None and why.startswith("its table cannot be compared")
