"""Peak GPU memory of one XTuner LoRA/QLoRA training step, from shapes and settings alone.

Every term is a byte count of tensors that exist at the peak; docs/memory.md derives each one.
The static terms (weights, quantization constants, LoRA, gradients, optimizer states) are exact
counts (tests/doctor/test_fit_exact.py checks them against real models). The per-token activation
terms follow what transformers 4.57 + PEFT 0.21 + bitsandbytes 0.50 save for backward
(tests/doctor/test_fit_activations.py checks them against the tensors autograd saves on the CPU).
The constants below (CUDA context, uncounted share, allocator cache) are fitted to published
measurements (doctor/data/calibration.json, tests/doctor/test_fit_calibration.py).

Phases. With gradient checkpointing, each decoder layer keeps only its input during the forward
pass; the logits and loss are computed and freed before the first layer is recomputed in the
backward pass. So the peak is checkpoints + max(logits and loss, one layer's recompute and
backward), not their sum. Without checkpointing every layer's activations are alive together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .arch import Arch, Linear
from .fitted import fitted

GiB = 1024**3

# The constants below are fitted to the published measurements in calibration.json by
# `make fit-calibration` (least squares on relative error, per regime: 4-bit or 16-bit base), which
# writes them to doctor/data/estimator_fit.json (fitted.py reads it);
# tests/doctor/test_fit_calibration.py checks that they are what the fit gives.
_FIT = fitted()
# CUDA context, cuBLAS workspace and the bitsandbytes kernels: allocated outside PyTorch's caching
# allocator, seen by nvidia-smi (not by torch.cuda.max_memory_*). The bare context with CUDA's
# lazy module loading (PyTorch's default since 1.13) is about 0.3-0.4 GB (pytorch/pytorch#107667,
# #109888), far below the 1.3 GB of HF's memory anatomy doc; training runs' nvidia-smi rows show
# about 1 GiB beyond the tensors (workspaces, kernels, NCCL in DeepSpeed runs).
CUDA_CONTEXT_GIB = _FIT.context_gib
# What the term-by-term count of the training-time tensors misses on the published rows' stacks
# (Hugging Face Trainer, litgpt, DeepSpeed scripts: their own buffers and copies, kernels'
# workspaces), as a fraction of everything allocated during training (not the frozen weights).
# Applied to those rows only (calibration.py): XTuner's step, traced, has no such remainder.
UNCOUNTED = _FIT.uncounted
# PyTorch's caching allocator (c10/cuda/CUDACachingAllocator.cpp) rounds every block to 512 bytes
# and carves them from 2 MiB (small pool) or 20 MiB / exact 2 MiB-rounded (large pool) segments;
# a freed block stays reserved and can host only tensors no larger than it, so the working sets
# freed and re-allocated in other sizes at the peak (the loss backward's full-size gradients after
# the shifted logits, fp32 copies after 16-bit ones, one layer's recompute after another's) leave
# reserved-but-free memory. Modelled as a fraction of everything allocated during training:
# torch.cuda.max_memory_reserved - max_memory_allocated.
ALLOCATOR_CACHE = _FIT.cache
# PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True maps pages into one growing segment instead of
# fixed ones, so a freed block merges with the free tail: the reserved-but-free part shrinks. The
# factor is a published measurement (NVIDIA cosmos-rl PR #388, Qwen2.5-7B: reserved 126.97 GB with
# 60.93 GB allocated, 96.61 GB with 60.81 GB after: the gap x0.54); no calibration row used it.
EXPANDABLE_CACHE_FACTOR = 0.55


# A fused loss is estimated as the chunked loss with chunks of this many tokens (Liger picks
# chunks of about tokens x hidden / vocab tokens, cut cross-entropy never builds logits).
FUSED_LOSS_CHUNK = 128


def regime_key(quantized) -> str:
    return "4bit" if quantized else "16bit"


FROZEN = ("weights_4bit", "quant_constants", "weights_16bit", "weights_fp32")
# Allocated once and kept, in exact sizes: not scaled by the fitted shares.
EXACT = FROZEN + ("workspaces",)
# cuBLAS's workspace, allocated through the caching allocator at the first matmul and kept:
# CUBLAS_WORKSPACE_CONFIG's default ":4096:2:16:8" (2 x 4 MiB + 8 x 16 KiB) and cuBLASLt's 1 MiB
# (aten/src/ATen/cuda/CublasHandlePool.cpp; 32 MiB on sm90, not an 8 GB card)
CUBLAS_WORKSPACE = 2 * 4096 * 1024 + 8 * 16 * 1024 + 1024 * 1024

# bitsandbytes 4-bit: blocks of 64 weights share an absmax; with double quantization the absmaxes
# are themselves 8-bit in blocks of 256 (bitsandbytes.functional.quantize_4bit).
NF4_BLOCK = 64
DQ_BLOCK = 256
# bitsandbytes 8-bit optimizers: blockwise 8-bit states (blocks of 256) for tensors of at least
# min_8bit_size = 4096 elements; smaller tensors keep 32-bit states.
OPT8_BLOCK = 256
OPT8_MIN_SIZE = 4096

OPTIMIZERS = {
    # name: (bytes of state per element, 8-bit blockwise?)
    "adamw": (8, False),
    "adam": (8, False),
    "adamw8bit": (2, True),
    "paged_adamw8bit": (2, True),
    "sgd": (0, False),
    "sgd_momentum": (4, False),
}


@dataclass(frozen=True)
class DeepSpeed:
    """The parts of a DeepSpeed config that change memory on one GPU."""

    stage: int = 2
    offload_optimizer: bool = False
    reduce_bucket_size: float = 5e8  # DeepSpeed's default (elements)
    overlap_comm: bool = False
    contiguous_gradients: bool = True
    # ZeRO-3: parameters under this many elements are not partitioned; the prefetch bucket holds
    # the next parameters gathered ahead of use (DeepSpeed's defaults, elements)
    persistence_threshold: float = 1e5
    prefetch_bucket_size: float = 5e7


@dataclass(frozen=True)
class Setup:
    """Everything about a training step that decides its memory."""

    arch: Arch
    quant: str | None = "nf4"  # None (16-bit base) | nf4 | fp4 | gptq4 (calibration rows only)
    double_quant: bool = True
    weight_bytes: int = 2  # storage of the unquantized weights (torch_dtype): 2 or 4
    amp: bool = True  # autocast to 16-bit compute (AmpOptimWrapper)
    # PEFT's prepare_model_for_kbit_training, which XTuner's SupervisedFinetune calls for every
    # LoRA model (quantized or not), casts every 16-bit parameter that is not 4-bit to fp32.
    upcast: bool = True
    norms_fp32: bool = False  # without the upcast: layer norms kept fp32 (patches.keep_16bit)
    lora_r: int = 64
    lora_targets: tuple[str, ...] | None = None  # None: XTuner's find_all_linear_names
    lora_dropout: float = 0.1
    optimizer: str = "adamw"
    batch: int = 1
    seq: int = 2048
    grad_ckpt: bool = True
    loss_chunk: int | None = None  # tokens per chunk of the chunked loss (patches.chunked_ce)
    deepspeed: DeepSpeed | None = None
    gpus: int = 1  # data-parallel processes (NPROC_PER_NODE); the estimate is per GPU
    device: str = "cuda"  # "cpu": how the CPU build saves dropout masks (for the CPU checks)
    context_gib: float = CUDA_CONTEXT_GIB
    # What the term-by-term count misses, as a share of the training-time bytes. None: nothing,
    # for an XTuner step: its fake-GPU trace (bench/fakestep.py) allocates what the terms count
    # (within 1 %); the published rows of other stacks are estimated with the share fitted to
    # them (UNCOUNTED, calibration.py).
    uncounted: float | None = None
    cache: float | None = None  # None: ALLOCATOR_CACHE of the regime
    expandable_segments: bool = False  # PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    # The long-sequence memory patches (components.finetune.PatchedFinetune's knobs, same names)
    sdpa_attention: bool = False  # eager remote-code attention through SDPA
    offload_embeddings: bool = False  # the frozen input embedding table in CPU memory
    offload_checkpoints: bool = False  # the checkpointed layer inputs in pinned CPU memory
    fused_loss: str | None = None  # "liger" | "cce" (config.py resolves "auto"): no full logits
    # XTuner's DPO/ORPO: `batch` counts both sequences of a pair; the reference pass (adapters
    # off) computes its logits and loss while the policy's logits are kept
    preference: bool = False

    @property
    def tokens(self) -> int:
        return self.batch * self.seq

    # The dtype rules, derived once. DeepSpeed's engine casts the module to its 16-bit training
    # dtype (undoing PEFT's upcast) and runs without torch.autocast.
    @property
    def fp32_frozen(self) -> bool:
        """PEFT's upcast is in effect: the unquantized frozen weights are fp32."""
        return self.upcast and self.weight_bytes < 4 and self.deepspeed is None

    @property
    def autocast(self) -> bool:
        """Matmuls run under 16-bit torch.autocast (AmpOptimWrapper)."""
        return self.amp and self.deepspeed is None

    @property
    def fp32_norms(self) -> bool:
        return self.fp32_frozen or (self.norms_fp32 and self.deepspeed is None)

    @property
    def attention(self) -> str:
        """How attention runs: "sdpa", "eager", or "sdpa_expanded" (patches.sdpa_attention on
        eager remote code: SDPA over k and v repeated to every head, as that code repeats them)."""
        if self.arch.attn == "eager" and self.sdpa_attention:
            return "sdpa_expanded"
        return self.arch.attn

    @property
    def logit_chunk(self) -> int | None:
        """Tokens whose logits exist at once when the loss does not take all of them: the
        chunked loss's chunk; a fused loss (Liger's fused linear cross-entropy, Apple's cut
        cross-entropy) is counted as the 128-token chunked loss, which holds at least as much
        (their Triton kernels cannot be checked on the CPU)."""
        if self.loss_chunk:
            return self.loss_chunk
        return FUSED_LOSS_CHUNK if self.fused_loss else None


