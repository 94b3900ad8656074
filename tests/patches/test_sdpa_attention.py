"""patches.sdpa_attention: InternLM's and InternLM2's remote-code attention through SDPA gives
the eager code's loss and LoRA gradients, and no per-head score matrix is kept for backward."""

from __future__ import annotations

import json

import pytest
import torch

from bench.remote_code_check import saved_shapes, step
from patches import sdpa_attention
from tests.patches.memory_models import VOCAB_REMOTE, batch, build_remote, remote_dir

TOKENS = 96
FAMILIES = ("internlm", "internlm2")
PLAIN = dict(keep_16bit=True, loss_chunk=None)


@pytest.fixture(scope="module", params=FAMILIES)
def model_dir(request, tmp_path_factory):
    return remote_dir(tmp_path_factory.mktemp(request.param) / "model", request.param)


def assert_same_grads(a, b, rel):
    assert set(a) == set(b) and a
    for name, g in a.items():
        assert (g - b[name]).norm() <= rel * g.norm() + 1e-12, name


def test_the_eager_modules_of_the_remote_code_are_patched(model_dir):
    model = build_remote(model_dir, patches=dict(PLAIN, sdpa_attention=True))
    eager = [m for m in model.modules() if type(m).__name__ in sdpa_attention.EAGER_CLASSES]
    assert len(eager) == 2 and all(hasattr(m, "_pack_eager_forward") for m in eager)
    assert type(model.llm.base_model.model).__module__.startswith("transformers_modules.")


@pytest.mark.parametrize("padded", [False, True], ids=["packed", "padded"])
def test_loss_and_lora_gradients_equal_the_eager_codes(model_dir, padded):
    data = batch(TOKENS, vocab=VOCAB_REMOTE)
    if padded:  # a padded tail: the mask is not purely causal, SDPA gets it as the additive mask
        data["attention_mask"][:, -TOKENS // 4:] = 0
        data["labels"][:, -TOKENS // 4:] = -100
    loss_a, grads_a = step(build_remote(model_dir, patches=PLAIN), data)
    loss_b, grads_b = step(build_remote(model_dir, patches=dict(PLAIN, sdpa_attention=True)),
                           data)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    assert_same_grads(grads_a, grads_b, rel=1e-4)


def test_under_16bit_autocast_too(model_dir):
    data = batch(TOKENS, vocab=VOCAB_REMOTE)
    loss_a, grads_a = step(build_remote(model_dir, patches=PLAIN), data, torch.bfloat16)
    loss_b, grads_b = step(build_remote(model_dir, patches=dict(PLAIN, sdpa_attention=True)),
                           data, torch.bfloat16)
    assert loss_b == pytest.approx(loss_a, rel=2e-3)
    assert_same_grads(grads_a, grads_b, rel=0.03)


def test_no_score_matrix_is_saved(model_dir):
    data = batch(TOKENS, vocab=VOCAB_REMOTE)
    scores = (1, 4, TOKENS, TOKENS)  # (batch, heads, queries, keys)
    eager = saved_shapes(build_remote(model_dir, patches=PLAIN), data)
    assert eager.count(scores) >= 2  # each layer's softmax output (and its 16-bit copy's input)
    patched = saved_shapes(build_remote(model_dir, patches=dict(PLAIN, sdpa_attention=True)),
                          data)
    assert scores not in patched


def test_generation_with_a_cache_runs_the_original_code(model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=True).eval()
    ids = torch.tensor([[5, 9, 13, 17]])
    with torch.no_grad():
        reference = model.generate(ids, max_new_tokens=6, do_sample=False)
        assert sdpa_attention.install(model) == 2
        assert model.generate(ids, max_new_tokens=6, do_sample=False).tolist() == \
            reference.tolist()


def test_native_models_are_left_alone(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, vocab_size=64))
    assert sdpa_attention.install(model) == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_saved_bytes_per_layer_are_the_estimators(tmp_path, family):
    """One patched fp32 decoder layer with PEFT LoRA saves exactly what doctor fit's layer term
    says (sdpa_expanded attention)."""
    autocast = False
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from doctor.fit.arch import from_config
    from doctor.fit.estimate import Setup, dtypes, layer_saved_per_token

    tokens, hidden = 64, 128
    path = remote_dir(tmp_path / family, family, hidden=hidden, layers=1, heads=4, kv_heads=2)
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)
    targets = (["wqkv", "wo", "w1", "w2", "w3"] if family == "internlm2" else
               ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft = get_peft_model(model, LoraConfig(r=8, target_modules=targets, lora_dropout=0.0))
    assert sdpa_attention.install(peft) == 1
    x = torch.randn(1, tokens, hidden, requires_grad=True)
    skip = {p.untyped_storage().data_ptr() for p in peft.parameters()}
    skip.add(x.untyped_storage().data_ptr())  # the layer's input: the checkpoint term
    saved: dict[int, int] = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in skip:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    mask = torch.full((tokens, tokens), torch.finfo(torch.float32).min).triu(1)[None, None]
    ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if autocast
           else torch.autocast("cpu", enabled=False))
    with ctx, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        peft.get_base_model().model.layers[0](x, attention_mask=mask,
                                              position_ids=torch.arange(tokens)[None])
    setup = Setup(from_config(peft.get_base_model().config.to_dict()), quant=None,
                  double_quant=False, weight_bytes=4, amp=autocast, upcast=False, lora_r=8,
                  lora_targets=tuple(targets), lora_dropout=0.0, seq=tokens, device="cpu",
                  sdpa_attention=True)
    assert setup.attention == "sdpa_expanded"
    assert sum(saved.values()) == layer_saved_per_token(setup, dtypes(setup)) * tokens


def test_a_changed_attention_is_refused_before_anything_is_patched(model_dir, tmp_path):
    """The hub serves whatever its repository holds: a forward the patch was not written for
    stops the build with the file and the member that differs."""
    from patches._remote_code import RemoteCodeChanged
    from tests.patches.remote_edits import CHANGED, SOFTMAX, edited_copy

    family = json.loads((model_dir / "config.json").read_text())["model_type"]
    changed = edited_copy(model_dir, tmp_path / f"changed_sdpa_{family}", SOFTMAX, CHANGED)
    cls = "InternLMAttention" if family == "internlm" else "InternLM2Attention"
    with pytest.raises(RemoteCodeChanged) as err:
        build_remote(changed, patches=dict(PLAIN, sdpa_attention=True))
    text = str(err.value)
    assert text.startswith("sdpa_attention was not written for this remote code: ")
    assert f"changed_sdpa_{family}/modeling_{family}.py" in text.splitlines()[0]
    assert f"{cls}: {cls}.forward differ from every version it was checked against" in text
    assert "model.sdpa_attention=False" in text  # the way out
    assert "`python -m bench.remote_code_check FILE` checks the patches on this code" in text
    # without the patch the same code builds (and runs its own eager attention)
    model = build_remote(changed, patches=PLAIN)
    assert not any(hasattr(m, "_pack_eager_forward") for m in model.modules())


def test_comments_and_formatting_are_not_a_change(model_dir, tmp_path):
    from tests.patches.remote_edits import REFORMATTED, SOFTMAX, edited_copy

    family = json.loads((model_dir / "config.json").read_text())["model_type"]
    same = edited_copy(model_dir, tmp_path / f"reformatted_sdpa_{family}", SOFTMAX, REFORMATTED,
                       comment=True)
    model = build_remote(same, patches=dict(PLAIN, sdpa_attention=True))
    assert sum(hasattr(m, "_pack_eager_forward") for m in model.modules()) == 2
