"""The merged model's answer to one question, greedy, in Hugging Face transformers and in llama.cpp
(the quantized GGUF, prompted by the GGUF's own chat template): what a user of the export sees.

    python -m demo.answer MERGED_DIR GGUF "question" [--system S] [--max-tokens N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def hf_answer(model_dir: Path, gguf: Path, messages: list[dict], max_tokens: int) -> str:
    """transformers' greedy generation, prompted with the GGUF's chat template (XTuner's, as
    trained), stopping at the GGUF's end-of-turn token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from aftertrain.export.llamacpp import gguf_metadata

    meta = gguf_metadata(gguf)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                           chat_template=meta["chat_template"])
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    eos = tokenizer.convert_tokens_to_ids(meta["eos_token"])
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False, eos_token_id=eos,
                             pad_token_id=eos, attention_mask=torch.ones_like(ids))
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def llama_cpp_answer(gguf: Path, messages: list[dict], max_tokens: int) -> str:
    """llama-cpp-python's chat completion: the GGUF's chat template, its EOS, greedy."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=1024, n_threads=2, verbose=False, seed=0)
    try:
        out = llm.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                         temperature=0.0, top_k=1, repeat_penalty=1.0)
    finally:
        llm.close()
    return out["choices"][0]["message"]["content"].strip()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo.answer", description=__doc__.split("\n")[0])
    p.add_argument("merged", type=Path)
    p.add_argument("gguf", type=Path)
    p.add_argument("question")
    p.add_argument("--max-tokens", type=int, default=200)
    p.add_argument("--json", type=Path, help="write {hf, llama_cpp} here")
    args = p.parse_args(argv)
    messages = [{"role": "user", "content": args.question}]
    answers = dict(question=args.question,
                   hf=hf_answer(args.merged, args.gguf, messages, args.max_tokens),
                   llama_cpp=llama_cpp_answer(args.gguf, messages, args.max_tokens))
    print(json.dumps(answers, indent=1, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(answers, indent=1, ensure_ascii=False))
    return 0

if __name__ == "__main__":
    sys.exit(main())
