"""python bench/patch_effects.py [--repeats N]: what each memory patch saves and costs, on the CPU.

A small but wide Llama (vocab 16384, hidden 256, 4 layers, bf16 weights) is built through
XTuner's SupervisedFinetune as the pack's configs build it, once as XTuner ships it (the anchor)
and once per patch, and one training step on 1024 tokens runs under bf16 autocast. Printed per
patch: the model's parameter bytes, the step's peak of live tensor bytes (bench/memtrack.py),
the optimizer state bytes after a step, the step's wall time and the loss, each as a ratio to
the anchor of the same run; medians over --repeats runs.

The second table puts the long-sequence patches on top of the recipe (the anchor there): the
same Llama for offload_embeddings, offload_checkpoints and fused_loss, and InternLM2's modeling
code (XTuner's copy, loaded as remote code, eager attention) of the same size for
sdpa_attention. On the CPU the offloaded tensors stay in the same memory, so for the two offload
patches the table shows what leaves the GPU on a GPU: the parameter bytes (what
`model.to("cuda")` moves) and the bytes copied out per step.
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

    from components.finetune import PatchedFinetune

    llm = ConfigDict(type=AutoModelForCausalLM.from_pretrained, trust_remote_code=True,
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
    import time

    import torch

    from bench.memtrack import LiveBytes
    from components.paged_adamw_8bit import PagedAdamW8bit

    model = build(path, patches)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (PagedAdamW8bit if optimizer == "paged_adamw_8bit" else torch.optim.AdamW)(params,
                                                                                     lr=1e-4)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (1, TOKENS), generator=g)
    labels = ids.clone()
    labels[:, : TOKENS // 8] = -100
    with torch.autocast("cpu", dtype=torch.bfloat16):  # warm-up step, untimed
        model(dict(input_ids=ids, labels=labels), mode="loss")["loss"].backward()
    model.zero_grad(set_to_none=True)
    with LiveBytes() as mem:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(dict(input_ids=ids, labels=labels), mode="loss")["loss"]
        loss.backward()
        opt.step()
        seconds = time.perf_counter() - start
    seen, states = set(), 0
    for state in opt.state.values():
        for v in state.values():
            if torch.is_tensor(v) and v.numel() > 1 and v.untyped_storage().data_ptr() not in seen:
                seen.add(v.untyped_storage().data_ptr())
                states += v.untyped_storage().nbytes()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    decoder = model.llm.get_base_model().model
    offloaded = getattr(decoder, "_pack_offload_stats", {}).get("bytes", 0)
    return dict(weights=weights, peak=mem.peak, states=states, seconds=seconds,
                offloaded=offloaded, loss=loss.item())


CASES = [  # name, PatchedFinetune arguments (None = XTuner as shipped), optimizer
    ("XTuner as shipped (anchor)", None, "adamw"),
    ("keep_16bit", dict(keep_16bit=True, loss_chunk=None), "adamw"),
    ("chunked_ce (128 tokens)", dict(keep_16bit=False, loss_chunk=128), "adamw"),
    ("paged_adamw_8bit", None, "paged_adamw_8bit"),
    ("all three (the recipe)", dict(keep_16bit=True, loss_chunk=128), "paged_adamw_8bit"),
]
RECIPE = dict(keep_16bit=True, loss_chunk=128)
LONG_CASES = [  # name, model ("llama" or "internlm2"), PatchedFinetune arguments
    ("recipe, Llama (anchor)", "llama", RECIPE),
    ("+ offload_embeddings", "llama", dict(RECIPE, offload_embeddings=True)),
    ("+ offload_checkpoints", "llama", dict(RECIPE, offload_checkpoints=True)),
    ("+ fused_loss=auto (CPU: chunked)", "llama", dict(RECIPE, fused_loss="auto")),
    ("recipe, InternLM2 eager (anchor)", "internlm2", RECIPE),
    ("+ sdpa_attention", "internlm2", dict(RECIPE, sdpa_attention=True)),
]


def internlm2_dir(path: Path) -> Path:
    import torch

    from bench.remote_models import remote_dir

    return remote_dir(path, "internlm2", hidden=HIDDEN, layers=LAYERS, heads=4, kv_heads=2,
                      vocab=VOCAB, dtype=torch.bfloat16)


def ratios(med: dict, anchor: str, keys) -> str:
    return "".join(f"{med[k] / med_anchor:>12.3f}" if (med_anchor := anchor[k]) else f"{'-':>12}"
                   for k in keys)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = dict(llama=model_dir(Path(tmp) / "llama"),
                     internlm2=internlm2_dir(Path(tmp) / "internlm2"))
        runs = {name: [] for name, _, _ in CASES + LONG_CASES}
        for _ in range(args.repeats):
            for name, patches, optimizer in CASES:
                runs[name].append(one_run(paths["llama"], patches, optimizer))
            for name, model, patches in LONG_CASES:
                runs[name].append(one_run(paths[model], patches, "paged_adamw_8bit"))
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for name, rs in runs.items()}
    anchor = med[CASES[0][0]]
    print(f"Llama vocab {VOCAB}, hidden {HIDDEN}, {LAYERS} layers, QLoRA r=32, {TOKENS} tokens, "
          f"bf16 autocast on the CPU; medians of {args.repeats} runs; ratios to the anchor")
    print(f"{'case':<34}{'weights':>12}{'step peak':>12}{'opt states':>12}{'step time':>12}"
          f"{'loss':>10}")
    for name, _, _ in CASES:
        m = med[name]
        print(f"{name:<34}{ratios(m, anchor, ('weights', 'peak', 'states', 'seconds'))}"
              f"{m['loss'] / anchor['loss']:>10.4f}")
    print(f"anchor: weights {anchor['weights'] / 2**20:.1f} MiB, step peak "
          f"{anchor['peak'] / 2**20:.1f} MiB, optimizer states {anchor['states'] / 2**20:.2f} MiB, "
          f"step {anchor['seconds']:.3f} s, loss {anchor['loss']:.4f}")
    print("\nlong-sequence patches on top of the recipe (ratios to the recipe of the same model; "
          "'to CPU/step': MiB copied out of the step's device memory)")
    print(f"{'case':<34}{'weights':>12}{'step peak':>12}{'step time':>12}{'to CPU/step':>12}"
          f"{'loss':>10}")
    for name, _, _ in LONG_CASES:
        if "anchor" in name:
            base = med[name]
        m = med[name]
        print(f"{name:<34}{ratios(m, base, ('weights', 'peak', 'seconds'))}"
              f"{m['offloaded'] / 2**20:>12.1f}{m['loss'] / base['loss']:>10.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
