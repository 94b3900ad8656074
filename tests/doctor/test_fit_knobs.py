"""What the estimate does with the memory knobs of issue 10 (sdpa_attention, offload_embeddings,
offload_checkpoints, fused_loss: PatchedFinetune kwargs, read from cfg.model), with
expandable_segments, and how the advice flags knobs and reads the dtype rules once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from doctor.fit.advice import changes, plan, upper_bytes
from doctor.fit.arch import resolve
from doctor.fit.config import expandable_segments, read
from doctor.fit.estimate import EXPANDABLE_CACHE_FACTOR, FUSED_LOSS_CHUNK, Setup, estimate
from tests.helpers import REPO

QWEN = Setup(resolve("Qwen/Qwen2.5-7B-Instruct"), upcast=False, lora_r=16, lora_dropout=0.05,
             optimizer="paged_adamw8bit", seq=1024, loss_chunk=128)
INTERNLM = replace(QWEN, arch=resolve("internlm/internlm-7b"))
LLAMA32 = replace(QWEN, arch=resolve("meta-llama/Llama-3.2-3B-Instruct"), quant=None)


def test_offload_embeddings_takes_the_input_table_off_the_gpu_unless_it_is_the_head():
    a = QWEN.arch
    saved = estimate(QWEN).parts["weights_16bit"] - estimate(
        replace(QWEN, offload_embeddings=True)).parts["weights_16bit"]
    assert saved == a.vocab * a.hidden * 2
    # Llama-3.2's table is tied to its LM head, which the GPU needs
    assert (estimate(replace(LLAMA32, offload_embeddings=True)).parts["weights_16bit"]
            == estimate(LLAMA32).parts["weights_16bit"])


def test_offload_checkpoints_keeps_one_layer_input_on_the_gpu():
    # every layer input and the final norm's fp32 input leave (what patches.offload_checkpoints
    # moves, counted in tests/patches/test_offload_memory.py) but the first: the embedding's
    # output, a leaf that requires grad, whose AccumulateGrad node keeps it on the GPU (the
    # fake-GPU trace shows it); the input of the layer being recomputed is back on the GPU, in
    # the layer term
    a, t = QWEN.arch, QWEN.tokens
    on = estimate(replace(QWEN, offload_checkpoints=True)).parts["activations"]
    off = estimate(QWEN).parts["activations"]
    assert off - on == (a.layers - 1) * t * a.hidden * 2 + 4 * a.hidden * t


def test_sdpa_attention_removes_the_eager_attention_matrix():
    eager = estimate(INTERNLM)
    sdpa = estimate(replace(INTERNLM, sdpa_attention=True))
    assert sdpa.total < eager.total
    # eager attention grows with the square of the length, SDPA linearly
    grow = lambda s: (estimate(replace(s, seq=2048)).total  # noqa: E731
                      - 2 * estimate(replace(s, seq=1024)).total)
    assert grow(INTERNLM) > grow(replace(INTERNLM, sdpa_attention=True))
    assert estimate(replace(QWEN, sdpa_attention=True)).total == estimate(QWEN).total


def logits(est) -> int:
    return est.parts.get("logits_loss", est.off_peak.get("logits_loss"))


@pytest.mark.parametrize("fused", ["auto", "liger", "cce", "chunked"])
def test_a_fused_loss_is_counted_as_the_chunked_loss(fused):
    full = replace(QWEN, loss_chunk=None)
    est = estimate(replace(full, fused_loss=fused))
    assert logits(est) == logits(estimate(replace(full, loss_chunk=FUSED_LOSS_CHUNK)))
    assert est.total < estimate(full).total


def test_expandable_segments_shrink_only_the_allocator_cache():
    plain, exp = estimate(QWEN), estimate(replace(QWEN, expandable_segments=True))
    assert exp.parts["allocator_reserve"] == pytest.approx(
        plain.parts["allocator_reserve"] * EXPANDABLE_CACHE_FACTOR, abs=2)
    assert {k: v for k, v in exp.parts.items() if k != "allocator_reserve"} == {
        k: v for k, v in plain.parts.items() if k != "allocator_reserve"}


def test_expandable_segments_as_the_config_or_the_environment_says():
    assert expandable_segments(True, patched=False, environ={}) is True
    assert expandable_segments(False, patched=True, environ={}) is False
    assert expandable_segments(None, patched=True, environ={}) is True  # the pack sets it
    assert expandable_segments(None, patched=False, environ={}) is False
    env = {"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128"}
    assert expandable_segments(None, patched=True, environ=env) is False  # the user's choice
    env = {"PYTORCH_ALLOC_CONF": "garbage_collection_threshold:0.6,expandable_segments:True"}
    assert expandable_segments(None, patched=False, environ=env) is True


def test_a_config_states_the_knobs_in_its_model(tmp_path):
    cfg = tmp_path / "knobs.py"
    cfg.write_text((REPO / "configs" / "internlm_7b_qlora_oasst_e3.py").read_text()
                   + "\nmodel.update(offload_embeddings=True, sdpa_attention=True,"
                   " offload_checkpoints=True, fused_loss='liger', loss_chunk=None)\n"
                   "expandable_segments = False\n")
    (tmp_path / "_base_").symlink_to(REPO / "configs" / "_base_")
    s = read(cfg).setup
    # fused_loss is the kernel the run will use: liger where liger-kernel is installed, else the
    # chunked loss PatchedFinetune falls back to (128-token chunks)
    from importlib.util import find_spec

    fused = "liger" if find_spec("liger_kernel") else None
    assert (s.offload_embeddings, s.sdpa_attention, s.offload_checkpoints, s.fused_loss,
            s.loss_chunk, s.expandable_segments) == (True, True, True, fused, 128, False)


def test_knobs_are_flagged_not_matched_by_their_labels():
    by_name = {c.name.split("=")[0].split(" ")[0]: c for c in changes(
        replace(INTERNLM, upcast=True, optimizer="adamw", batch=2))}
    assert by_name["keep_16bit"].free and by_name["batch_size"].free
    assert not by_name["lora_r"].free and not by_name["max_length"].free
    assert not by_name["--deepspeed"].planned
    assert by_name["sdpa_attention"].free and by_name["offload_embeddings"].free


def test_the_plan_turns_free_knobs_first_and_reaches_the_budget_at_the_top_of_the_band():
    setup = replace(INTERNLM, upcast=True, optimizer="adamw")
    budget = 7.6 * 2**30
    steps = plan(setup, budget)
    frees = [k.change.free for k in steps]
    assert frees == sorted(frees, reverse=True)  # every free knob before any other
    assert upper_bytes(steps[-1].setup) <= budget


def test_the_dtype_rules_come_from_the_setup():
    s = replace(QWEN, upcast=True)
    assert s.fp32_frozen and s.fp32_norms and s.autocast
    from doctor.fit.estimate import DeepSpeed

    ds = replace(s, deepspeed=DeepSpeed())
    assert not ds.fp32_frozen and not ds.autocast  # DeepSpeed casts back, runs without autocast
    assert not replace(s, weight_bytes=4).fp32_frozen
