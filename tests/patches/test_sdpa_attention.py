"""patches.sdpa_attention: InternLM's and InternLM2's remote-code attention through SDPA gives
the eager code's loss and LoRA gradients, and no per-head score matrix is kept for backward."""

from __future__ import annotations

import pytest
import torch

from patches import sdpa_attention
from tests.patches.memory_models import VOCAB_REMOTE, batch, build_remote, lora_grads, remote_dir

TOKENS = 96
FAMILIES = ("internlm", "internlm2")
PLAIN = dict(keep_16bit=True, loss_chunk=None)


@pytest.fixture(scope="module", params=FAMILIES)
def model_dir(request, tmp_path_factory):
    return remote_dir(tmp_path_factory.mktemp(request.param) / "model", request.param)


def step(model, data, autocast_dtype=None):
    model.zero_grad(set_to_none=True)
    ctx = (torch.autocast("cpu", dtype=autocast_dtype) if autocast_dtype
           else torch.autocast("cpu", enabled=False))
    with ctx:
        loss = model(dict(data), mode="loss")["loss"]
    loss.backward()
    return loss.item(), lora_grads(model)


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


def saved_sizes(model, data) -> list[tuple[int, ...]]:
    """Shapes of every tensor autograd saves in a forward without checkpointing."""
    model.llm.gradient_checkpointing_disable()
    shapes = []

    def pack(t):
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(dict(data), mode="loss")["loss"]
    return shapes


def test_no_score_matrix_is_saved(model_dir):
    data = batch(TOKENS, vocab=VOCAB_REMOTE)
    scores = (1, 4, TOKENS, TOKENS)  # (batch, heads, queries, keys)
    eager = saved_sizes(build_remote(model_dir, patches=PLAIN), data)
    assert eager.count(scores) >= 2  # each layer's softmax output (and its 16-bit copy's input)
    patched = saved_sizes(build_remote(model_dir, patches=dict(PLAIN, sdpa_attention=True)),
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