FUSED_NAMES = {"liger": "liger-kernel", "cce": "cut-cross-entropy"}

# Human names of the breakdown, in print order.
LABELS = {
    "weights_4bit": "quantized weights (4-bit)",
    "quant_constants": "quantization constants",
    "weights_16bit": "16-bit weights (not quantized)",
    "weights_fp32": "fp32 weights (not quantized)",
    "lora": "LoRA adapters",
    "lora_copies": "LoRA adapters' 16-bit copies (autocast)",
    "gradients": "gradients",
    "optimizer": "optimizer states",
    "activations": "activations: saved checkpoints",
    "layer_backward": "activations: one layer recomputed + backward",
    "logits_loss": "logits and loss",
    "deepspeed_buffers": "DeepSpeed buffers",
    "deepspeed_gathered": "ZeRO-3: gathered parameters (a layer or the head)",
    "ddp_buckets": "DDP gradient buckets",
    "workspaces": "kernel workspaces (cuBLAS)",
    "uncounted": "not counted term by term (fitted)",
    "allocator_reserve": "allocator cache (fragmentation, fitted)",
    "cuda_context": "CUDA context",
}


@dataclass
class Estimate:
    setup: Setup
    parts: dict[str, int]  # bytes at the peak, by LABELS key
    off_peak: dict[str, int] = field(default_factory=dict)  # working sets not alive at the peak
    counts: dict[str, int] = field(default_factory=dict)  # element counts (exactness tests)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def total_gib(self) -> float:
        return self.total / GiB


