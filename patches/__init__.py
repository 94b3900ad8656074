"""Named, tested patches that make XTuner 0.2.0 work on the pack's stack (env/stack.txt).

Each patch is one module here with a docstring saying what breaks without it, a `TARGET` (the
module, or tuple of modules, whose import triggers it) and `apply(target_module)` (with
`BEFORE = True`, `apply(None)` runs just before the target is first imported, and `after(module)`,
if the patch has one, once it has been). Startup patches are registered in every interpreter of
the environment by the `.pth` file that `python -m patches install` writes (`make env` runs
it): mmengine reads XTuner configs in lazy-import mode, so code in a config cannot reach the
real modules, and `xtuner train` runs its tool in a child `python`.

XTUNER_PACK_PATCHES selects them: unset or "all" = every startup patch, "none" = none,
"-name,-other" = all but those, "name,other" = only those.
"""

from __future__ import annotations

import importlib

from ._hooks import after_import, before_import, instead_of_import

# Compatibility patches, in force in every interpreter of the environment.
STARTUP = (
    "xtuner_cli_exit",
    "xtuner_cli_tool_path",
    "cpu_bf16",
    "resume_safe_globals",
    "torchvision_optional",
    "remote_code_generate",
    "xtuner_llm_config",
    "pth_to_hf_provenance",
    "xtuner_attn_dispatch",
    "sdpa_gqa",
    "xtuner_rope_swap",
    "cpu_distributed",
    "deepspeed_optimizers",
    "deepspeed_init_order",
    "xtuner_template_bos",
    "bnb_cpu_packing",
    # run time (docs/training.md "Before and during a run"): stop early, measure, explain an OOM
    "cuda_alloc_conf",
    "preflight",
    "oom_advice",
    "bnb_quiet",
    "mmengine_quiet",
    "sklearn_lazy",
    "bnb_lazy_compile",
)

# Memory patches, opt-in per config: a config turns them on through the model type it builds
# (components.finetune.PatchedFinetune); docs/memory.md.
MEMORY = (
    "keep_16bit",
    "chunked_ce",
    "sdpa_attention",
    "offload_embeddings",
    "offload_checkpoints",
    "fused_loss",
)

#: Names of the patches that have taken effect in this process.
applied: set[str] = set()


def selected(spec: str | None = None) -> list[str]:
    """The startup patches that XTUNER_PACK_PATCHES (or `spec`) selects (doctor.pth's rule)."""
    from doctor.pth import selection

    only, but = selection(spec)
    unknown = (set(only or ()) | but) - set(STARTUP)
    if unknown:
        raise ValueError(f"XTUNER_PACK_PATCHES names unknown patches: {sorted(unknown)}")
    return [n for n in (STARTUP if only is None else only) if n not in but]


def enable(name: str) -> None:
    """Register patch `name` to apply when its target module is imported."""
    patch = importlib.import_module(f"{__name__}.{name}")

    def run(module):
        patch.apply(module)
        applied.add(name)

    def replace():
        module = patch.replacement()
        if module is not None:
            applied.add(name)
        return module

    def before():
        patch.apply(None)
        applied.add(name)

    targets = (patch.TARGET,) if isinstance(patch.TARGET, str) else patch.TARGET
    for target in targets:
        if getattr(patch, "BEFORE", False):  # must act before the target's code runs
            before_import(target, before)
            if hasattr(patch, "after"):  # and, optionally, once that code has run
                after_import(target, patch.after)
        elif getattr(patch, "REPLACES", False):
            instead_of_import(target, replace)
        else:
            after_import(target, run)


def enable_startup() -> None:
    for name in selected():
        enable(name)


__all__ = ["MEMORY", "STARTUP", "applied", "enable", "enable_startup", "selected"]
