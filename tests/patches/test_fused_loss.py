"""patches.fused_loss: which loss a batch runs with, and that the CPU falls back to the chunked
loss with the model's own loss and gradients. The fused kernels themselves (liger-kernel,
cut-cross-entropy) are Triton, CUDA only: their test runs on a GPU with the library installed,
and bench/vram.py --patches compares them there."""

from __future__ import annotations

import pytest
import torch

from patches import fused_loss
from tests.patches.memory_models import batch, build, llama_dir, lora_grads, loss_of

TOKENS = 256
CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return llama_dir(tmp_path_factory.mktemp("fused") / "llama", dtype=torch.float32)


def step(model, data):
    model.zero_grad(set_to_none=True)
    loss = loss_of(model, data)
    loss.backward()
    return loss.item(), lora_grads(model)


def test_unknown_kinds_and_missing_libraries_fail_before_the_model_loads():
    with pytest.raises(ValueError, match="fused_loss must be one of"):
        fused_loss.validate("flash")
    for kind in ("liger", "cce"):
        if not fused_loss.available(kind):
            with pytest.raises(ValueError, match=r"is not installed \(pip install -c env/stack"):
                fused_loss.validate(kind)


def test_auto_on_the_cpu_is_the_chunked_loss_with_the_models_own_loss_and_gradients(model_dir):
    data = batch(TOKENS)
    own = step(build(model_dir, patches=dict(keep_16bit=False, loss_chunk=None), quant=False,
                     dtype=torch.float32), data)
    model = build(model_dir, patches=dict(keep_16bit=False, loss_chunk=None, fused_loss="auto"),
                  quant=False, dtype=torch.float32)
    auto = step(model, data)
    assert model.llm.get_base_model()._pack_loss_kind == "chunked"
    assert auto[0] == pytest.approx(own[0], rel=1e-5)
    for name, g in own[1].items():
        assert (g - auto[1][name]).norm() <= 1e-4 * g.norm(), name


def test_choice_per_batch():
    head = torch.nn.Linear(8, 32, bias=False)
    cpu = torch.zeros(1, 4, 8)
    assert fused_loss.choose("auto", cpu, head) == "chunked"
    assert fused_loss.choose("chunked", cpu, head) == "chunked"
    with pytest.raises(ValueError, match="needs the batch on a CUDA GPU"):
        fused_loss.choose("liger", cpu, head)
    head.lora_A = torch.nn.ModuleDict()  # a LoRA adapter on the head: no fused kernel sees it
    assert not fused_loss.fusable_head(head)


@pytest.mark.skipif(not (CUDA and fused_loss.available("liger")),
                    reason="liger-kernel's Triton kernels need a CUDA GPU and the library")
def test_liger_on_cuda_equals_the_chunked_loss():
    from patches.chunked_ce import chunked_causal_lm_loss

    torch.manual_seed(0)
    head = torch.nn.Linear(256, 4096, bias=False).cuda().half()
    hidden = torch.randn(1, 512, 256, device="cuda", dtype=torch.half, requires_grad=True)
    labels = torch.randint(0, 4096, (1, 512), device="cuda")
    ref = chunked_causal_lm_loss(hidden, head, labels, 128)
    (g_ref,) = torch.autograd.grad(ref, hidden)
    fused = fused_loss.liger_loss(hidden, head, labels)
    (g_fused,) = torch.autograd.grad(fused, hidden)
    assert fused.item() == pytest.approx(ref.item(), rel=2e-3)
    assert (g_fused.float() - g_ref.float()).norm() <= 0.02 * g_ref.float().norm()