# ------------------------------------------------------------------------------------------------
# static terms


def quantized_bytes(numel: int, double_quant: bool) -> tuple[int, int]:
    """(packed 4-bit data, quantization constants) of one bitsandbytes Params4bit of `numel`."""
    packed = (numel + 1) // 2
    blocks = math.ceil(numel / NF4_BLOCK)
    code = 16 * 4  # the nf4/fp4 code book, fp32, one per tensor
    if double_quant:
        # 8-bit absmax per block + (fp32 absmax per 256 blocks, 256-entry fp32 code, fp32 offset)
        consts = blocks + math.ceil(blocks / DQ_BLOCK) * 4 + 256 * 4 + 4 + code
    else:
        consts = blocks * 4 + code
    return packed, consts


GPTQ_GROUP = 128


def gptq_bytes(lin: Linear) -> tuple[int, int]:
    """(packed, constants) of an auto-gptq 4-bit QuantLinear, group size 128: int32 qweight,
    int32 qzeros (4 bits per group and column), fp16 scales per group and column, int32 g_idx."""
    groups = math.ceil(lin.d_in / GPTQ_GROUP)
    return lin.numel // 2, groups * lin.d_out // 2 + groups * lin.d_out * 2 + lin.d_in * 4


def lora_modules(setup: Setup) -> list[Linear]:
    """The Linear modules (one decoder layer's, plus the head) that get LoRA adapters."""
    arch = setup.arch
    candidates = arch.layer_linears() + [arch.head]
    targets = setup.lora_targets
    if targets is None:
        # xtuner.model.utils.find_all_linear_names: every nn.Linear leaf name but these two.
        # InternLM2 names its head "output", so XTuner puts LoRA on InternLM2's LM head.
        return [m for m in candidates if m.name not in ("lm_head", "output_layer")]
    if targets == ("all-linear",):  # PEFT's shorthand: all linear layers but the output layer
        return [m for m in candidates if m.role != "head"]
    return [m for m in candidates if m.name in targets]


def lora_numel(setup: Setup) -> int:
    n = 0
    for m in lora_modules(setup):
        per = setup.lora_r * (m.d_in + m.d_out) * m.count
        n += per if m.role == "head" else per * setup.arch.layers
    return n


def lora_tensor_sizes(setup: Setup) -> list[int]:
    """Element counts of every LoRA A and B matrix (8-bit optimizers treat each on its own)."""
    sizes = []
    for m in lora_modules(setup):
        reps = m.count * (1 if m.role == "head" else setup.arch.layers)
        sizes += [setup.lora_r * m.d_in, setup.lora_r * m.d_out] * reps
    return sizes


