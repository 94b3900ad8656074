"""patches.keep_16bit: the frozen weights stay 16-bit; the loss and the adapters' gradients do not
change beyond 16-bit rounding."""

from __future__ import annotations

import pytest
import torch

from bench.memtrack import LiveBytes
from tests.patches.memory_models import HIDDEN, VOCAB, batch, build, llama_dir, lora_grads, loss_of
from tests.patches.memory_models import param_bytes as bytes_by_dtype

KEEP = dict(keep_16bit=True, loss_chunk=None)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return llama_dir(tmp_path_factory.mktemp("keep16") / "llama")


def step(model, data):
    model.zero_grad(set_to_none=True)
    with LiveBytes() as mem:
        loss = loss_of(model, data, torch.bfloat16)
        loss.backward()
    return loss.item(), lora_grads(model), mem.peak


def test_qlora_keeps_embeddings_head_and_norms_16bit(model_dir):
    stock, kept = build(model_dir, patches=None), build(model_dir, patches=KEEP)
    # XTuner as shipped: PEFT's prepare_model_for_kbit_training made every 16-bit weight fp32
    assert "bfloat16" not in bytes_by_dtype(stock)
    non_4bit = VOCAB * HIDDEN * 2 + (2 * 2 + 1) * HIDDEN  # embedding, untied head, norms
    lora = sum(p.numel() for p in kept.parameters() if p.requires_grad)
    assert bytes_by_dtype(stock)["float32"] == 4 * (non_4bit + lora)
    assert bytes_by_dtype(kept)["bfloat16"] == 2 * non_4bit
    assert bytes_by_dtype(kept)["float32"] == 4 * lora  # PEFT's adapters stay fp32
    assert bytes_by_dtype(kept)["uint8"] == bytes_by_dtype(stock)["uint8"]
    # the same parameters train
    trainable = {n for n, p in kept.named_parameters() if p.requires_grad}
    assert trainable == {n for n, p in stock.named_parameters() if p.requires_grad}


def test_same_loss_and_gradients(model_dir):
    data = batch()
    # both with the chunked loss, so that the logits do not hide the rest of the step
    loss_a, grads_a, peak_a = step(build(model_dir, patches=dict(keep_16bit=False, loss_chunk=32)),
                                   data)
    loss_b, grads_b, peak_b = step(build(model_dir, patches=dict(keep_16bit=True, loss_chunk=32)),
                                   data)
    assert loss_b == pytest.approx(loss_a, rel=2e-3)
    assert set(grads_a) == set(grads_b)
    for name, g in grads_a.items():  # (lora_A's gradients are 0 while lora_B is still 0)
        assert (g - grads_b[name]).norm() <= 0.05 * g.norm() + 1e-12, name
    assert any(g.norm() > 0 for g in grads_b.values())
    # the saving is the weights (above); the step itself allocates no more than before
    assert peak_b <= peak_a, (peak_a, peak_b)


def test_plain_lora_base_stays_16bit(model_dir):
    stock = build(model_dir, patches=None, quant=False)
    kept = build(model_dir, patches=KEEP, quant=False)
    base = sum(p.numel() for p in kept.parameters() if not p.requires_grad)
    assert bytes_by_dtype(kept)["bfloat16"] == 2 * base
    assert bytes_by_dtype(stock)["float32"] - bytes_by_dtype(kept)["float32"] == 4 * base


def test_norms_can_stay_fp32(model_dir):
    model = build(model_dir, patches=dict(KEEP, norms_fp32=True))
    norms = {n: p.dtype for n, p in model.named_parameters() if "norm" in n}
    assert norms and set(norms.values()) == {torch.float32}
    assert model.llm.get_input_embeddings().weight.dtype == torch.bfloat16


def test_xtuner_is_left_as_it_was(model_dir):
    from xtuner.model import sft

    build(model_dir, patches=KEEP)
    assert sft.prepare_model_for_kbit_training.__module__ == "peft.utils.other"
