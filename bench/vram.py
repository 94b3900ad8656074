"""bench/vram.py CONFIG... [--device cuda|cpu|fake] [--tiny] [--steps N] [--cap-gib 8] [--json FILE]
                         [--capability X.Y]

Measures the peak memory of a few real training steps of each config and prints it next to
`python -m doctor fit`'s estimate. Nothing is downloaded: the model is the architecture the
estimator uses (doctor/data/architectures.json, or the config's local config.json) with random
weights, quantized with bitsandbytes as transformers' loader would (every linear layer but the
output embedding, with the config's 4-bit settings), then built into the config's own model type
(XTuner's SupervisedFinetune, with the pack's memory patches when the config asks for them: LoRA,
gradient checkpointing, chunked loss), trained with the config's optimizer wrapper (AMP, the
optimizer type) through XTuner's train_step on full-length random sequences of the config's
max_length and batch size. The optimizer steps at every step (accumulative_counts=1), so its
states exist from the first.

On CUDA the caching allocator is capped at --cap-gib (8) minus the CUDA context NVML sees before
training (torch.cuda.set_per_process_memory_fraction), as on an 8 GB card; the peak is
torch.cuda.max_memory_allocated / max_memory_reserved over the steps, plus the optimizer states
bitsandbytes pages into unified memory (not seen by the allocator). With --device cpu the peak is
tracked through torch's dispatcher (bench/memtrack.py); --tiny scales the architecture down
(hidden 256, 2 layers, same layout) so that it runs on a CPU in seconds.
InternLM-7B is built as Llama with q/k/v/o biases and eager attention (its remote code is Llama's
renamed; with sdpa_attention, transformers' SDPA attention stands in for what
patches.sdpa_attention makes of it); InternLM2 with the remote code XTuner ships.

--device fake runs the same step at full size on a fake GPU (bench/fakestep.py, no GPU needed):
device placement checked as CUDA would, memory traced per device, the traced peak beside the
estimate's allocated part (two steps by default). --capability 7.5 makes it a Turing card
(the SDPA kernels CUDA runs there; default 8.6, Ampere).

--patches measures each config once as configured and once with each long-sequence memory patch
turned back (sdpa_attention, offload_embeddings, offload_checkpoints off; fused_loss="chunked"),
so peak memory and tokens/s of each patch come from the same run (`make vram-patches` on a GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# `python bench/X.py` puts bench/ first on sys.path; these scripts import the pack's packages and
# bench.* from the repository root, so the root goes first instead.
sys.path[:] = [str(REPO)] + [p for p in sys.path
                             if Path(p or ".").resolve() not in (REPO, REPO / "bench")]

GiB = 1024**3


def enable_compat_patches() -> None:
    """The pack's startup patches, where `make env`'s .pth file did not register them (a GPU
    machine that got the stack as wheels)."""
    if "patches._startup" not in sys.modules:
        import patches

        patches.enable_startup()


@dataclass
class Result:
    config: str
    model: str
    device: str
    tokens: int  # per step
    estimate_gib: float  # doctor fit's total, context included
    estimate_allocated_gib: float  # the same without CUDA context and allocator reserve
    peak_allocated_gib: float | None = None
    peak_reserved_gib: float | None = None
    paged_gib: float | None = None
    tokens_per_s: float | None = None
    error: str | None = None
    variant: str = "as configured"


# --patches: each long-sequence memory patch turned back, one run each (PatchedFinetune kwargs)
VARIANTS = {
    "as configured": {},
    "-sdpa_attention": dict(sdpa_attention=False),
    "-offload_embeddings": dict(offload_embeddings=False),
    "-offload_checkpoints": dict(offload_checkpoints=False),
    "fused_loss=chunked": dict(fused_loss="chunked"),
}


# ---- the model --------------------------------------------------------------------------------
def internlm2_classes():
    """(InternLM2Config, InternLM2ForCausalLM) from the copy of InternLM2's remote code that XTuner
    ships (xtuner/_lite/modelings/internlm2), loaded on its own: xtuner._lite.modelings also
    imports an InternLM3 file that fails on transformers 4.57."""
    import importlib.util
    import sys

    name = "xtuner_internlm2_remote_code"
    if name not in sys.modules:
        import xtuner

        folder = Path(xtuner.__file__).parent / "_lite" / "modelings" / "internlm2"
        spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    module = sys.modules[name]
    return module.InternLM2Config, module.InternLM2ForCausalLM




def config_fields(arch, tiny: bool) -> dict:
    """config.json fields of `arch` (a doctor.fit Arch), scaled down with --tiny."""
    cfg = dict(model_type=arch.model_type, hidden_size=arch.hidden,
               intermediate_size=arch.intermediate, num_hidden_layers=arch.layers,
               num_attention_heads=arch.heads, num_key_value_heads=arch.kv_heads,
               head_dim=arch.head_dim, vocab_size=arch.vocab, tie_word_embeddings=arch.tied)
    if arch.experts:
        cfg.update(num_local_experts=arch.experts, num_experts_per_tok=arch.experts_per_token)
    if arch.model_type == "internlm":
        cfg["bias"] = arch.qkv_bias
    if tiny:
        mha = arch.kv_heads == arch.heads
        cfg.update(hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                   vocab_size=min(arch.vocab, 8192), num_attention_heads=4,
                   num_key_value_heads=4 if mha else 2, head_dim=64)
        if arch.experts:
            cfg["num_local_experts"] = 4
    return cfg


def random_model(cfg: dict, dtype, device, sdpa: bool = False):
    """An HF causal LM of `cfg`'s layout with random weights, built on `device`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(cfg)
    kind = cfg.pop("model_type")
    with torch.device(device):
        if kind == "internlm2":
            from transformers import AutoConfig as _AutoConfig

            config_cls, model_cls = internlm2_classes()
            _AutoConfig.register("internlm2", config_cls, exist_ok=True)  # XTuner reads it back
            cfg.pop("head_dim", None)
            return model_cls(config_cls(**cfg, attn_implementation="eager")).to(dtype)
        attn = "sdpa"
        if kind == "internlm":  # InternLM-7B's remote code: Llama renamed, biases, eager attention
            cfg["attention_bias"] = cfg.pop("bias")
            kind, attn = "llama", "sdpa" if sdpa else "eager"
        if kind == "qwen":
            raise ValueError("Qwen (v1) remote code is not available offline")
        config = AutoConfig.for_model(kind, **cfg)
        return AutoModelForCausalLM.from_config(config, torch_dtype=dtype,
                                                attn_implementation=attn)


