"""patches.chunked_ce: the same loss and gradients as the model's own, with one chunk of logits
alive at a time."""

from __future__ import annotations

import pytest
import torch

from bench.memtrack import LiveBytes
from patches import chunked_ce
from tests.patches.memory_models import (
    VOCAB,
    batch,
    build,
    internlm2_classes,
    llama_dir,
    lora_grads,
    loss_of,
)

TOKENS = 512
CHUNK = 64


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return llama_dir(tmp_path_factory.mktemp("chunked") / "llama", dtype=torch.float32)


def step(model, data, autocast_dtype=None):
    model.zero_grad(set_to_none=True)
    with LiveBytes() as mem:
        loss = loss_of(model, data, autocast_dtype)
        loss.backward()
    return loss.item(), lora_grads(model), mem.peak


def assert_same_grads(a, b, rel):
    assert set(a) == set(b) and a
    for name, g in a.items():
        assert (g - b[name]).norm() <= rel * g.norm() + 1e-12, name


def test_fp32_loss_and_gradients_are_the_models_own(model_dir):
    data = batch(TOKENS)
    plain = dict(keep_16bit=False, loss_chunk=None)
    loss_a, grads_a, _ = step(build(model_dir, patches=plain, quant=False, dtype=torch.float32),
                              data)
    loss_b, grads_b, _ = step(build(model_dir, patches=dict(plain, loss_chunk=CHUNK), quant=False,
                                    dtype=torch.float32), data)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    assert_same_grads(grads_a, grads_b, rel=1e-4)


def test_qlora_under_autocast_saves_the_logits(model_dir):
    data = batch(TOKENS)
    loss_a, grads_a, peak_a = step(build(model_dir, patches=dict(loss_chunk=None)), data,
                                   torch.bfloat16)
    loss_b, grads_b, peak_b = step(build(model_dir, patches=dict(loss_chunk=CHUNK)), data,
                                   torch.bfloat16)
    assert loss_b == pytest.approx(loss_a, rel=1e-3)
    assert_same_grads(grads_a, grads_b, rel=0.02)
    # transformers' loss holds ~12 bytes per logit at its peak (the estimator's logits term);
    # chunked, only CHUNK tokens' worth exist at once
    all_logits = TOKENS * VOCAB * 12
    assert peak_a - peak_b > 0.7 * all_logits, (peak_a, peak_b)


def test_generation_and_evaluation_use_the_models_own_forward(model_dir):
    model = build(model_dir, patches=dict(loss_chunk=CHUNK), quant=False, dtype=torch.float32)
    data = batch(64)
    with torch.no_grad():
        out = model.llm(input_ids=data["input_ids"], labels=data["labels"])
        generated = model.llm.generate(input_ids=data["input_ids"][:, :8], max_new_tokens=3,
                                       do_sample=False)
    assert out.logits is not None and out.loss is not None  # the untouched path
    assert generated.shape == (1, 11)


def test_internlm2_remote_code_with_lora_on_its_output_head():
    # XTuner ships InternLM2's modeling code; its head is `output`, which XTuner's default LoRA
    # targets include, and its own loss upcasts and shifts a copy of the logits.
    from peft import LoraConfig, get_peft_model
    from xtuner.model.utils import find_all_linear_names

    InternLM2Config, InternLM2ForCausalLM = internlm2_classes()  # noqa: N806
    torch.manual_seed(0)
    config = InternLM2Config(vocab_size=4096, hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             attn_implementation="eager")
    base = InternLM2ForCausalLM(config)
    targets = find_all_linear_names(base)
    assert "output" in targets
    model = get_peft_model(base, LoraConfig(r=4, target_modules=targets, lora_dropout=0.0))
    for name, p in model.named_parameters():  # LoRA B starts at 0: give the adapters a slope
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    data = batch(96, vocab=4096)
    own = model(input_ids=data["input_ids"], labels=data["labels"]).loss
    own.backward()
    grads_own = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    chunked_ce.install(model, chunk_tokens=32)
    chunked = model(input_ids=data["input_ids"], labels=data["labels"]).loss
    chunked.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    assert chunked.item() == pytest.approx(own.item(), rel=1e-5)
    assert_same_grads(grads_own, grads, rel=1e-4)


def test_models_with_scaled_logits_are_refused(model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.config.final_logit_softcapping = 30.0
    with pytest.raises(ValueError, match="final_logit_softcapping"):
        chunked_ce.install(model, 64)