def optimizer_bytes(setup: Setup, sizes: list[int]) -> int:
    try:
        per, eight_bit = OPTIMIZERS[setup.optimizer]
    except KeyError:
        raise ValueError(
            f"optimizer {setup.optimizer!r} is not modelled ({', '.join(OPTIMIZERS)})"
        ) from None
    if not eight_bit:
        return per * sum(sizes)
    total = 0
    for n in sizes:
        if n >= OPT8_MIN_SIZE:  # two uint8 states + an fp32 absmax per block for each
            total += 2 * n + 2 * math.ceil(n / OPT8_BLOCK) * 4
        else:
            total += 8 * n
    return total


def weight_terms(setup: Setup) -> dict[str, int]:
    """Bytes of the frozen model: 4-bit data, constants, and unquantized weights by dtype."""
    arch = setup.arch
    ds = setup.deepspeed
    # Unquantized parameters' dtype after the model is built: PEFT's upcast makes them fp32;
    # DeepSpeed's engine casts the module back to its 16-bit training dtype.
    other = 4 if setup.fp32_frozen else setup.weight_bytes
    norm_bytes = 4 if setup.fp32_norms else setup.weight_bytes
    if ds is not None:
        other = norm_bytes = 2
    out = dict(weights_4bit=0, quant_constants=0, weights_16bit=0, weights_fp32=0)

    def add(numel, nbytes):
        out["weights_fp32" if nbytes == 4 else "weights_16bit"] += numel * nbytes

    if setup.quant:
        for lin in arch.layer_linears():
            packed, consts = (gptq_bytes(lin) if setup.quant == "gptq4"
                              else quantized_bytes(lin.numel, setup.double_quant))
            out["weights_4bit"] += packed * lin.count * arch.layers
            out["quant_constants"] += consts * lin.count * arch.layers
    else:
        add(arch.linear_numel, other)
    # patches' offload_embeddings keeps the input embedding table on the CPU; a tied table is also
    # the LM head's weight, which the GPU needs, so it stays
    embed = 0 if (setup.offload_embeddings and not arch.tied) else arch.embed_numel
    add(embed + arch.head_numel + arch.bias_numel, other)
    add(arch.norm_numel, norm_bytes)
    return out


# ------------------------------------------------------------------------------------------------
# per-token terms


@dataclass(frozen=True)
class Dtypes:
    compute: int  # C: autocast output of matmuls
    stream: int  # S: the residual stream between layers (what checkpoints store)
    mlp: int  # M: MLP intermediates (bnb 4-bit linears return their input's dtype)
    adapter: int  # LoRA weights
    head_weight: int  # the LM head's stored weight


def dtypes(setup: Setup) -> Dtypes:
    ds = setup.deepspeed
    base = 2 if ds is not None else setup.weight_bytes
    embed = 4 if setup.fp32_frozen else base
    norm = 4 if setup.fp32_norms else base
    compute = 2 if setup.autocast or ds is not None else base
    # A 16-bit stream meets fp32 norm weights: the norm's output is fp32; bnb's Linear4bit returns
    # its input's dtype, so the attention/MLP outputs and the residual stream become fp32 too.
    stream = 4 if embed == 4 or (setup.quant and norm == 4) else base
    mlp = 4 if (setup.quant and stream == 4) else compute
    # PEFT keeps adapters fp32 (autocast_adapter_dtype) unless DeepSpeed casts the module.
    adapter = 2 if ds is not None else 4
    return Dtypes(compute, stream, mlp, adapter, head_weight=embed)  # same rule as the embedding


