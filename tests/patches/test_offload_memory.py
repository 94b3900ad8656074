"""patches.offload_embeddings and patches.offload_checkpoints: the same loss and LoRA gradients
with the frozen embedding table and the checkpointed layer inputs kept in CPU memory."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from doctor.fit.estimate import dtypes, offloaded_checkpoint_bytes
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
    # each layer's input, and the final norm's fp32 input: the estimator's term, byte for byte
    layers = len(decoder.layers)
    assert stats["bytes"] == layers * layer_input + TOKENS * HIDDEN * 4, stats
    assert stats["tensors"] == layers + 1
    setup = estimator_setup(model.llm, weight_bytes=4, amp=False, offload_checkpoints=True)
    assert stats["bytes"] == offloaded_checkpoint_bytes(setup, dtypes(setup))


def estimator_setup(llm, **fields):
    from doctor.fit.arch import from_config
    from doctor.fit.estimate import Setup

    arch = from_config(llm.get_base_model().config.to_dict())
    return Setup(arch, quant=None, double_quant=False, upcast=False, lora_r=8, lora_dropout=0.0,
                 batch=1, seq=TOKENS, **fields)


def test_offloaded_embedding_bytes_are_the_estimators(untied):
    from doctor.fit.estimate import weight_terms

    plain = dict(keep_16bit=True, loss_chunk=None)
    on = build(untied, patches=dict(plain, offload_embeddings=True), quant=False,
               dtype=torch.bfloat16)
    off = build(untied, patches=plain, quant=False, dtype=torch.bfloat16)
    moved = (sum(p.numel() * p.element_size() for p in off.llm.parameters())
             - sum(p.numel() * p.element_size() for p in on.llm.parameters()))
    setup = estimator_setup(on.llm, weight_bytes=2)
    terms_on = weight_terms(replace(setup, offload_embeddings=True))
    assert moved == on.llm.get_input_embeddings().weight.nbytes
    assert sum(weight_terms(setup).values()) - sum(terms_on.values()) == moved


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


def test_a_freed_tensors_address_reused_by_the_next_saved_tensor_gets_its_own_copy():
    # A saved tensor is freed once its copy is taken; an allocator hands its memory to the next
    # tensor of the same size (CUDA's caching allocator does so at once). Copies found by
    # address (data_ptr, shape, stride, version) returned the freed tensor's copy for the new
    # one, which its layer then recomputed from: wrong gradients. Two storages on one buffer
    # make the reuse deterministic.
    import numpy as np

    w = torch.ones(4096, requires_grad=True)
    memory = np.ones(4096, dtype=np.float32)
    with offload_checkpoints.offloaded_saves(min_bytes=0):
        first = torch.from_numpy(memory)
        kept = (first * w).sum()  # its graph holds the copy of `first` (ones)
        del first
        memory[:] = 2.0  # the same address, now a new tensor's
        second = torch.from_numpy(memory)
        loss = (second * w).sum()
    (kept + loss).backward()
    assert w.grad.eq(1.0 + 2.0).all()
