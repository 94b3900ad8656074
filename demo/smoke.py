"""`make smoke`: the whole XTuner path on the embedded default, offline, on the CPU.

tiny model -> `xtuner train` (nf4 QLoRA) -> loss fell? -> `xtuner convert pth_to_hf` ->
`xtuner convert merge` -> `python -m aftertrain eval` (base vs tuned on GSM8K-format items) ->
`python -m aftertrain export --check` (GGUF; the merged model answers a question in HF and in
llama.cpp, same prompt, same greedy tokens). Each step runs the real command in a subprocess,
prints how long it took, and stops the run with its exit status if it fails. The evaluation
needs only the adapter, so it runs beside merge and export (two cores: most of each of these
steps is one core importing torch and transformers).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from components import tiny
from demo.steps import (
    REPO,
    RunFailure,
    aftertrain,
    export,
    losses,
    main_of,
    merge,
    to_adapter,
    xtuner,
)

CONFIG = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"
QUESTION = "What is the capital of France?"
GSM8K_ITEMS = CONFIG.with_name("gsm8k_tiny.jsonl")  # 6 GSM8K-format items for the pack


class SmokeFailure(RunFailure):
    pass


def run(work_dir: Path) -> dict:
    started = time.monotonic()
    work_dir = work_dir.resolve()
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    model_dir = tiny.build(REPO / ".cache" / "tiny-llama")
    print(f"[1/6] tiny Llama and tokenizer: {model_dir} ({time.monotonic() - started:.0f} s)",
          flush=True)

    took = xtuner("train", str(CONFIG), "--work-dir", str(work_dir),
                  log=work_dir / "train.log").wait()
    curve = losses(work_dir)
    first, last = curve[0][1], curve[-1][1]
    print(f"[2/6] xtuner train: {len(curve)} logged steps, loss {first:.3f} -> {last:.3f} "
          f"{took}", flush=True)
    if not last < first:
        raise SmokeFailure(f"loss did not fall: {first:.4f} -> {last:.4f}")
    memory = work_dir / "memory.json"  # components.memory_watch, in the recipe's hooks
    if not memory.is_file() or json.loads(memory.read_text()).get("steps") != curve[-1][0]:
        raise SmokeFailure(f"{memory}: missing, or not rewritten at the end of training")
    provenance = work_dir / "provenance.json"  # components.provenance: what the run is made of
    if not provenance.is_file():
        raise SmokeFailure(f"{provenance}: not written at the start of training")

    adapter = to_adapter(CONFIG, work_dir, "[3/6]")

    evaluation = aftertrain("eval", str(CONFIG), "--adapter", str(adapter), "--gsm8k",
                            str(GSM8K_ITEMS), "--tasks", "gsm8k", "--max-new-tokens", "24",
                            "--work-dir", str(work_dir), log=work_dir / "eval.log")
    try:
        merged = merge(model_dir, adapter, work_dir, "[4/6]")
        exported, took = export(CONFIG, merged, adapter, work_dir, QUESTION)
        rt = exported["roundtrip"]
        answer = rt["greedy_hf"].split(exported["eos_token"])[0].strip()
        print(f"[6/6] python -m aftertrain export: {exported['gguf']['Q4_K_M']} (+ f16, "
              f"Modelfile) {took}\n      the merged model, asked {QUESTION!r}: {answer!r}, and "
              "the same prompt and greedy tokens in llama.cpp\n      provenance.json: written "
              "when training started, carried by the adapter and the GGUFs' metadata",
              flush=True)

        took = evaluation.wait()
    finally:
        evaluation.stop()
    table = json.loads((work_dir / "eval.json").read_text())["tasks"]["gsm8k"]["runs"]
    print(f"[5/6] python -m aftertrain eval, GSM8K-format items (greedy, 95% Wilson interval), "
          f"beside steps 4 and 6 {took}:")
    for label, r in table.items():
        lo, hi = r["ci95"]
        print(f"      {label:<13} {r['correct']}/{r['n']} = {100 * r['accuracy']:.0f} % "
              f"[{100 * lo:.0f}-{100 * hi:.0f} %]")
    seconds = time.monotonic() - started
    print(f"smoke OK in {seconds:.0f} s")
    return dict(first_loss=first, last_loss=last, answer=answer, seconds=seconds,
                adapter=str(adapter), merged=str(merged), eval=table, export=exported)


def main(argv=None) -> int:
    return main_of("smoke", "demo.smoke", __doc__, "smoke", lambda args: run(args.work_dir),
                   argv=argv)


if __name__ == "__main__":
    sys.exit(main())
