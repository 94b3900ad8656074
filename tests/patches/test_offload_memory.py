"""patches.offload_embeddings and patches.offload_checkpoints: the same loss and LoRA gradients
with the frozen embedding table and the checkpointed layer inputs kept in CPU memory."""

from __future__ import annotations

import pytest
import torch

from patches import offload_checkpoints, offload_embeddings
from tests.patches.memory_models import batch, build, llama_dir, lora_grads, loss_of

TOKENS = 256


@pytest.fixture(scope="module")
def untied(tmp_path_factory):
    return llama_dir(tmp_path_factory.mktemp("offload") / "llama", dtype=torch.float32)


def step(model, data, autocast_dtype=None):
    model.zero_grad(set_to_none=True)
    loss = loss_of(model, data, autocast_dtype)
    loss.backward()
    return loss.item(), lora_grads(model)


def assert_same(a, b, rel=1e-5):
    (loss_a, grads_a), (loss_b, grads_b) = a, b
    assert loss_b == pytest.approx(loss_a, rel=rel)
    assert set(grads_a) == set(grads_b) and grads_a
    for name, g in grads_a.items():
        assert (g - grads_b[name]).norm() <= 10 * rel * g.norm() + 1e-12, name


@pytest.mark.parametrize("quant", [False, True], ids=["lora", "qlora"])
def test_offloaded_embeddings_same_loss_and_gradients(untied, quant):
    data = batch(TOKENS)
    dtype = torch.bfloat16 if quant else torch.float32
    amp = torch.bfloat16 if quant else None
    plain = dict(keep_16bit=True, loss_chunk=None)
    a = step(build(untied, patches=plain, quant=quant, dtype=dtype), data, amp)
    model = build(untied, patches=dict(plain, offload_embeddings=True), quant=quant, dtype=dtype)
    embed = model.llm.get_input_embeddings()
    assert embed._pack_offloaded == "cpu"
    assert "weight" not in dict(embed.named_parameters())
    assert_same(a, step(model, data, amp), rel=1e-5 if not quant else 1e-3)


def test_the_table_stays_where_it_is_when_the_model_moves(untied):
    # mmengine's runner does model.to(device) after building: the table must not follow
    model = build(untied, patches=dict(offload_embeddings=True), quant=False,
                  dtype=torch.float32)
    model.llm.to("meta")
    embed = model.llm.get_input_embeddings()
    assert embed.weight.device.type == "cpu"
    assert next(model.llm.parameters()).device.type == "meta"


def test_tied_and_trainable_tables_are_refused(tmp_path):
    from transformers import AutoModelForCausalLM

    tied = AutoModelForCausalLM.from_pretrained(llama_dir(tmp_path / "tied", tied=True))
    tied.requires_grad_(False)
    with pytest.raises(ValueError, match="ties its input embedding"):
        offload_embeddings.install(tied)
    untied = AutoModelForCausalLM.from_pretrained(llama_dir(tmp_path / "untied"))
    with pytest.raises(ValueError, match="trainable"):
        offload_embeddings.install(untied)


def test_offloaded_checkpoints_same_loss_and_gradients_and_every_layer_input_offloaded(untied):
    from tests.patches.memory_models import HIDDEN

    data = batch(TOKENS)
    plain = dict(keep_16bit=True, loss_chunk=None)
    a = step(build(untied, patches=plain, quant=False, dtype=torch.float32), data)
    model = build(untied, patches=plain, quant=False, dtype=torch.float32)
    layer_input = TOKENS * HIDDEN * 4
    # the layer inputs of this tiny model are 128 KiB: offload everything of that size
    offload_checkpoints.install(model.llm, min_bytes=layer_input)
    decoder = model.llm.get_base_model().model
    assert decoder.gradient_checkpointing  # XTuner turns it on for every run
    assert_same(a, step(model, data))
    stats = decoder._pack_offload_stats
    # the estimator's checkpoint term: each layer's input, and the final norm's fp32 input
    layers = len(decoder.layers)
    assert stats["bytes"] == layers * layer_input + TOKENS * HIDDEN * 4, stats
    assert stats["tensors"] == layers + 1


def test_offload_checkpoints_through_the_recipe_knob(untied):
    model = build(untied, patches=dict(offload_checkpoints=True), quant=False,
                  dtype=torch.float32)
    decoder = model.llm.get_base_model().model
    assert decoder._pack_offload_stats == {}
    with torch.no_grad():  # evaluation and generation: nothing hooked
        loss_of(model, batch(64))
    assert decoder._pack_offload_stats == {}
    step(model, batch(64))
    assert decoder._pack_offload_stats["tensors"] == 0  # 64 tokens: all below 1 MiB, kept