def quantize(model, quant_cfg: dict, compute_dtype, device):
    """Swap every nn.Linear but the output embedding for a bitsandbytes Linear4bit holding the
    same (random) weights, as transformers' 4-bit loader does."""
    import bitsandbytes as bnb
    import torch
    from transformers.integrations.bitsandbytes import get_keys_to_not_convert

    keep = set(get_keys_to_not_convert(model))
    quant_type = quant_cfg.get("bnb_4bit_quant_type", "fp4")
    double = bool(quant_cfg.get("bnb_4bit_use_double_quant", False))
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if type(child) is not torch.nn.Linear or full in keep or child_name in keep:
                continue
            q = bnb.nn.Linear4bit(child.in_features, child.out_features,
                                  bias=child.bias is not None, compute_dtype=compute_dtype,
                                  compress_statistics=double, quant_type=quant_type,
                                  device="meta")
            weight = bnb.nn.Params4bit(child.weight.data.to(torch.float16), requires_grad=False,
                                       compress_statistics=double, quant_type=quant_type,
                                       module=q)
            # .to() quantizes on a real device; the fake GPU (meta) is quantized explicitly
            q.weight = (weight._quantize(torch.device(device))
                        if torch.device(device).type == "meta" else weight.to(device))
            if child.bias is not None:
                q.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            setattr(module, child_name, q)
            del child
    model.is_loaded_in_4bit = True
    model.quantization_method = "bitsandbytes"
    return model


def _prebuilt(llm):
    def build(**_ignored):
        return llm

    return build


# ---- one config ---------------------------------------------------------------------------------


def dtype_of(value, default):
    import torch

    name = str(value).rsplit(".", 1)[-1] if value is not None else ""
    return getattr(torch, name, None) if name in ("float16", "bfloat16", "float32") else default


def paged_bytes() -> int:
    try:
        from bitsandbytes.functional import GlobalPageManager
    except ImportError:
        return 0
    return sum(t.numel() * t.element_size() for t in GlobalPageManager.get_instance().paged_tensors)


