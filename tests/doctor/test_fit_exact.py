"""The estimator's static terms are counts, and they match real models within 1 %.

Full-size architectures are built on the meta device (no memory) with the classes that run them:
transformers' Llama, Qwen2 and Mixtral, the InternLM2 remote code that XTuner ships, and for
InternLM-7B (whose remote code is Llama's renamed, with biases) Llama with attention_bias. There,
transformers' own bitsandbytes replacement decides which linears become 4-bit and XTuner's
find_all_linear_names + PEFT decide the LoRA adapters. Bytes per tensor (4-bit data, quantization
constants, dtypes after PEFT's upcast or patches.keep_16bit, optimizer states) are counted on
scaled-down models of the same layout that really are quantized and trained on the CPU.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from doctor.fit.arch import from_config
from doctor.fit.estimate import (
    Setup,
    estimate,
    lora_numel,
    lora_tensor_sizes,
    optimizer_bytes,
    quantized_bytes,
    weight_terms,
)
from tests.patches.memory_models import internlm2_classes

TABLE = json.loads((__import__("doctor.fit.arch", fromlist=["TABLE"]).TABLE).read_text())
TARGETS = ["InternLM-7B", "InternLM2-math-plus-7B", "Qwen2.5-7B", "Llama-2-7B", "Llama-3.2-3B",
           "Mixtral-8x7B"]


def hf_model(cfg: dict):
    """An untrained model of `cfg`'s layout with the class that runs it (on the current device)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(cfg)
    kind = cfg.pop("model_type")
    cfg.pop("attn_implementation", None)
    if kind == "internlm2":
        config_cls, model_cls = internlm2_classes()
        return model_cls(config_cls(**cfg, attn_implementation="eager"))
    if kind == "internlm":  # InternLM-7B's remote code: Llama with q,k,v,o biases
        bias = cfg.pop("bias")
        cfg = dict(cfg, attention_bias=bias)
        kind = "llama"
    config = AutoConfig.for_model(kind, **cfg)
    return AutoModelForCausalLM.from_config(config)


def quantize_like_transformers(model, double_quant=True):
    """transformers' bitsandbytes replacement: every nn.Linear but the output embedding."""
    from transformers import BitsAndBytesConfig
    from transformers.integrations.bitsandbytes import (
        get_keys_to_not_convert,
        replace_with_bnb_linear,
    )

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                bnb_4bit_use_double_quant=double_quant)
    return replace_with_bnb_linear(model, modules_to_not_convert=get_keys_to_not_convert(model),
                                   quantization_config=config)


def xtuner_lora(model, r):
    from peft import LoraConfig, get_peft_model
    from xtuner.model.utils import find_all_linear_names

    targets = find_all_linear_names(model)
    return get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets))


def lora_params(model):
    return [p for n, p in model.named_parameters() if "lora_" in n]


# ---- full size, on the meta device --------------------------------------------------------------


@pytest.mark.parametrize("name", TARGETS)
def test_full_size_counts_match_the_real_classes(name):
    import bitsandbytes as bnb

    entry = TABLE["architectures"][name]
    arch = from_config(entry["config"], name=name)
    setup = Setup(arch, lora_r=16)
    with torch.device("meta"):
        model = hf_model(entry["config"])
        total = sum(p.numel() for p in model.parameters())
        lora = xtuner_lora(hf_model(entry["config"]), r=16)
        quantized = quantize_like_transformers(hf_model(entry["config"]))
    four_bit = [m.weight for m in quantized.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert total == pytest.approx(arch.total_params, rel=0.01)
    assert total == arch.total_params  # in fact exact
    counts = estimate(setup).counts
    assert sum(w.numel() for w in four_bit) == counts["linear"]
    assert total - counts["linear"] == counts["unquantized"]
    est_bytes = weight_terms(setup)
    real_bytes = [quantized_bytes(w.numel(), True) for w in four_bit]
    assert sum(b for b, _ in real_bytes) == est_bytes["weights_4bit"]
    assert sum(c for _, c in real_bytes) == est_bytes["quant_constants"]
    lora_sizes = sorted(p.numel() for p in lora_params(lora))
    assert sum(lora_sizes) == lora_numel(setup)
    assert lora_sizes == sorted(lora_tensor_sizes(setup))


# ---- bytes, on scaled-down models that are really quantized and trained ------------------------


def scaled(cfg: dict) -> dict:
    """`cfg` with small dimensions and the same layout (fused q/k/v, GQA, biases, experts, ties)."""
    small = dict(cfg, hidden_size=256, intermediate_size=512, num_hidden_layers=2, vocab_size=1024)
    heads = 4
    small["num_attention_heads"] = heads
    if "num_key_value_heads" in cfg:
        mha = cfg["num_key_value_heads"] == cfg["num_attention_heads"]
        small["num_key_value_heads"] = heads if mha else 2
    if "head_dim" in cfg:
        small["head_dim"] = 64
    if "num_local_experts" in cfg:
        small["num_local_experts"] = 4
    return small


@pytest.fixture(scope="module", params=TARGETS)
def small_model(request, tmp_path_factory):
    """(table entry name, scaled config, directory of its bf16 weights)."""
    name = request.param
    cfg = scaled(TABLE["architectures"][name]["config"])
    torch.manual_seed(0)
    model = hf_model(cfg).to(torch.bfloat16)
    path = tmp_path_factory.mktemp("exact") / name
    model.save_pretrained(path)
    return name, cfg, path, type(model)


def load_quantized(model_cls, path, double_quant=True):
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                bnb_4bit_use_double_quant=double_quant,
                                bnb_4bit_compute_dtype=torch.bfloat16)
    return model_cls.from_pretrained(path, quantization_config=config, dtype=torch.bfloat16)


