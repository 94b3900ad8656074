"""Read an XTuner (mmengine) training config into the estimator's Setup, without building it.

mmengine's `Config.fromfile(..., lazy_import=True)` turns the config's imports into LazyObjects,
so neither torch nor transformers is imported: types are read by name (`AdamW`,
`BitsAndBytesConfig`) and dtypes by attribute name (`torch.float16` -> "float16").
"""

from __future__ import annotations

import json
import re
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

from . import arch as arch_mod
from .estimate import OPTIMIZERS, DeepSpeed, Setup


class ConfigError(Exception):
    """A config the estimator cannot read; the message names the file (and line when known)."""


@dataclass
class Loaded:
    path: Path
    model_path: str
    setup: Setup
    patched: bool  # built through components.finetune.PatchedFinetune
    loss_note: str = ""  # which loss the run uses, when the config asks for fused_loss
    # the dtype attention's inputs have: the autocast dtype under AMP, DeepSpeed's training
    # dtype, else the model's (doctor/fit/attention.py: which SDPA kernel takes them)
    attn_dtype: str = "float16"


def _name(obj) -> str:
    """The name a LazyObject/LazyAttr/class/string stands for: AdamW, float16, ..."""
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj.rsplit(".", 1)[-1]
    for attr in ("name", "_imported", "__name__"):
        value = getattr(obj, attr, None)
        if isinstance(value, str):
            return value.rsplit(".", 1)[-1]
    return str(obj).rsplit(".", 1)[-1]