@dataclass
class Plan:
    """What a config's step is, read from the config (no torch model yet)."""

    path: Path
    setup: object  # doctor.fit.estimate.Setup of the step as it runs (tiny or full size)
    estimate: object  # doctor.fit.estimate.Estimate of it
    fields: dict  # config.json fields of the model built
    cfg: object  # the mmengine Config
    model_cfg: object  # cfg.model with the variant's overrides
    dtype: object
    amp: bool  # the config trains under mmengine's AmpOptimWrapper
    variant: str
    error: str | None = None

    @property
    def allocated(self) -> int:
        """The estimate's allocated part: total without CUDA context and allocator cache."""
        parts = self.estimate.parts
        return self.estimate.total - parts["cuda_context"] - parts["allocator_reserve"]


def plan(path: Path, device: str, tiny: bool, variant: str = "as configured",
         seq: int | None = None) -> Plan:
    """The config's step: its estimate (at the size built) and the model dict to build; `seq`
    replaces the config's max_length (a shorter step, for tests)."""
    import torch
    from mmengine.config import Config, ConfigDict

    from doctor.fit.arch import from_config
    from doctor.fit.config import read
    from doctor.fit.estimate import estimate

    setup = read(path).setup
    overrides = VARIANTS[variant]
    if overrides:  # the estimate of the same variant
        est_fields = {k: v for k, v in overrides.items() if k != "fused_loss"}
        if "fused_loss" in overrides:
            est_fields["fused_loss"] = None
        setup = replace(setup, **est_fields)
    if seq is not None:
        setup = replace(setup, seq=seq)
    fields = config_fields(setup.arch, tiny)
    if tiny:
        setup = replace(setup, arch=from_config(fields, name=setup.arch.name + " (tiny)",
                                                attn=setup.arch.attn))
    if device == "cpu":  # the CPU build: float dropout masks, no CUDA context
        setup = replace(setup, device="cpu", context_gib=0.0)
    cfg = Config.fromfile(str(path), lazy_import=True)  # imports only what the model needs
    model_cfg = ConfigDict(cfg.model)
    error = None
    if overrides and "PatchedFinetune" not in str(model_cfg.get("type")):
        error = "not built through components.finetune.PatchedFinetune: no patch to turn back"
    model_cfg.update(overrides)
    dtype = dtype_of(model_cfg.llm.get("torch_dtype"), torch.float32)
    amp = cfg.optim_wrapper.get("type") is not None and "Amp" in str(cfg.optim_wrapper.type)
    if device == "cpu" and dtype == torch.float16:
        dtype = torch.bfloat16  # the CPU has no fp16 matmuls; same sizes
    return Plan(path, setup, estimate(setup), fields, cfg, model_cfg, dtype, amp, variant, error)


@dataclass
class Built:
    model: object
    optim_wrapper: object
    batch: dict
    autocast: object  # the context each step runs in (CPU autocast where AMP cannot run)


