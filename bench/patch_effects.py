"""python bench/patch_effects.py [--repeats N]: what each memory patch saves, measured on the CPU.

A small Llama (vocab 16384, hidden 256, 4 layers, bf16 weights) is built through XTuner's
SupervisedFinetune as the pack's configs build it, once as XTuner ships it (the anchor) and once
per patch, and one training step on 1024 tokens runs under bf16 autocast. Printed per patch:
the model's parameter bytes, the step's peak of live tensor bytes (bench/memtrack.py), the
optimizer state bytes after a step, and the loss, each as a ratio to the anchor of the same run;
medians over --repeats runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# `python bench/X.py` puts bench/ first on sys.path; these scripts import the pack's packages and
# bench.* from the repository root, so the root goes first instead.
sys.path[:] = [str(REPO)] + [p for p in sys.path
                             if Path(p or ".").resolve() not in (REPO, REPO / "bench")]

VOCAB, HIDDEN, LAYERS, TOKENS = 16384, 256, 4, 1024


def model_dir(path: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=VOCAB)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(path)
    return path


def build(path: Path, patches: dict | None):
    import torch
    from mmengine.config import ConfigDict
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from xtuner.model import SupervisedFinetune

    from patches.memory import PatchedFinetune

    llm = ConfigDict(type=AutoModelForCausalLM.from_pretrained,
                     pretrained_model_name_or_path=str(path), torch_dtype=torch.bfloat16,
                     quantization_config=ConfigDict(
                         type=BitsAndBytesConfig, load_in_4bit=True, bnb_4bit_quant_type="nf4",
                         bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16))
    lora = ConfigDict(type=LoraConfig, r=32, lora_alpha=64, lora_dropout=0.0,
                      task_type="CAUSAL_LM")
    torch.manual_seed(0)
    if patches is None:
        return SupervisedFinetune(llm=llm, lora=lora).train()
    return PatchedFinetune(base=SupervisedFinetune, llm=llm, lora=lora, **patches).train()


def one_run(path: Path, patches: dict | None, optimizer: str) -> dict:
    import torch

    from bench.memtrack import LiveBytes
    from patches.paged_adamw_8bit import PagedAdamW8bit

    model = build(path, patches)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (PagedAdamW8bit if optimizer == "paged_adamw_8bit" else torch.optim.AdamW)(params,
                                                                                     lr=1e-4)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (1, TOKENS), generator=g)
    labels = ids.clone()
    labels[:, : TOKENS // 8] = -100
    with LiveBytes() as mem:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(dict(input_ids=ids, labels=labels), mode="loss")["loss"]
        loss.backward()
        opt.step()
    seen, states = set(), 0
    for state in opt.state.values():
        for v in state.values():
            if torch.is_tensor(v) and v.numel() > 1 and v.untyped_storage().data_ptr() not in seen:
                seen.add(v.untyped_storage().data_ptr())
                states += v.untyped_storage().nbytes()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return dict(weights=weights, peak=mem.peak, states=states, loss=loss.item())


CASES = [  # name, PatchedFinetune arguments (None = XTuner as shipped), optimizer
    ("XTuner as shipped (anchor)", None, "adamw"),
    ("keep_16bit", dict(keep_16bit=True, loss_chunk=None), "adamw"),
    ("chunked_ce (128 tokens)", dict(keep_16bit=False, loss_chunk=128), "adamw"),
    ("paged_adamw_8bit", None, "paged_adamw_8bit"),
    ("all three (the recipe)", dict(keep_16bit=True, loss_chunk=128), "paged_adamw_8bit"),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = model_dir(Path(tmp) / "llama")
        runs = {name: [] for name, _, _ in CASES}
        for _ in range(args.repeats):
            for name, patches, optimizer in CASES:
                runs[name].append(one_run(path, patches, optimizer))
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for name, rs in runs.items()}
    anchor = med[CASES[0][0]]
    print(f"Llama vocab {VOCAB}, hidden {HIDDEN}, {LAYERS} layers, QLoRA r=32, {TOKENS} tokens, "
          f"bf16 autocast on the CPU; medians of {args.repeats} runs; ratios to the anchor")
    print(f"{'case':<30}{'weights':>12}{'step peak':>12}{'opt states':>12}{'loss':>10}")
    for name, m in med.items():
        print(f"{name:<30}{m['weights'] / anchor['weights']:>12.3f}"
              f"{m['peak'] / anchor['peak']:>12.3f}{m['states'] / anchor['states']:>12.3f}"
              f"{m['loss'] / anchor['loss']:>10.4f}")
    print(f"anchor: weights {anchor['weights'] / 2**20:.1f} MiB, step peak "
          f"{anchor['peak'] / 2**20:.1f} MiB, optimizer states {anchor['states'] / 2**20:.2f} MiB, "
          f"loss {anchor['loss']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