def four_bit_bytes(model) -> tuple[int, int]:
    """(4-bit data, quantization constants) as stored: Params4bit data and its QuantState."""
    from bitsandbytes.nn import Params4bit

    data = consts = 0
    for p in model.parameters():
        if isinstance(p, Params4bit):
            data += p.untyped_storage().nbytes()
            qs = p.quant_state
            tensors = [qs.absmax, qs.code, qs.offset]
            if qs.state2 is not None:
                tensors += [qs.state2.absmax, qs.state2.code]
            consts += sum(t.untyped_storage().nbytes() for t in tensors if t is not None)
    return data, consts


def unquantized_bytes(model) -> dict[str, int]:
    from bitsandbytes.nn import Params4bit

    out = {"weights_16bit": 0, "weights_fp32": 0}
    for p in model.parameters():  # tied weights come once
        if not isinstance(p, Params4bit) and not p.requires_grad:
            key = "weights_fp32" if p.dtype == torch.float32 else "weights_16bit"
            out[key] += p.numel() * p.element_size()
    return out


@pytest.mark.parametrize("double_quant", [True, False])
def test_4bit_data_and_constants_per_tensor(small_model, double_quant):
    name, cfg, path, model_cls = small_model
    model = load_quantized(model_cls, path, double_quant)
    setup = Setup(from_config(cfg, name=name), double_quant=double_quant)
    est = weight_terms(setup)
    data, consts = four_bit_bytes(model)
    assert data == est["weights_4bit"]
    assert consts == pytest.approx(est["quant_constants"], rel=0.01)


@pytest.mark.parametrize("shape", [(100, 77), (4096, 11008), (3584, 18944)])
def test_quantization_constants_of_odd_and_full_size_tensors(shape):
    from bitsandbytes.nn import Params4bit

    w = Params4bit(torch.randn(*shape, dtype=torch.float16), requires_grad=False,
                   compress_statistics=True, quant_type="nf4").to("cpu")
    qs = w.quant_state
    consts = sum(t.untyped_storage().nbytes() for t in (qs.absmax, qs.code, qs.offset,
                                                        qs.state2.absmax, qs.state2.code))
    assert (w.untyped_storage().nbytes(), consts) == quantized_bytes(shape[0] * shape[1], True)


@pytest.mark.parametrize("keep_16bit", [False, True])
def test_unquantized_weights_after_xtuners_lora_preparation(small_model, keep_16bit):
    from peft import prepare_model_for_kbit_training

    from patches.keep_16bit import prepare_keep_16bit

    name, cfg, path, model_cls = small_model
    model = load_quantized(model_cls, path)
    prepare = prepare_keep_16bit if keep_16bit else prepare_model_for_kbit_training
    model = prepare(model, True)
    est = weight_terms(Setup(from_config(cfg, name=name), upcast=not keep_16bit))
    real = unquantized_bytes(model)
    assert real["weights_16bit"] == est["weights_16bit"]
    assert real["weights_fp32"] == est["weights_fp32"]


def test_lora_gradients_and_optimizer_states(small_model):
    from components.paged_adamw_8bit import PagedAdamW8bit

    name, cfg, path, model_cls = small_model
    setup = Setup(from_config(cfg, name=name), lora_r=16, upcast=False)
    model = xtuner_lora(load_quantized(model_cls, path), r=16)
    params = lora_params(model)
    assert sum(p.numel() * p.element_size() for p in params) == 4 * lora_numel(setup)
    ids = torch.randint(0, cfg["vocab_size"], (1, 32))
    for opt_name, make in (("adamw", torch.optim.AdamW), ("paged_adamw8bit", PagedAdamW8bit)):
        optimizer = make(params, lr=1e-3)
        model(input_ids=ids, labels=ids).loss.backward()
        grads = sum(p.grad.numel() * p.grad.element_size() for p in params)
        assert grads == 4 * lora_numel(setup)
        optimizer.step()
        seen, states = set(), 0
        for state in optimizer.state.values():
            for value in state.values():
                if torch.is_tensor(value) and value.numel() > 1:  # not the step counters
                    ptr = value.untyped_storage().data_ptr()
                    if ptr not in seen:  # bitsandbytes shares one quantile map per state
                        seen.add(ptr)
                        states += value.untyped_storage().nbytes()
        est = optimizer_bytes(replace(setup, optimizer=opt_name), lora_tensor_sizes(setup))
        assert states == pytest.approx(est, rel=0.01), opt_name
        model.zero_grad(set_to_none=True)
