"""Check the pack's patches that reach into InternLM's hub code on a modeling file, before its
version goes into doctor/data/remote_code.json (docs/provenance.md, "Adding a version"):

    python -m bench.remote_code_check SNAPSHOT/modeling_internlm2.py
    (SNAPSHOT: ~/.cache/huggingface/hub/models--internlm--<name>/snapshots/<commit>)

The file (with the `configuration_<family>.py` beside it, or --config) is loaded the way the hub's
code is (trust_remote_code, a local directory) as tiny random models of its architecture, and
checked for what the patches' tests check on the stand-ins, in this process only as if its
fingerprints were known:
- sdpa_attention: the loss and the LoRA gradients of XTuner's SupervisedFinetune equal the eager
  code's, packed (causal mask) and padded, in fp32 and under bf16 autocast, and no per-head score
  matrix is saved for backward;
- remote_code_generate: the chat hook's `generate` on that (patched, PEFT-wrapped) model runs with
  a KV cache and gives what it gives without one.
- XTuner's RoPE swap (dispatch_modules, patches.xtuner_rope_swap): the model builds as `xtuner
  train` builds it, and computes the logits the model's own code computes.
Each check runs on every rotary variant the file's config selects between. It prints the
fingerprints, each check's figures, and, when all pass, the entries to add; exit 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import re
import shutil
import sys
import tempfile
import types
from pathlib import Path

TOKENS = 96
HEADS = 4
FAMILIES = {"internlm": "InternLMAttention", "internlm2": "InternLM2Attention"}


def family_of(source: str) -> str:
    for family, cls in sorted(FAMILIES.items(), reverse=True):  # internlm2 before internlm
        if re.search(rf"^class {cls}\b", source, re.M):
            return family
    raise SystemExit("no InternLMAttention or InternLM2Attention class in this file")


def variants(family: str, config_source: str) -> list[tuple[str, dict]]:
    """(name, config fields): the file's defaults, and each rotary embedding its config selects.
    A dynamic-NTK variant gets max_position_embeddings below the tokens, so the scaling acts."""
    out = [("defaults", {})]
    if family == "internlm" and re.search(r"\brotary\b", config_source):
        out += [("rotary origin", dict(rotary={"base": 10000, "type": "origin"})),
                ("rotary dynamic, beyond max_position_embeddings",
                 dict(rotary={"base": 10000, "type": "dynamic", "scaling_factor": 2.0},
                      max_position_embeddings=TOKENS // 2))]
    if family == "internlm2" and "rope_scaling" in config_source:
        out += [("rope_scaling dynamic, beyond max_position_embeddings",
                 dict(rope_scaling={"type": "dynamic", "factor": 2.0},
                      max_position_embeddings=TOKENS // 2))]
    return out  # no rope_theta added: InternLM's configs have none (patches.xtuner_rope_swap)


def xtuner_rotary_without_triton() -> None:
    """XTuner's RoPE swap (dispatch.replace_rote) builds its own InternLMRotaryEmbedding, plain
    torch, from a module that imports XTuner's Triton kernels first; Triton needs CUDA. Where it
    is missing, an empty kernel package lets that module import, so the check runs the rotary
    class a GPU run gets (the kernels themselves serve flash-attn and Triton runs only)."""
    name = "xtuner.model.modules.dispatch.triton_kernels"
    if importlib.util.find_spec("triton") is not None or name in sys.modules:
        return
    stub = types.ModuleType(name)

    def unavailable(*args, **kwargs):
        raise RuntimeError("XTuner's Triton kernels are not available on this machine")

    stub.apply_rotary_emb = stub.rms_norm_forward = stub.layer_norm_forward = unavailable
    sys.modules[name] = stub


def accept_as_candidate(file: Path) -> dict:
    """In this process only: the file's fingerprints count as a known version (origin
    "candidate"), so the patches run on it. Returns {patch: {class: fingerprints}}."""
    import doctor.provenance as prov

    checked = prov.patch_checks([file])
    known = prov.known_code()
    data = copy.deepcopy(known)
    for patch, classes in checked.items():
        for cls, c in classes.items():
            data[patch][cls]["known"].append(
                dict(origin=f"candidate: {file}", fingerprints=c["fingerprints"]))
    prov.known_code = lambda path=prov.KNOWN_CODE: data
    return {p: {c: v["fingerprints"] for c, v in cl.items()} for p, cl in checked.items()}


def batch(vocab: int, seed=1):
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (1, TOKENS), generator=g)
    labels = ids.clone()
    labels[:, : TOKENS // 8] = -100
    return dict(input_ids=ids, labels=labels, attention_mask=torch.ones_like(ids))


def step(model, data, autocast=None):
    import torch

    model.zero_grad(set_to_none=True)
    ctx = (torch.autocast("cpu", dtype=autocast) if autocast
           else torch.autocast("cpu", enabled=False))
    with ctx:
        loss = model(dict(data), mode="loss")["loss"]
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
             if p.requires_grad and p.grad is not None}
    return loss.item(), grads


def worst_grad(a: dict, b: dict) -> float:
    if set(a) != set(b) or not a:
        return float("inf")
    return max(float((g - b[n]).norm() / (g.norm() + 1e-12)) for n, g in a.items())


def saved_shapes(model, data) -> list[tuple[int, ...]]:
    import torch

    model.llm.gradient_checkpointing_disable()
    shapes = []

    def pack(t):
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(dict(data), mode="loss")["loss"]
    return shapes


def check_sdpa(model_dir: Path, layers: int) -> list[tuple[str, bool, str]]:
    import torch

    from bench.remote_models import VOCAB_REMOTE, build_remote
    from patches import sdpa_attention

    plain = dict(keep_16bit=True, loss_chunk=None)
    patched = dict(plain, sdpa_attention=True)
    out = []
    model = build_remote(model_dir, patches=patched)
    n = sum(hasattr(m, "_pack_eager_forward") for m in model.modules()
            if type(m).__name__ in sdpa_attention.EAGER_CLASSES)
    out.append(("sdpa: every eager attention module patched", n == layers, f"{n}/{layers}"))
    for name, padded, autocast, rel_loss, rel_grad in (
            ("packed fp32", False, None, 1e-5, 1e-4), ("padded fp32", True, None, 1e-5, 1e-4),
            ("packed bf16 autocast", False, torch.bfloat16, 2e-3, 0.03)):
        data = batch(VOCAB_REMOTE)
        if padded:  # a padded tail: the mask is not purely causal
            data["attention_mask"][:, -TOKENS // 4:] = 0
            data["labels"][:, -TOKENS // 4:] = -100
        loss_a, grads_a = step(build_remote(model_dir, patches=plain), data, autocast)
        loss_b, grads_b = step(build_remote(model_dir, patches=patched), data, autocast)
        dl, dg = abs(loss_b - loss_a) / abs(loss_a), worst_grad(grads_a, grads_b)
        out.append((f"sdpa: loss and LoRA gradients, {name}", dl <= rel_loss and dg <= rel_grad,
                    f"loss {loss_a:.6f} vs {loss_b:.6f} (rel {dl:.1e}, limit {rel_loss:.0e}), "
                    f"worst LoRA grad rel {dg:.1e} (limit {rel_grad:.0e})"))
    data = batch(VOCAB_REMOTE)
    scores = (1, HEADS, TOKENS, TOKENS)
    eager = saved_shapes(build_remote(model_dir, patches=plain), data).count(scores)
    sdpa = saved_shapes(build_remote(model_dir, patches=patched), data).count(scores)
    out.append(("sdpa: no score matrix saved for backward", eager >= layers and sdpa == 0,
                f"{scores} saved {eager} times eager, {sdpa} times patched"))
    return out


def check_rope_swap(model_dir: Path) -> list[tuple[str, bool, str]]:
    """XTuner's SupervisedFinetune builds the model (dispatch_modules swaps rotary embeddings)
    and the model computes what its own code does, beyond max_position_embeddings too."""
    import torch
    from mmengine.config import ConfigDict
    from transformers import AutoModelForCausalLM
    from xtuner.model import SupervisedFinetune

    from bench.remote_models import VOCAB_REMOTE

    ids = batch(VOCAB_REMOTE)["input_ids"]
    own = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=True,
                                               torch_dtype=torch.float32).eval()
    built = SupervisedFinetune(llm=ConfigDict(
        type=AutoModelForCausalLM.from_pretrained, pretrained_model_name_or_path=str(model_dir),
        torch_dtype=torch.float32, trust_remote_code=True)).eval()
    with torch.no_grad():
        diff = float((built.llm(ids).logits - own(ids).logits).abs().max())
    rotary = sorted({f"{type(m).__module__.split('.')[0]}:{type(m).__name__}"
                     for m in built.llm.modules() if "Rotary" in type(m).__name__})
    return [("rope swap: as xtuner train builds it, the model's own logits", diff <= 1e-5,
             f"rotary {rotary}, max |logit diff| {diff:.1e}")]


def check_generate(model_dir: Path) -> list[tuple[str, bool, str]]:
    """The chat hook's call on the training model (PEFT-wrapped, sdpa_attention installed)."""
    import torch

    import patches
    from bench.remote_models import build_remote
    from patches import remote_code_generate

    model = build_remote(model_dir, patches=dict(keep_16bit=True, loss_chunk=None,
                                                 sdpa_attention=True))
    llm = model.llm.eval()
    ids = torch.tensor([[1, 5, 9, 13]])
    try:
        with torch.no_grad():
            cached = llm.generate(ids, max_new_tokens=8, do_sample=False, use_cache=True)
            uncached = llm.generate(ids, max_new_tokens=8, do_sample=False, use_cache=False)
    except Exception as exc:  # noqa: BLE001 - the check reports what the code does
        return [("generate: with a KV cache", False, f"{type(exc).__name__}: {exc}")]
    base = type(llm.get_base_model())
    in_force = ("remote_code_generate" in patches.applied
                and remote_code_generate.handled(base))
    return [("generate: remote_code_generate handles the class", in_force, base.__name__),
            ("generate: with a KV cache equals without", torch.equal(cached, uncached),
             f"{cached[0, 4:].tolist()} vs {uncached[0, 4:].tolist()}")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="the modeling_internlm.py / modeling_internlm2.py")
    parser.add_argument("--config", type=Path, help="its configuration_<family>.py "
                        "(default: the one beside it)")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 2
    source = args.file.read_text(encoding="utf-8")
    family = family_of(source)
    config = args.config or args.file.parent / f"configuration_{family}.py"
    if not config.is_file():
        print(f"{config}: no such file (give --config)", file=sys.stderr)
        return 2

    import torch
    import transformers

    transformers.logging.set_verbosity_error()  # the old checkpointing-format notice, per model
    print(f"{args.file} ({family}); torch {torch.__version__}, transformers "
          f"{transformers.__version__}")
    prints = accept_as_candidate(args.file)
    print(json.dumps(prints, indent=1))
    xtuner_rotary_without_triton()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "source"
        staged.mkdir()
        shutil.copy(args.file, staged / f"modeling_{family}.py")
        shutil.copy(config, staged / f"configuration_{family}.py")
        for i, (name, fields) in enumerate(variants(family, config.read_text())):
            # a new directory name per model: transformers caches remote modules by it
            model_dir = Path(tmp) / f"check_{family}_{i}"
            from bench.remote_models import remote_dir

            try:
                remote_dir(model_dir, family, source=staged, config=fields, heads=HEADS)
                got = (check_rope_swap(model_dir) + check_sdpa(model_dir, layers=2)
                       + check_generate(model_dir))
            except Exception as exc:  # noqa: BLE001 - a file that does not build fails here
                got = [("build", False, f"{type(exc).__name__}: {exc}")]
            for what, ok, detail in got:
                results.append(ok)
                print(f"[{'ok' if ok else 'FAIL'}] {name}: {what}: {detail}")
    if not all(results):
        print("NOT VERIFIED: do not add this version to doctor/data/remote_code.json")
        return 1
    print("VERIFIED. Entries for doctor/data/remote_code.json (state the origin precisely):")
    for patch, classes in prints.items():
        for cls, fp in classes.items():
            print(f"  {patch} / {cls}: " + json.dumps(
                dict(origin="<where this file comes from, and this check's run>",
                     fingerprints=fp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