def layer_saved_per_token(setup: Setup, dt: Dtypes) -> float:
    """Bytes per token that one decoder layer saves for its backward pass (excluding its input).

    Measured term by term on transformers' Llama layer with PEFT LoRA on bitsandbytes 4-bit
    linears (tests/doctor/test_fit_activations.py); docs/memory.md lists each tensor."""
    a = setup.arch
    h, q_dim, kv_dim = a.hidden, a.heads * a.head_dim, a.kv_heads * a.head_dim
    C, S, M = dt.compute, dt.stream, dt.mlp
    amp = setup.autocast
    topk = a.experts_per_token or 1
    b = 0.0
    # RMSNorms: pow() keeps an fp32 copy of the input (the input itself if it is fp32), rsqrt keeps
    # one float per token. The post-attention norm's input is the residual sum, a new tensor.
    b += (4 * h if S < 4 else 0) + 4
    b += 4 * h + 4
    # LoRA: each adapted module keeps the input of its lora_A. PEFT casts the input to the adapter
    # dtype (fp32), autocast casts it back to 16-bit for the matmul, and that copy is saved: one
    # copy per module. Without autocast and with same-dtype adapters the input itself is saved,
    # shared by the modules that read it. Dropout keeps its mask (bool on CUDA, float on the CPU)
    # and, without autocast, its own output.
    mask = 1 if setup.device == "cuda" else 4
    shared_inputs = {}
    for m in lora_modules(setup):
        if m.role == "head":
            continue
        reps = topk if m.role in ("gate", "up", "down") and a.experts else 1
        if amp:
            b += reps * C * m.d_in
        elif dt.adapter != C:  # cast to the adapter dtype, per module
            b += reps * dt.adapter * m.d_in
        elif setup.lora_dropout <= 0:
            shared_inputs[_input_of(m.role)] = reps * C * m.d_in
        if setup.lora_dropout > 0:
            b += reps * mask * m.d_in
            if not amp and dt.adapter == C:
                b += reps * C * m.d_in
        b += reps * setup.lora_r * C  # lora_A's output, kept by lora_B
    b += sum(shared_inputs.values())
    # Attention. SDPA keeps q, k, v, its output and a float log-sum-exp per head; GQA heads are not
    # expanded (transformers passes enable_gqa when there is no mask; below sm80 patches.sdpa_gqa
    # repeats them for the memory-efficient kernel: about 1 % more, docs/memory.md). Eager
    # attention (remote code without flash-attn) keeps q and k, v repeated to every head, and the
    # fp32 softmax and its 16-bit copy: 4 + C bytes per head and key, per token, so it grows with
    # the sequence.
    # patches.sdpa_attention: the eager code's q and repeated k, v through SDPA, no scores.
    if setup.attention == "eager":
        b += C * 3 * q_dim + (4 + C) * a.heads * setup.seq
    elif setup.attention == "sdpa_expanded":
        # q and k, v repeated to every head, and the remote code gathers its cos/sin rows per
        # layer (tests/patches/test_sdpa_attention.py); SDPA's output is the output projection's
        # input: one storage with LoRA's when that input is not a dropout's output
        b += C * 3 * q_dim + 4 * a.heads + 2 * C * a.head_dim
        if setup.lora_dropout > 0 or not any(m.role == "o" for m in lora_modules(setup)):
            b += C * q_dim
    else:
        b += C * (q_dim + 2 * kv_dim) + C * q_dim + 4 * a.heads
    # SwiGLU MLP: the gate projection's output (for SiLU), SiLU's output and the up projection's
    # output (for the product). MoE: for each of the top-k experts of a token, plus router logits.
    b += topk * 3 * M * a.intermediate
    if a.experts:
        b += 4 * a.experts * 2
    return b


def _input_of(role: str) -> str:
    return {"q": "attn_in", "k": "attn_in", "v": "attn_in", "qkv": "attn_in", "o": "o_in",
            "gate": "mlp_in", "up": "mlp_in", "router": "mlp_in", "down": "down_in"}[role]


def layer_backward_per_token(setup: Setup, dt: Dtypes) -> float:
    """Gradient tensors alive while one layer runs backward, as first measured on the CPU: MLP-
    sized ones, and with eager attention the 16-bit gradient of the attention weights. Eager
    attention's peak (its score-sized tensors) is still taken from it (`layer_peak`)."""
    a = setup.arch
    topk = a.experts_per_token or 1
    grads = topk * 2 * (dt.mlp + 2) * a.intermediate
    if setup.attention == "eager":
        grads += dt.compute * a.heads * setup.seq
    return grads


def _down(setup: Setup):
    """The MLP's down projection (its backward runs first in a layer's backward)."""
    return next(lin for lin in setup.arch.layer_linears() if lin.role == "down")


def lora_input_bytes(setup: Setup, dt: Dtypes, role: str) -> float:
    """Bytes per token a LoRA module of `role` keeps of its own (the input of its lora_A and
    lora_A's output): what its backward frees. 0 for a module without LoRA or one whose input is
    shared with other modules."""
    mods = [m for m in lora_modules(setup) if m.role == role]
    if not mods:
        return 0.0
    m, C = mods[0], dt.compute
    mask = 1 if setup.device == "cuda" else 4
    b = setup.lora_r * C
    if setup.autocast or dt.adapter != C:
        b += (C if setup.autocast else dt.adapter) * m.d_in
    if setup.lora_dropout > 0:
        b += mask * m.d_in + (C * m.d_in if not setup.autocast and dt.adapter == C else 0)
    return b


