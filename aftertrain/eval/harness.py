"""GSM8K / MATH accuracy of a config's model through lm-evaluation-harness, offline.

The model is built from the config as XTuner trains it (its `model.llm` and `tokenizer` dicts:
the 4-bit base with its quantization, the same dtype), the tokenizer's chat_template is the
config's XTuner template (components.chat_template.jinja: the text training saw), and the items
come from local files (aftertrain.eval.data). lm-eval runs the generation (HFLM, greedy, its
batching and stop strings); this module grades each reply with aftertrain.eval.answers.
"""

from __future__ import annotations

import logging

from components import chat_template as templates

from ..config import ModelSpec
from . import answers
from .data import Item


class EvalError(RuntimeError):
    """The evaluation cannot run as asked; the message says why and what to do."""


def build_tokenizer(spec: ModelSpec):
    from xtuner.registry import BUILDER

    tokenizer = BUILDER.build(spec.cfg.tokenizer)
    tokenizer.chat_template = templates.jinja(
        spec.template, bos_token=templates.xtuner_bos(tokenizer), system=spec.system)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_model(spec: ModelSpec):
    """The base model exactly as XTuner builds the config's `model.llm` for training (its
    traverse_dict builds the nested quantization config), without the LoRA wrapping."""
    import copy

    from xtuner.model.utils import traverse_dict
    from xtuner.registry import BUILDER

    llm = copy.deepcopy(spec.cfg.model.llm)
    traverse_dict(llm)
    model = BUILDER.build(llm)
    model.eval()
    return model


def stop_strings(spec: ModelSpec, tokenizer) -> list[str]:
    return templates.stop_words(spec.template, tokenizer.eos_token)


def _grade(task: str, reply: str, gold: str) -> tuple[str | None, str, bool]:
    if task == "gsm8k":
        extracted, how = answers.gsm8k_extract(reply)
        return extracted, how, answers.gsm8k_correct(gold, extracted)
    extracted, how = answers.math_extract(reply)
    return extracted, how, answers.math_correct(gold, reply)


def _lm_eval(lm, name: str, docs: list[dict], system: str, *, metric: str, **task) -> list[dict]:
    """One lm-eval task over `docs` (each with `idx` and `question`, asked in the tokenizer's chat
    template, zero-shot): its logged samples, in the order of `docs`."""
    import datasets
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    def dataset(**_):
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})

    config = dict(task=name, custom_dataset=dataset, test_split="test",
                  doc_to_text=lambda doc: doc["question"], target_delimiter="",
                  metric_list=[dict(metric=metric, aggregation="mean", higher_is_better=True)],
                  num_fewshot=0, metadata=dict(version=1), **task)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    out = simple_evaluate(model=lm, tasks=[config],
                          task_manager=TaskManager(include_defaults=False),
                          apply_chat_template=True, system_instruction=system or None,
                          log_samples=True, bootstrap_iters=0, use_cache=None)
    return sorted(out["samples"][name], key=lambda s: s["doc"]["idx"])


def run_task(lm, task: str, items: list[Item], *, until: list[str], max_new_tokens: int,
             system: str = "") -> list[dict]:
    """Greedy answers of `lm` (an lm-eval LM) to `items`, graded; one dict per item, in order."""
    docs = [dict(idx=i, question=it.question, gold=it.gold) for i, it in enumerate(items)]

    def process(doc, results):
        return {"acc": float(_grade(task, results[0], doc["gold"])[2])}

    samples = _lm_eval(lm, f"aftertrain_{task}", docs, system,
                       output_type="generate_until",
                       doc_to_target=lambda doc: doc["gold"],
                       generation_kwargs=dict(until=list(until), do_sample=False,
                                              max_gen_toks=max_new_tokens),
                       process_results=process, metric="acc")
    rows = []
    for sample, item in zip(samples, items, strict=True):
        reply = sample["resps"][0][0]
        extracted, how, correct = _grade(task, reply, item.gold)
        rows.append(dict(
            task=task, where=item.where, prompt=sample["arguments"][0][0], reply=reply,
            answer=item.gold, extracted=extracted, extracted_by=how, correct=correct))
    return rows


def answer_end(spec: ModelSpec, tokenizer) -> str:
    """What training puts after an answer with loss (the SUFFIX, and EOS unless the SUFFIX is the
    end-of-turn marker): a gold answer is scored with it, as the model learnt to end it."""
    t = spec.template
    end = t.get("SUFFIX") or ""
    if not t.get("SUFFIX_AS_EOS", False):
        end += tokenizer.eos_token or ""
    return end


def gold_losses(lm, task: str, items: list[Item], *, answer_end: str,
                system: str = "") -> list[dict]:
    """Per item, the model's loss on the gold solution as training formats it (`Item.solution`
    + `answer_end`) after the chat-templated question: mean negative log-likelihood per token
    (nats) and the token count, through lm-eval's loglikelihood requests (one forward each, no
    generation). More sensitive than accuracy where a model answers few items right."""
    docs = [dict(idx=i, question=it.question, target=it.solution + answer_end)
            for i, it in enumerate(items)]
    samples = _lm_eval(lm, f"aftertrain_{task}_gold", docs, system,
                       output_type="loglikelihood",
                       doc_to_target=lambda doc: doc["target"],
                       process_results=lambda doc, results: {"ll": results[0][0]}, metric="ll")
    rows = []
    for sample, item in zip(samples, items, strict=True):
        context, continuation = sample["arguments"][0]
        n = len(lm._encode_pair(context, continuation)[1])  # the tokens lm-eval scored
        logprob = float(sample["resps"][0][0][0])
        rows.append(dict(where=item.where, gold_tokens=n, gold_loss=-logprob / max(n, 1)))
    return rows


def make_lm(model, tokenizer, *, batch_size: int, max_length: int | None = None):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size,
                max_length=max_length)
