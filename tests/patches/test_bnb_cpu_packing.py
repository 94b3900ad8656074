"""patches.bnb_cpu_packing: a training step after the chat hook's sample has the gradients of a
fresh model (bitsandbytes 0.50 packs 4-bit weights for CPU inference at the first eval-mode
forward and never unpacks them; on a CPU with AVX512-BF16 the gradients through every frozen
4-bit layer are lost from then on)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import REPO, python

SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"

# The recipe's model (nf4 QLoRA, checkpointing, chunked loss) of the smoke config, its real
# EvaluateChatHook sampling in eval mode as before the first step, and the layer-0 LoRA
# gradients of one batch before and after that sample (nothing trains in between).
HOOK_THEN_GRADS = """
import json, logging
from types import SimpleNamespace
import torch
from mmengine.config import Config
from xtuner.engine.hooks import EvaluateChatHook
from xtuner.registry import BUILDER

cfg = Config.fromfile({config!r})
tokenizer = dict(cfg.tokenizer, pretrained_model_name_or_path={model!r})
cfg.model.llm.pretrained_model_name_or_path = {model!r}
cfg.model.lora.lora_dropout = 0.0
torch.manual_seed(0)
model = BUILDER.build(cfg.model)
for name, p in model.named_parameters():  # LoRA-B starts at 0: give lora_A a gradient too
    if "lora_B" in name:
        p.data.normal_(0, 0.05)
model.train()
ids = BUILDER.build(tokenizer)("The capital of France is Paris. 12 + 30 = 42.").input_ids
data = dict(input_ids=torch.tensor([ids]), labels=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long))

def layer0_grads():
    model.zero_grad(set_to_none=True)
    model(data, mode="loss")["loss"].backward()
    return {{n: p.grad.clone() for n, p in model.named_parameters()
             if p.requires_grad and ".layers.0." in n and p.grad is not None}}

fresh = layer0_grads()
hook = next(h for h in cfg.custom_hooks if "evaluation_inputs" in h)
hook = EvaluateChatHook(tokenizer=tokenizer, **{{k: v for k, v in hook.items()
                                               if k not in ("type", "tokenizer")}})
hook._generate_samples(SimpleNamespace(model=model, cfg={{}}, logger=logging.getLogger("t")),
                       max_new_tokens=4)
after = layer0_grads()
import bitsandbytes.functional as F
print("RESULT", json.dumps(dict(
    avx512bf16=bool(F.has_avx512bf16()),
    norms={{n: g.norm().item() for n, g in fresh.items()}},
    diffs={{n: None if n not in after else (after[n] - g).norm().item()
           for n, g in fresh.items()}})))
"""


def layer0_gradients(model, **env) -> dict:
    out = python(HOOK_THEN_GRADS.format(config=str(SMOKE), model=str(model)), **env)
    assert out.returncode == 0, out.stdout[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def relative(result) -> dict:
    return {n: float("inf") if d is None else d / max(result["norms"][n], 1e-30)
            for n, d in result["diffs"].items()}


def test_gradients_after_the_chat_hook_sample_equal_a_fresh_models(tiny_model):
    fixed = layer0_gradients(tiny_model)
    assert len(fixed["norms"]) == 14  # lora_A and lora_B of q, k, v, o, gate, up, down
    assert all(n > 0 for n in fixed["norms"].values()), fixed["norms"]
    assert all(d == 0.0 for d in fixed["diffs"].values()), relative(fixed)


def test_without_the_patch_the_chat_hook_sample_breaks_the_gradients(tiny_model):
    broken = layer0_gradients(tiny_model, XTUNER_PACK_PATCHES="-bnb_cpu_packing")
    if not broken["avx512bf16"]:
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes never packs its weights here")
    rel = relative(broken)
    # every frozen 4-bit layer loses its input gradient: the LoRA weights of layer 0 that reach
    # the loss through another frozen layer get wrong gradients, or none
    assert max(rel.values()) > 0.3, rel
    assert sum(r > 0.01 for r in rel.values()) >= 7, rel