def layer_peak_bytes(setup: Setup, dt: Dtypes) -> int:
    """The peak while one checkpointed layer is recomputed and runs backward (the traced step,
    bench/fakestep.py, shows where): the larger of
    - the recomputed forward at the MLP's down projection: everything the layer saves, the
      residual and the MLP's normalized input, the down projection's input and output (with
      LoRA also PEFT's clone of the base output, lora_B's output and its scaled copy), and on a
      quantized base bitsandbytes' dequantized weight (its CUDA gemm_4bit dequantizes and calls
      F.linear for more than 1536 rows);
    - the down projection's backward: everything saved but the down projection's LoRA input,
      the gradient of its input from the base and from the LoRA path, the dequantized weight.
    Both hold the gradient arriving at the layer (fp32 from the next layer's fp32 norm, and its
    16-bit copy), one layer's LoRA weights in 16 bits (autocast's copies for the recompute)
    and, on a 16-bit base upcast to fp32, autocast's 16-bit copies of the layer's weights.
    Eager attention (without patches.sdpa_attention) keeps its first-measured formula, whose
    score-sized gradients outgrow both."""
    a, T = setup.arch, setup.tokens
    C, S, M = dt.compute, dt.stream, dt.mlp
    h, topk = a.hidden, a.experts_per_token or 1
    I = a.intermediate * topk  # noqa: E741
    saved = layer_saved_per_token(setup, dt)
    lora_down = any(m.role == "down" for m in lora_modules(setup))
    incoming = 4 * h + (S * h if S < 4 else 0)
    # the residual (or the layer's output), and with offloaded checkpoints the layer's input
    # brought back from the host
    held = saved + S * h + incoming + (S * h if setup.offload_checkpoints else 0)
    bnb = bool(setup.quant) and setup.quant != "gptq4"
    fixed = 0 if bnb else layer_fixed_bytes(setup, dt)  # bnb's dequantized weight: below
    layer_lora = sum(setup.lora_r * (m.d_in + m.d_out) * m.count for m in lora_modules(setup)
                     if m.role != "head")
    if setup.autocast:
        fixed += layer_lora * C
    dequant = _down(setup).numel * C if bnb else 0
    forward_dequant = dequant if T > BNB_GEMM_CUSTOM_MAX_M else 0
    out = (3 if lora_down else 1) * C * h
    down_in = lora_input_bytes(setup, dt, "down") * topk
    # during the base matmul (no LoRA input yet), or after it (PEFT's sum of both paths)
    recompute = ((held + M * I + S * h) * T + fixed
                 + max(forward_dequant + (C * h - down_in) * T, out * T))
    backward = (held - down_in + (2 if lora_down else 1) * C * I) * T + dequant + fixed
    peak = max(recompute, backward)
    if setup.attention == "eager":
        old = (saved + layer_backward_per_token(setup, dt) + h * S) * T + fixed
        peak = max(peak, old)
    return int(peak)


# bitsandbytes' CUDA gemm_4bit runs its fused kernel up to this many rows of its input, and
# dequantizes the weight then calls F.linear above it (backends/cuda/ops.py)
BNB_GEMM_CUSTOM_MAX_M = 1536


def layer_fixed_bytes(setup: Setup, dt: Dtypes) -> int:
    """Per-layer weight-sized transients: bnb dequantizes one weight at a time to 16-bit;
    autocast keeps 16-bit copies of an fp32 layer's weights for its backward."""
    a = setup.arch
    if setup.quant == "gptq4":  # auto-gptq's matmul keeps the dequantized weight for backward
        return sum(lin.numel * lin.count for lin in a.layer_linears()) * dt.compute
    if setup.quant:
        return max(lin.numel for lin in a.layer_linears()) * dt.compute
    if setup.autocast and setup.fp32_frozen:
        return sum(lin.numel * lin.count for lin in a.layer_linears()) * dt.compute
    return 0


def logits_bytes(setup: Setup, dt: Dtypes) -> tuple[int, int, int]:
    """(bytes of logits and loss at the forward's peak, at the backward's, tokens whose logits
    exist at once).

    Per logit: the loss runs in L bytes (fp32 when the model or autocast upcasts, else the compute
    dtype). The backward of the log-softmax holds its saved output, the incoming and the outgoing
    gradient: 3 L. The forward holds the 16-bit logits, the upcast copy and the log-softmax output
    (`hf`: transformers' ForCausalLMLoss), or the upcast logits, the shifted copy and the
    log-softmax output (`float_shift`), or the logits, the shifted copy and cross_entropy's own
    copies (`shift`). A LoRA adapter on the head adds its 16-bit output and its scaled copy."""
    a = setup.arch
    C = dt.compute
    amp = setup.autocast
    chunk = setup.logit_chunk
    tokens = setup.tokens if not chunk else min(setup.tokens, chunk)
    if chunk:  # patches.chunked_ce (or a fused loss): 16-bit logits, fp32 cross-entropy per chunk
        L, fwd = 4, C + (4 if C < 4 else 0) + 4
    elif a.loss == "hf":
        L, fwd = 4, C + (4 if C < 4 else 0) + 4
    elif a.loss == "float_shift":
        L, fwd = 4, 12
    else:  # shift: cross_entropy upcasts under autocast, else runs in the logits' dtype
        L = 4 if amp else C
        fwd = 2 * C + (4 + 4 if amp and C < 4 else C)
    if setup.preference:  # the reference pass's loss runs beside the policy's 16-bit logits
        fwd += C
    head_lora = 2 * C if any(m.role == "head" for m in lora_modules(setup)) else 0
    forward, backward = tokens * a.vocab * (fwd + head_lora), tokens * a.vocab * (3 * L + head_lora)
    # An fp32 head under autocast is cast to 16-bit for the matmul and kept for its backward.
    if dt.head_weight == 4 and C < 4:
        forward += a.vocab * a.hidden * C
        backward += a.vocab * a.hidden * C
    # The gradient of the final hidden states, filled chunk by chunk.
    if chunk:
        backward += setup.tokens * a.hidden * 4
    return forward, backward, tokens


