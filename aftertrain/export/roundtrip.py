"""Does the GGUF answer as the merged HF model does? Same prompt, same tokens, same greedy text.

The prompt is XTuner's (its template_map_fn + encode_fn: the text the model was trained on, up
to where the answer starts) on the HF side, and the GGUF's own tokenizer.chat_template rendered
by llama-cpp-python's Jinja2ChatFormatter and tokenized by llama.cpp on the other. The HF weights
are rounded to fp16 first, as the f16 GGUF stores them, so the two differ only in kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

from components import chat_template as templates

from .llamacpp import ExportError, gguf_metadata


@dataclass
class RoundTrip:
    prompt_hf: str
    prompt_gguf: str
    ids_hf: list[int]
    ids_gguf: list[int]
    greedy_hf: list[int]
    greedy_gguf: list[int]
    text_hf: str
    text_gguf: str

    @property
    def ok(self) -> bool:
        return (self.prompt_hf == self.prompt_gguf and self.ids_hf == self.ids_gguf
                and self.greedy_hf == self.greedy_gguf)

    def problems(self) -> list[str]:
        out = []
        if self.prompt_hf != self.prompt_gguf:
            out.append(f"prompt differs: XTuner {self.prompt_hf!r} vs GGUF {self.prompt_gguf!r}")
        if self.ids_hf != self.ids_gguf:
            out.append(f"prompt tokens differ: HF {self.ids_hf} vs llama.cpp {self.ids_gguf}")
        if self.greedy_hf != self.greedy_gguf:
            out.append(f"greedy continuation differs: HF {self.text_hf!r} vs llama.cpp "
                       f"{self.text_gguf!r}")
        return out


def xtuner_prompt_ids(template, messages: list[dict], tokenizer, *, system: str = "") -> list[int]:
    """XTuner's encode_fn of a conversation whose last user turn is unanswered: the prompt."""
    try:
        return templates.xtuner_ids(template, messages, tokenizer, system=system,
                                    prompt_only=True)
    except templates.TemplateError as exc:
        raise ExportError(f"the round trip: {exc}") from None


def greedy_hf(model_dir, ids: list[int], n: int, trust_remote_code: bool = False) -> list[int]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 trust_remote_code=trust_remote_code)
    model = model.half().float().eval()  # the f16 GGUF's weights
    out = list(ids)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([out])).logits[0, -1]
            out.append(int(logits.argmax()))
    return out[len(ids):]


def check(merged_dir, gguf_path, template, question: str, *, system: str = "",
          n_tokens: int = 16, trust_remote_code: bool = False) -> RoundTrip:
    """`question` as the one message, as a user sends it: `system` (the config's) is the default
    system prompt both sides put before it."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from transformers import AutoTokenizer

    messages = [{"role": "user", "content": question}]
    tokenizer = AutoTokenizer.from_pretrained(merged_dir, trust_remote_code=trust_remote_code)
    ids_hf = xtuner_prompt_ids(template, messages, tokenizer, system=system)
    prompt_hf = tokenizer.decode(ids_hf, skip_special_tokens=False,
                                 clean_up_tokenization_spaces=False)

    meta = gguf_metadata(gguf_path)
    if not meta["chat_template"]:
        raise ExportError(f"{gguf_path}: no tokenizer.chat_template")
    formatter = Jinja2ChatFormatter(template=meta["chat_template"], eos_token=meta["eos_token"],
                                    bos_token=meta["bos_token"] or "")
    prompt_gguf = formatter(messages=messages).prompt
    llm = Llama(model_path=str(gguf_path), n_ctx=512, n_threads=2, verbose=False, seed=0)
    ids_gguf = llm.tokenize(prompt_gguf.encode("utf-8"), add_bos=False, special=True)
    greedy_gguf = []
    for tok in llm.generate(ids_gguf, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        greedy_gguf.append(int(tok))
        if len(greedy_gguf) >= n_tokens:
            break
    greedy = greedy_hf(merged_dir, ids_hf, n_tokens, trust_remote_code)
    return RoundTrip(prompt_hf, prompt_gguf, ids_hf, ids_gguf, greedy, greedy_gguf,
                     tokenizer.decode(greedy, skip_special_tokens=False),
                     llm.detokenize(greedy_gguf, special=True).decode("utf-8", "replace"))