def build(p: Plan, device: str, cpu_amp: bool = True) -> Built:
    """The config's model, optimizer wrapper and a full-length batch, built as `xtuner train`
    builds them: the config's model dict through XTuner's builder (PatchedFinetune's patches,
    LoRA, checkpointing), the weights random (no download), the model on `device`. `cpu_amp`:
    on the CPU, mmengine's AmpOptimWrapper (which refuses it) becomes an OptimWrapper under
    bf16 CPU autocast."""
    import torch
    from mmengine.config import ConfigDict
    from mmengine.optim import OptimWrapper, build_optim_wrapper

    torch.manual_seed(0)
    model_cfg = ConfigDict(p.model_cfg)
    llm_cfg = model_cfg.llm
    llm = random_model(p.fields, p.dtype, device, sdpa=p.setup.sdpa_attention)
    quant = llm_cfg.get("quantization_config")
    if quant and quant.get("load_in_4bit"):
        llm = quantize(llm, quant, p.dtype, device)
    llm.config.use_cache = False
    # XTuner 0.2.0 cannot take a built model as `llm` (build_llm_from_cfg reads an
    # unassigned variable), and reads the model's config.json first: hand it a builder
    # that returns ours, with its config.json in a temporary directory.
    config_dir = Path(tempfile.mkdtemp(prefix="vram-config-"))
    llm.config.save_pretrained(config_dir)
    model_cfg.llm = ConfigDict(type=_prebuilt(llm), pretrained_model_name_or_path=str(config_dir))
    # the smoke configs' model types make their tiny model on disk first; the bench brings its
    # own llm: the XTuner classes they wrap
    tiny_types = {"TinyFinetune": ("xtuner.model", "SupervisedFinetune"),
                  "TinyDPO": ("xtuner.model.dpo", "DPO")}
    for key in ("base", "type"):
        name = getattr(model_cfg.get(key), "__name__", "")
        if name in tiny_types:
            import importlib

            module, cls = tiny_types[name]
            model_cfg[key] = getattr(importlib.import_module(module), cls)
    from xtuner.registry import BUILDER

    model = BUILDER.build(model_cfg).to(device)  # mmengine's runner: model.to(get_device())
    model.train()
    optim_cfg = ConfigDict(p.cfg.optim_wrapper)
    optim_cfg.accumulative_counts = 1  # the optimizer steps every step: its states exist
    autocast = contextlib.nullcontext()
    if device == "cpu" and p.amp and cpu_amp:  # mmengine's AmpOptimWrapper refuses the CPU
        optim_cfg = ConfigDict(type=OptimWrapper, optimizer=optim_cfg.optimizer,
                               clip_grad=optim_cfg.get("clip_grad"))
        autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, p.fields["vocab_size"], (p.setup.batch, p.setup.seq), generator=gen)
    labels = ids.clone()
    labels[:, : p.setup.seq // 8] = -100
    # as XTuner's default_collate_fn gives a packed batch (on the host; the model's data
    # preprocessor moves it)
    batch = dict(data=dict(input_ids=ids, labels=labels, attention_mask=torch.ones_like(ids)),
                 data_samples=None)
    return Built(model, optim_wrapper, batch, autocast)


def measure(path: Path, device: str, tiny: bool, steps: int, cap_gib: float,
            variant: str = "as configured") -> Result:
    import torch

    from bench.memtrack import LiveBytes

    p = plan(path, device, tiny, variant)
    result = Result(str(path), p.setup.arch.name, device, p.setup.tokens,
                    p.estimate.total / GiB, p.allocated / GiB, variant=variant, error=p.error)
    if p.error:
        return result
    tracker = LiveBytes() if device == "cpu" else contextlib.nullcontext()
    try:
        with tracker:
            b = build(p, device)
            if device == "cuda":
                torch.cuda.synchronize()
                free, total = torch.cuda.mem_get_info()
                context = (total - free) - torch.cuda.memory_reserved()
                gc.collect()
                torch.cuda.empty_cache()
                torch.cuda.set_per_process_memory_fraction(
                    min(1.0, max(cap_gib * GiB - context, 0) / total))
                torch.cuda.reset_peak_memory_stats()
            else:
                tracker.reset_peak()
            started = None
            for step in range(steps):
                if step == 1:  # the first step allocates the optimizer states: not timed
                    if device == "cuda":
                        torch.cuda.synchronize()
                    started = time.perf_counter()
                with b.autocast:
                    b.model.train_step(b.batch, b.optim_wrapper)
            if device == "cuda":
                torch.cuda.synchronize()
                result.peak_allocated_gib = torch.cuda.max_memory_allocated() / GiB
                result.peak_reserved_gib = torch.cuda.max_memory_reserved() / GiB
                result.paged_gib = paged_bytes() / GiB
            else:
                result.peak_allocated_gib = tracker.peak / GiB
            if started is not None:
                result.tokens_per_s = p.setup.tokens * (steps - 1) / (time.perf_counter() - started)
    except torch.OutOfMemoryError as exc:
        result.error = f"out of memory under the {cap_gib:g} GiB cap: {str(exc).splitlines()[0]}"
    finally:
        locals().pop("b", None)
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.set_per_process_memory_fraction(1.0)
    return result


# ---- report -------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    head = (f"{'config':<44}{'model':<26}{'tokens':>7}{'estimate':>10}{'est alloc':>10}"
            f"{'peak alloc':>11}{'reserved':>10}{'paged':>7}{'meas/est':>9}{'tok/s':>9}")
    lines = [head, "-" * len(head)]

    def num(v, width, digits=3):
        return f"{v:>{width}.{digits}f}" if v is not None else f"{'-':>{width}}"

    for r in results:
        name = Path(r.config).name[:43]
        if r.variant != "as configured":
            name = f"  {r.variant}"[:43]
        if r.error:
            lines.append(f"{name:<44}{r.model[:25]:<26}{r.tokens:>7}{r.estimate_gib:>10.3f}  "
                         f"{r.error}")
            continue
        measured = (r.peak_allocated_gib or 0) + (r.paged_gib or 0)
        ratio = measured / r.estimate_allocated_gib if r.estimate_allocated_gib else None
        lines.append(f"{name:<44}{r.model[:25]:<26}{r.tokens:>7}{r.estimate_gib:>10.3f}"
                     f"{r.estimate_allocated_gib:>10.3f}{num(r.peak_allocated_gib, 11)}"
                     f"{num(r.peak_reserved_gib, 10)}{num(r.paged_gib, 7)}{num(ratio, 9, 2)}"
                     f"{num(r.tokens_per_s, 9, 0)}")
    lines.append("GiB; estimate = doctor fit's total (CUDA context and allocator reserve "
                 "included); est alloc = without them; meas/est = (peak alloc + paged) / est alloc")
    return "\n".join(lines)