def offloaded_checkpoint_bytes(setup: Setup, dt: Dtypes) -> int:
    """What patches.offload_checkpoints moves to pinned CPU memory in a step: every layer's
    input and the final norm's fp32 input (tests/patches/test_offload_memory.py counts them)."""
    a, T = setup.arch, setup.tokens
    if not (setup.offload_checkpoints and setup.grad_ckpt):
        return 0
    return a.layers * T * a.hidden * dt.stream + 4 * a.hidden * T


# ------------------------------------------------------------------------------------------------


def zero3_shard(sizes: list[int], ds: DeepSpeed, n: int) -> int:
    """Elements one GPU holds of these parameters under ZeRO-3: 1/n of each one at or above the
    persistence threshold, the small ones whole."""
    return sum(-(-k // n) if k >= ds.persistence_threshold else k for k in sizes)


def zero3_frozen(setup: Setup, parts: dict[str, int], n: int) -> dict[str, int]:
    """The frozen model's share of one GPU under ZeRO-3, and the working set gathered for use.

    The 4-bit linears (packed data in 16-bit storage) and the embeddings and head are sharded;
    the quantization constants (quant_state, not parameters) and the norms (under the threshold)
    stay whole. At a time one layer's linears, or the LM head at the loss, are gathered, and the
    prefetch bucket holds the next ones."""
    a, ds = setup.arch, setup.deepspeed
    out = dict(weights_4bit=-(-parts["weights_4bit"] // n))
    # DeepSpeed casts the module to 16-bit: embeddings, head and an unquantized base's linears
    big = (a.embed_numel + a.head_numel + (0 if setup.quant else a.linear_numel)) * 2
    out["weights_16bit"] = parts["weights_16bit"] - big + -(-big // n)
    layer = sum(lin.numel * lin.count for lin in a.layer_linears())
    layer_bytes = (layer + 1) // 2 if setup.quant else layer * 2
    head = (a.head_numel or a.embed_numel) * 2  # a tied head is the embedding
    gathered = max(layer_bytes, head) + int(ds.prefetch_bucket_size) * 2
    out["deepspeed_gathered"] = gathered * (n - 1) // n  # the own shard is counted above
    return out


def estimate(setup: Setup) -> Estimate:
    if setup.sdpa_attention and setup.arch.attn == "eager":  # patches' sdpa_attention
        setup = replace(setup, arch=replace(setup.arch, attn="sdpa"))
    a = setup.arch
    ds = setup.deepspeed
    dt = dtypes(setup)
    T = setup.tokens
    parts = weight_terms(setup)
    counts = dict(
        linear=a.linear_numel if setup.quant else 0,
        unquantized=a.total_params - (a.linear_numel if setup.quant else 0),
        lora=lora_numel(setup),
    )
    sizes = lora_tensor_sizes(setup)
    n_lora = counts["lora"]
    notes = []

    # Trainable state. PEFT adapters are fp32 with fp32 gradients; AmpOptimWrapper's GradScaler
    # unscales them in place. Under DeepSpeed ZeRO-1/2 the adapters are 16-bit with 16-bit
    # gradients, the optimizer works on an fp32 master copy with fp32 gradients (on the CPU with
    # offload_optimizer).
    n = setup.gpus
    if ds is None:
        parts["lora"] = n_lora * dt.adapter
        grads = n_lora * dt.adapter
        parts["optimizer"] = optimizer_bytes(setup, sizes)
        if n > 1:  # DDP's reducer copies every gradient into its flat buckets (no bucket views)
            parts["ddp_buckets"] = n_lora * dt.adapter
    else:
        # ZeRO on n GPUs: each keeps 1/n of the fp32 master weights, their gradients and the
        # optimizer states (stage >= 1), of the 16-bit gradients (stage >= 2), and of the
        # parameters (stage 3: the adapters and the frozen model, 4-bit data included).
        parts["lora"] = 2 * (zero3_shard(sizes, ds, n) if ds.stage == 3 else n_lora)
        parts["gradients"] = grads = n_lora * 2 // (n if ds.stage >= 2 else 1)
        parts["optimizer"] = 0 if ds.offload_optimizer else (
            n_lora * (4 + 4) + optimizer_bytes(setup, sizes)) // n
    # autocast's cached 16-bit copies of the adapters live until the forward's autocast region
    # ends (and, without checkpointing, in each layer's saved tensors until its backward)
    copies = n_lora * dt.compute if setup.autocast else 0

    # Activations, and the phase the peak falls in (the traced step shows each:
    # bench/fakestep.py). Gradients exist only once the backward reached the layers; the
    # optimizer zeroes them (to None) after its step, so a forward peak has none.
    saved = layer_saved_per_token(setup, dt)
    rope = 2 * dt.stream * a.head_dim * T  # cos, sin: shared by every layer
    final_norm = (4 * a.hidden + 4) * T
    logits_fwd, logits_bwd, logit_tokens = logits_bytes(setup, dt)
    off_peak = {}
    if setup.grad_ckpt:
        parts["activations"] = a.layers * T * a.hidden * dt.stream + rope + final_norm
        offloaded = offloaded_checkpoint_bytes(setup, dt)
        if offloaded:  # the layer being recomputed gets its input back: in the layer term
            # the first layer's input is the embedding output, a leaf that requires grad
            # (enable_input_require_grads): its AccumulateGrad node keeps it on the GPU
            parts["activations"] += T * a.hidden * dt.stream - offloaded
            notes.append(f"checkpoints in pinned CPU memory (patches.offload_checkpoints): "
                         f"{offloaded / GiB:.2f} GiB of host RAM, copied out and back each step")
        if setup.preference:  # the reference pass's last hidden state and its norm's output
            logits_fwd += 2 * T * a.hidden * dt.stream
        phases = {
            "forward": {"logits_loss": logits_fwd, "lora_copies": copies},
            "layer": {"layer_backward": layer_peak_bytes(setup, dt), "gradients": grads},
            "loss backward": {"logits_loss": logits_bwd},
        }
        if ds is not None:  # ZeRO's gradient partitions are allocated up front
            for phase in phases.values():
                phase["gradients"] = grads
        peak = max(phases, key=lambda k: sum(phases[k].values()))
        parts.update(phases[peak])
        for phase in phases.values():
            for key, value in phase.items():
                if key not in parts and value:
                    off_peak[key] = max(off_peak.get(key, 0), value)
    else:
        per_layer = saved + a.hidden * dt.stream
        parts["activations"] = int(a.layers * T * per_layer) + rope + final_norm
        parts["logits_loss"] = max(logits_fwd, logits_bwd)
        parts["lora_copies"] = copies
        if ds is None:
            off_peak["gradients"] = grads
        notes.append("gradient checkpointing is off: every layer's activations are kept")
    if setup.fused_loss and not setup.loss_chunk:
        notes.append(f"fused loss ({FUSED_NAMES.get(setup.fused_loss, setup.fused_loss)}): "
                     f"counted as {logit_tokens}-token chunks")
    elif setup.loss_chunk:
        notes.append(f"loss computed {logit_tokens} tokens at a time (patches.chunked_ce)")
    if setup.offload_embeddings and not a.tied:
        notes.append(f"input embeddings in CPU memory (patches.offload_embeddings): "
                     f"{a.embed_numel * dt.head_weight / GiB:.2f} GiB off the GPU")
    if setup.attention == "sdpa_expanded":
        notes.append("remote-code attention through SDPA (patches.sdpa_attention)")

    if ds is not None:
        buf = 0
        if ds.stage in (1, 2, 3) and ds.contiguous_gradients:
            # stage_1_and_2.py (stage3.py alike) allocates the gradient bucket whole, twice with
            # overlap_comm
            buf = int(ds.reduce_bucket_size) * 2 * (2 if ds.overlap_comm else 1)
        parts["deepspeed_buffers"] = buf
        if ds.stage == 3 and n == 1:
            notes.append("ZeRO-3 on one GPU is estimated as ZeRO-2 (the frozen 4-bit model is "
                         "not partitioned)")
        elif ds.stage == 3:
            parts.update(zero3_frozen(setup, parts, n))
            notes.append(f"ZeRO-3 on {n} GPUs: parameters of {ds.persistence_threshold:.0e}+ "
                         "elements (the 4-bit data stored 16-bit, as XTuner's QLoRA + ZeRO-3 "
                         f"sets bnb_4bit_quant_storage) are 1/{n} per GPU, gathered per layer")

    if setup.device == "cuda":
        parts["workspaces"] = CUBLAS_WORKSPACE
    trained = sum(v for k, v in parts.items() if k not in EXACT)
    key = regime_key(setup.quant)
    uncounted = 0.0 if setup.uncounted is None else setup.uncounted
    cache = ALLOCATOR_CACHE[key] if setup.cache is None else setup.cache
    if setup.expandable_segments:
        cache *= EXPANDABLE_CACHE_FACTOR
        notes.append("expandable_segments: the allocator cache is x"
                     f"{EXPANDABLE_CACHE_FACTOR:g} (PYTORCH_CUDA_ALLOC_CONF)")
    parts["uncounted"] = int(trained * uncounted)
    parts["allocator_reserve"] = int(trained * cache)
    parts["cuda_context"] = int(setup.context_gib * GiB)
    return Estimate(setup, parts, off_peak, counts, notes)

