"""Which SDPA kernel a config's attention runs on the user's GPU, and a word when it is the math
kernel: its fp32 score matrices (a query x key matrix per head) are in no estimate.

transformers' SDPA attention asks for GQA when there is no mask, and patches.sdpa_gqa lets it only
where FlashAttention takes the call (else the key heads are repeated, for the memory-efficient
kernel). What neither fused kernel takes still runs the math kernel: bf16 below sm80 (Turing has
no bf16; the recipe's fp16 is fine, DeepSpeed's "auto" picks bf16 there), a head size that is not
a multiple of the kernel's alignment, a GPU outside their ranges, or the patch turned off.
"""

from __future__ import annotations

from doctor import sdpa
from doctor.pth import PTH_LINE, pth_path, selects

from .config import Loaded

GQA_PATCH = "sdpa_gqa"
DTYPES = ("float16", "bfloat16", "float32")


def gqa_patch_in_force(environ_spec: str | None = None) -> bool:
    """patches.sdpa_gqa will be in force in a run: selected by XTUNER_PACK_PATCHES and registered
    by the environment's .pth file."""
    try:
        installed = pth_path().read_text() == PTH_LINE
    except OSError:
        installed = False
    return installed and selects(GQA_PATCH, environ_spec)


def math_kernel(loaded: Loaded, cc: tuple[int, int] | None, patched: bool | None = None
                ) -> dict | None:
    """{"capability", "kernel": "math", "why", "fix", "scores_gb_per_layer"} when the config's
    attention runs SDPA's math kernel on a GPU of compute capability `cc`; None when a fused
    kernel runs it (or nothing is known: no capability, eager attention, an "auto" dtype).
    `patched`: patches.sdpa_gqa in force (default: as this environment has it)."""
    s, a = loaded.setup, loaded.setup.arch
    dtype = loaded.attn_dtype
    if cc is None or s.attention == "eager" or dtype not in DTYPES:
        return None
    mask = s.preference  # DPO/ORPO pairs are padded: transformers passes the mask
    gqa = s.attention == "sdpa" and a.kv_heads < a.heads and not mask
    if patched is None:
        patched = gqa_patch_in_force()
    if gqa and patched and not sdpa.flash(cc, dtype, a.head_dim, dropout=True):
        gqa = False  # the patch: transformers repeats the key heads
    if sdpa.kernel(cc, dtype, a.head_dim, gqa=gqa, mask=mask) != "math":
        return None
    sm = f"sm_{cc[0]}{cc[1]}"
    if sdpa.kernel(cc, dtype, a.head_dim, mask=mask) == "math":  # not even with repeated heads
        if not sdpa.MEM_EFFICIENT_SM[0] <= tuple(cc) <= sdpa.MEM_EFFICIENT_SM[1]:
            why, fix = f"{sm} is outside the fused kernels' range (sm50 to sm121)", ""
        elif dtype == "bfloat16" and cc[0] < 8:
            why = (f"{sm} has no bf16 kernel (FlashAttention needs sm80+, the memory-efficient "
                   "kernel takes fp16 and fp32 below sm80)")
            fix = ("train in fp16: the recipe's dtype=\"float16\"" + (
                "; with --deepspeed a JSON with \"bf16\": {\"enabled\": false} (XTuner's \"auto\" "
                "picks bf16 on every CUDA GPU)" if s.deepspeed else ""))
        else:
            why = (f"head size {a.head_dim} is not a multiple of {sdpa.gemm_alignment(cc, dtype)}"
                   f" in {dtype}, which the memory-efficient kernel needs")
            fix = "no setting changes it for this model"
    else:
        why = (f"{a.name} has {a.kv_heads} key heads for {a.heads} query heads, transformers asks "
               f"SDPA for GQA, which only FlashAttention takes (sm80+, 16-bit), and the startup "
               f"patch {GQA_PATCH} is not in force")
        fix = (f"python -m patches install, and no -{GQA_PATCH} in XTUNER_PACK_PATCHES")
    return {"capability": f"{cc[0]}.{cc[1]}", "kernel": "math", "dtype": dtype, "why": why,
            "fix": fix,
            "scores_gb_per_layer": round(sdpa.score_bytes(a.heads, s.seq, s.seq) * s.batch
                                         / 1024**3, 3)}


def lines(note: dict, seq: int) -> list[str]:
    """What doctor fit prints for math_kernel()'s note."""
    out = [f"  attention on sm_{note['capability'].replace('.', '')}: torch's math kernel, not a "
           f"fused one: {note['why']}.",
           f"            It keeps fp32 scores, {note['scores_gb_per_layer']:.2f} GiB a layer at "
           f"{seq} tokens (several alive in backward), which this estimate does not count."]
    if note["fix"]:
        out.append(f"            fix: {note['fix']}")
    return out