def fake_table(rows: list[dict]) -> str:
    """The fake-GPU rows (bench/fakestep.py trace()): traced peak beside the estimate."""
    head = (f"{'config':<44}{'model':<26}{'tokens':>7}{'est alloc':>10}{'traced':>9}"
            f"{'traced/est':>11}{'host':>7}{'s':>6}   at the peak")
    lines = [head, "-" * len(head)]
    for r in rows:
        name = Path(r["config"]).name[:43]
        if r.get("variant", "as configured") != "as configured":
            name = f"  {r['variant']}"[:43]
        if r.get("error"):
            lines.append(f"{name:<44}{r.get('model', '')[:25]:<26}  {r['error']}")
            continue
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in list(r["at_peak"].items())[:4])
        lines.append(f"{name:<44}{r['model'][:25]:<26}{r['tokens']:>7}{r['estimate_gb']:>10.3f}"
                     f"{r['peak_gb']:>9.3f}{r['ratio']:>11.3f}{r['host_peak_gb']:>7.2f}"
                     f"{r['seconds']:>6.0f}   {kinds}")
    lines.append("GiB; est alloc = doctor fit's estimate without CUDA context and allocator cache; "
                 "traced = peak of live device memory on the fake GPU (512-byte blocks); host = "
                 "peak of live host memory of the step")
    return "\n".join(lines)


def fake(args) -> int:
    """--device fake: each config's step on the fake GPU (bench/fakestep.py)."""
    from bench.fakestep import trace

    rows = []
    variants = list(VARIANTS) if args.patches else ["as configured"]
    for path in args.configs:
        for variant in variants:
            try:
                rows.append(trace(path, tiny=args.tiny, steps=args.steps, variant=variant,
                                  capability=args.capability))
            except Exception as exc:  # a step that fails where a GPU would: the finding
                rows.append(dict(config=str(path), variant=variant,
                                 error=f"{type(exc).__name__}: {exc}"))
            print(f"traced {path} ({variant})", file=sys.stderr, flush=True)
    print(fake_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if any(r.get("error") for r in rows) else 0


def capability(text: str) -> tuple[int, int]:
    from doctor.sdpa import parse_capability

    try:
        return parse_capability(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument("--device", choices=["cuda", "cpu", "fake"], default="cuda",
                        help="fake: the step at full size on a fake GPU (no GPU needed)")
    parser.add_argument("--tiny", action="store_true", help="scaled-down architecture")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--cap-gib", type=float, default=8.0)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--patches", action="store_true",
                        help="also each long-sequence patch turned back, one run each")
    parser.add_argument("--capability", type=capability, metavar="X.Y",
                        help="--device fake: the compute capability of the fake GPU (default "
                        "8.6; 7.5 is Turing, RTX 20xx)")
    args = parser.parse_args(argv)
    if args.capability and args.device != "fake":
        parser.error("--capability is for --device fake (a real GPU has its own)")
    enable_compat_patches()
    if args.device == "fake":
        if "--steps" not in (argv if argv is not None else sys.argv):
            args.steps = 2  # the second step has the optimizer states: its peak is the run's
        return fake(args)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("bench/vram.py: no CUDA device; use --device cpu --tiny", file=sys.stderr)
            return 2
    results = []
    variants = list(VARIANTS) if args.patches else ["as configured"]
    for path in args.configs:
        for variant in variants:
            results.append(measure(path, args.device, args.tiny, args.steps, args.cap_gib,
                                   variant))
            print(f"measured {path} ({variant})", file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