def _line_of(path: Path, *needles: str) -> str:
    """`path:line` of the first line mentioning a needle (the file alone if none does)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return str(path)
    for needle in needles:
        pattern = re.compile(rf"(^|\W){re.escape(needle)}(\W|$)")
        for i, line in enumerate(lines, 1):
            if pattern.search(line) and not line.lstrip().startswith("#"):
                return f"{path}:{i}"
    return str(path)


def _load(path: Path):
    from mmengine.config import Config

    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        return Config.fromfile(str(path), lazy_import=True)._to_lazy_dict()
    except SyntaxError as exc:
        # mmengine parses the source without a file name ("<unknown>")
        name = exc.filename if exc.filename and not exc.filename.startswith("<") else path
        where = f"{name}:{exc.lineno}" if exc.lineno else str(path)
        raise ConfigError(f"{where}: syntax error: {exc.msg}") from None
    except Exception as exc:  # mmengine executes the config: anything can go wrong in it
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if f.filename.endswith(".py") and "site-packages" not in f.filename]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(path)
        raise ConfigError(f"{where}: cannot read config {path}: "
                          f"{type(exc).__name__}: {exc}") from None


def _dtype_bytes(value, default: int) -> int:
    name = _name(value)
    if not name or name == "auto":
        return default
    sizes = {"float16": 2, "half": 2, "bfloat16": 2, "float32": 4, "float": 4}
    if name not in sizes:
        raise ValueError(f"torch_dtype {name!r}")
    return sizes[name]


def optimizer_name(cfg_opt: dict) -> str:
    cls = _name(cfg_opt.get("type")).lower().replace("_", "")
    if cls == "sgd":
        return "sgd_momentum" if cfg_opt.get("momentum") else "sgd"
    names = {"adamw": "adamw", "adam": "adam", "adamw8bit": "adamw8bit",
             "pagedadamw8bit": "paged_adamw8bit"}
    if cls not in names:
        raise ValueError(f"optimizer {_name(cfg_opt.get('type'))!r} is not modelled "
                         f"(known: {', '.join(OPTIMIZERS)})")
    return names[cls]


# The pack's own JSONs (configs/deepspeed/, sized for 8 GB cards) by their short names.
PACK_DEEPSPEED = Path(__file__).resolve().parents[2] / "configs" / "deepspeed"
PACK_DEEPSPEED_NAMES = ("zero2", "zero2_offload", "zero3")


def deepspeed_config(spec: str) -> DeepSpeed:
    """`--deepspeed` as xtuner train takes it (a JSON path, or a name of XTuner's bundled ones),
    or zero2 | zero2_offload | zero3: the pack's configs/deepspeed/<name>_8gb.json."""
    ds = deepspeed_json(spec)
    zero = ds.get("zero_optimization", {})
    offload = zero.get("offload_optimizer") or {}
    return DeepSpeed(
        stage=int(zero.get("stage", 0)),
        offload_optimizer=offload.get("device", "none") not in ("none", None),
        reduce_bucket_size=float(zero.get("reduce_bucket_size", 5e8)),
        overlap_comm=bool(zero.get("overlap_comm", False)),
        contiguous_gradients=bool(zero.get("contiguous_gradients", True)),
        persistence_threshold=float(zero.get("stage3_param_persistence_threshold", 1e5)),
        prefetch_bucket_size=float(zero.get("stage3_prefetch_bucket_size", 5e7)),
    )


def deepspeed_dtype(ds: dict, default: str) -> str:
    """The dtype DeepSpeed's engine trains in, "auto" resolved as XTuner resolves it on a CUDA GPU
    (xtuner/tools/utils.py auto_dtype_of_deepspeed_config): bf16 wins when both are on, and
    "auto" bf16 is on wherever torch.cuda.is_bf16_supported() says so, which it does on a Turing
    card too, through emulation."""
    def on(part):
        return isinstance(ds.get(part), dict) and ds[part].get("enabled") in (True, "auto")

    return "bfloat16" if on("bf16") else "float16" if on("fp16") else default


def deepspeed_json(spec: str) -> dict:
    """The JSON of `--deepspeed spec` (see deepspeed_config)."""
    path = Path(spec)
    if spec in PACK_DEEPSPEED_NAMES:
        path = PACK_DEEPSPEED / f"{spec}_8gb.json"
    if not path.is_file():
        from importlib.util import find_spec

        found = find_spec("xtuner")
        base = (Path(found.origin).parent / "configs" / "deepspeed"
                if found and found.origin else None)
        name = spec if spec.endswith(".json") else spec + ".json"
        if base is None or not (base / name).is_file():
            raise ConfigError(f"--deepspeed {spec}: no such JSON file or XTuner deepspeed config")
        path = base / name
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read DeepSpeed config: {exc}") from None


def read(path: str | Path, deepspeed: str | None = None, gpus: int = 1) -> Loaded:
    path = Path(path)
    if not isinstance(gpus, int) or gpus < 1:
        raise ConfigError(f"--gpus {gpus}: the number of GPUs is at least 1")
    cfg = _load(path)
    model = cfg.get("model")
    if not isinstance(model, dict) or "llm" not in model:
        raise ConfigError(f"{path}: not an XTuner training config (no `model` dict with an `llm`)")
    llm = model["llm"]
    if not isinstance(llm, dict) or not llm.get("pretrained_model_name_or_path"):
        raise ConfigError(f"{_line_of(path, 'llm')}: `model.llm` has no "
                          "pretrained_model_name_or_path")
    model_path = str(llm["pretrained_model_name_or_path"])
    try:
        arch = _arch(model_path, path)
    except arch_mod.ArchError as exc:
        raise ConfigError(f"{_line_of(path, model_path, 'pretrained_model_name_or_path')}: "
                          f"{exc}") from None

    lora = model.get("lora")
    if not isinstance(lora, dict):
        raise ConfigError(f"{_line_of(path, 'lora')}: no `model.lora`: full fine-tuning is not "
                          "modelled (the pack trains LoRA adapters)")
    targets = lora.get("target_modules")
    if isinstance(targets, str):
        targets = (targets,)
    elif targets is not None:
        targets = tuple(str(t) for t in targets)

    quant = llm.get("quantization_config")
    quant_type, double_quant = None, False
    if isinstance(quant, dict):
        if quant.get("load_in_8bit"):
            raise ConfigError(f"{_line_of(path, 'load_in_8bit')}: 8-bit (LLM.int8) base models "
                              "are not modelled; use 4-bit (load_in_4bit=True)")
        if quant.get("load_in_4bit"):
            quant_type = str(quant.get("bnb_4bit_quant_type", "fp4"))
            double_quant = bool(quant.get("bnb_4bit_use_double_quant", False))

    optim_wrapper = cfg.get("optim_wrapper") or {}
    loader = cfg.get("train_dataloader") or {}
    dataset = loader.get("dataset") if isinstance(loader.get("dataset"), dict) else {}
    seq = dataset.get("max_length", cfg.get("max_length"))
    if not isinstance(seq, int) or seq <= 0:
        raise ConfigError(f"{_line_of(path, 'max_length')}: no integer max_length in "
                          "train_dataloader.dataset or at the top level")
    patched = _name(model.get("type")) == "PatchedFinetune"
    pairs = preference_pairs(cfg, model)
    try:
        weight_bytes = _dtype_bytes(llm.get("torch_dtype"), default=4)
        optimizer = optimizer_name(optim_wrapper.get("optimizer") or {})
    except ValueError as exc:
        raise ConfigError(f"{_line_of(path, 'optimizer', 'torch_dtype')}: {exc} "
                          "is not modelled") from None
    setup = Setup(
        arch=arch,
        quant=quant_type,
        double_quant=double_quant,
        weight_bytes=weight_bytes,
        amp=_name(optim_wrapper.get("type")) == "AmpOptimWrapper",
        upcast=not (patched and model.get("keep_16bit", False)),
        norms_fp32=bool(patched and model.get("norms_fp32", False)),
        lora_r=int(lora.get("r", 8)),
        lora_targets=targets,
        lora_dropout=float(lora.get("lora_dropout", 0.0)),
        optimizer=optimizer,
        batch=int(loader.get("batch_size", 1)) * pairs,
        seq=seq,
        grad_ckpt=bool(model.get("use_activation_checkpointing", True)),
        loss_chunk=(model.get("loss_chunk") or None) if patched and pairs == 1 else None,
        deepspeed=deepspeed_config(deepspeed) if deepspeed else None,
        gpus=gpus,
        expandable_segments=expandable_segments(cfg.get("expandable_segments"), patched),
        sdpa_attention=bool(patched and model.get("sdpa_attention", False)),
        offload_embeddings=bool(patched and model.get("offload_embeddings", False)),
        offload_checkpoints=bool(patched and model.get("offload_checkpoints", False)),
        fused_loss=(str(model["fused_loss"]) if patched and model.get("fused_loss") else None),
        preference=pairs == 2,
    )
    knobs = long_sequence_knobs(model if patched else {}, setup, path)
    model_dtype = _name(llm.get("torch_dtype")) or "float32"
    if deepspeed:
        attn_dtype = deepspeed_dtype(deepspeed_json(deepspeed), model_dtype)
    elif setup.amp:  # mmengine's AmpOptimWrapper: autocast's dtype, fp16 unless it says
        attn_dtype = _name(optim_wrapper.get("dtype")) or "float16"
    else:
        attn_dtype = model_dtype
    return Loaded(path, model_path, replace(setup, **knobs.pop("setup")), patched, **knobs,
                  attn_dtype={"half": "float16", "float": "float32"}.get(attn_dtype, attn_dtype))


FUSED_LIBRARIES = (("liger", "liger_kernel", "liger-kernel"),
                   ("cce", "cut_cross_entropy", "cut-cross-entropy"))


def fused_kernel(requested, head_has_lora: bool, find_spec=None) -> tuple[str | None, str]:
    """(kernel, what doctor fit says) for PatchedFinetune's fused_loss, as patches.fused_loss
    chooses on a CUDA GPU: the library must be installed in this environment (found by
    importlib's finder, nothing imported) and the head free of LoRA."""
    if requested in (None, "chunked"):
        return None, ""
    if find_spec is None:
        from importlib.util import find_spec
    if head_has_lora:
        return None, (f"chunked (fused_loss={requested}: a LoRA adapter on the LM head, which "
                      "the fused kernels cannot take)")
    names = [lib for lib in FUSED_LIBRARIES if requested in ("auto", lib[0])]
    for kind, module, dist in names:
        if find_spec(module) is not None:
            return kind, f"{dist}'s fused linear cross-entropy (on a CUDA GPU)"
    return None, (f"chunked (fused_loss={requested}: {' / '.join(n[2] for n in names)} not "
                  "installed here; `make env` installs liger-kernel beside a CUDA torch)")


def long_sequence_knobs(model: dict, setup: Setup, path: Path) -> dict:
    """The long-sequence memory patches a PatchedFinetune config turns on (cfg.model kwargs)."""
    from .estimate import lora_modules

    offload_embeddings = bool(model.get("offload_embeddings", False))
    if offload_embeddings and setup.arch.tied:
        raise ConfigError(f"{_line_of(path, 'offload_embeddings')}: offload_embeddings=True, but "
                          f"{setup.arch.name} ties its input embedding to the LM head "
                          "(patches.offload_embeddings refuses it)")
    requested = model.get("fused_loss")
    head_lora = any(m.role == "head" for m in lora_modules(setup))
    kernel, note = fused_kernel(requested, head_lora)
    loss_chunk = setup.loss_chunk or (128 if requested else None)  # PatchedFinetune's default
    return dict(setup=dict(sdpa_attention=bool(model.get("sdpa_attention", False)),
                           offload_embeddings=offload_embeddings,
                           offload_checkpoints=bool(model.get("offload_checkpoints", False)),
                           fused_loss=kernel, loss_chunk=loss_chunk),
                loss_note=note)


PREFERENCE_TRAINERS = ("DPO", "ORPO", "TinyDPO")


def preference_pairs(cfg, model) -> int:
    """Sequences per example: 2 for XTuner's DPO/ORPO (chosen and rejected, each up to max_length
    tokens, padded to the longer), else 1. DPO/ORPO run the LM on both and read the full logits
    (no chunked loss); the reference pass (adapters disabled, no grad) holds its logits and
    log-softmax while the policy's are kept for backward, which the per-logit bytes of the loss
    already cover. Read from the recipe's `preference` knob or the model's type."""
    if cfg.get("preference") in ("dpo", "orpo"):
        return 2
    types = (_name(model.get("type")), _name(model.get("base")))
    return 2 if any(t in PREFERENCE_TRAINERS for t in types) else 1


ALLOC_CONF_VARS = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")


def expandable_segments(stated, patched: bool, environ=None) -> bool:
    """Whether the run's caching allocator uses expandable segments: as the config states it
    (`expandable_segments = True/False` at its top level), else as PYTORCH_CUDA_ALLOC_CONF (or
    torch's newer PYTORCH_ALLOC_CONF) says, else on for the pack's configs, whose start-up patches
    set expandable_segments:True before CUDA initializes when the user set neither variable."""
    import os

    if isinstance(stated, bool):
        return stated
    env = os.environ if environ is None else environ
    for var in ALLOC_CONF_VARS:
        if var in env:
            opts = dict(kv.split(":", 1) for kv in env[var].split(",") if ":" in kv)
            return opts.get("expandable_segments", "").strip().lower() == "true"
    return patched


def _arch(model_path: str, config_path: Path):
    # A relative directory is tried from the working directory, then from the config's folder.
    for base in (None, config_path.parent):
        candidate = Path(model_path) if base is None else base / model_path
        if candidate.is_dir():
            return arch_mod.resolve(str(candidate))
    return arch_mod.resolve(model_path)
