# The pack's shared recipe: every config in configs/ is this recipe plus its own knobs.
#
# A run file does
#     with read_base():
#         from ._base_.datasets import alpaca               # the dataset's preset (datasets.py)
#         from ._base_.models import qwen2_5_7b_instruct   # the model's preset (models.py)
#         from ._base_.recipe_8gb import recipe
#     ... knobs ...
#     globals().update(recipe(**qwen2_5_7b_instruct, **alpaca, max_epochs=...))
# mmengine reads these files in lazy-import mode: the imports below become LazyObjects that are
# resolved only when the runner builds them, and a function defined here can be called by the run
# file. `recipe()` lays out XTuner's five config parts from the knobs, one function per part in
# dependency order (PART 1 model, PART 2 data, PART 3 optimizer, PART 4 schedule, PART 5
# runtime), as XTuner's own configs show them under banners. Each part states its own knobs and
# their defaults (once); recipe() hands each part the knobs it names. That keeps the run files to
# what differs and this recipe in one place.
#
# Defaults are the 8 GB settings. XTuner's stock QLoRA recipe (r=64 on every linear layer,
# 2048 packed tokens) does not fit 8 GB for 7B models; see docs/memory.md and
# `python -m doctor fit configs/<name>.py` for the numbers behind each choice.
import torch
from datasets import load_dataset
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.hooks import (
    CheckpointHook,
    DistSamplerSeedHook,
    IterTimerHook,
    LoggerHook,
    ParamSchedulerHook,
)
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from peft import LoraConfig
from torch.optim import AdamW
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from xtuner.dataset import process_hf_dataset
from xtuner.dataset.collate_fns import default_collate_fn
from xtuner.dataset.collate_fns.preference_collate_fn import preference_collate_fn
from xtuner.dataset.preference_dataset import build_preference_dataset
from xtuner.engine.hooks import DatasetInfoHook, EvaluateChatHook
from xtuner.engine.runner import TrainLoop
from xtuner.model import SupervisedFinetune
from xtuner.model.dpo import DPO
from xtuner.model.orpo import ORPO

from components.dashboards import PackVisualizer, ThroughputHook
from components.finetune import PatchedFinetune
from components.memory_watch import MemoryWatchHook
from components.paged_adamw_8bit import PagedAdamW8bit
from components.preference import PairTokenizer
from components.provenance import ProvenanceHook
from components.schedule import CosineLR, WarmupLR
from components.template_map import template_map_fn_factory


def recipe(**knobs) -> dict:
    """The config of a run: the five parts below, each given the knobs it names (its keyword
    arguments; their defaults are the 8 GB settings). An unknown knob is an error."""
    unknown = sorted(set(knobs) - {name for part in PARTS for name in _names(part)})
    if unknown:
        raise TypeError(f"recipe() got unknown knobs {unknown}; the knobs are the keyword "
                        "arguments of " + ", ".join(part.__name__ for part in PARTS))
    settings = {name: value for part in PARTS for name, value in (part.__kwdefaults__ or {}).items()}
    settings.update(knobs)
    settings.update(_call(model_part, settings))  # tokenizer, model
    settings.update(_call(data_part, settings))
    settings.update(_call(optimizer_part, settings))
    settings.update(_call(schedule_part, settings))
    settings.update(_call(runtime_part, settings))
    return dict(
        # The function's name in the run file is replaced by this note: a function cannot be
        # dumped with the config, and the dump then says where its settings came from.
        recipe="configs/_base_/recipe_8gb.py",
        # knobs kept at the top level, for readers and for `python -m doctor fit`
        pretrained_model_name_or_path=settings["model_path"],
        **{name: settings[name] for name in TOP_LEVEL},
        # XTuner's five parts
        **{name: settings[name] for name in PART_KEYS},
    )


TOP_LEVEL = ("prompt_template", "max_length", "pack_to_max_length", "batch_size",
             "accumulative_counts", "max_epochs", "preference")  # preference: doctor fit's x2
PART_KEYS = ("tokenizer", "model", "train_dataloader", "optim_wrapper", "param_scheduler",
             "train_cfg", "custom_hooks", "default_hooks", "env_cfg", "visualizer", "log_level",
             "load_from", "resume", "randomness", "log_processor")


def _names(part) -> tuple:
    """A part's keyword-only arguments (mmengine's lazy import leaves no `inspect` here)."""
    code = part.__code__
    return code.co_varnames[code.co_argcount:code.co_argcount + code.co_kwonlyargcount]


def _call(part, settings: dict) -> dict:
    return part(**{name: settings[name] for name in _names(part) if name in settings})


# ======================================================================================
#                          PART 1  Model: tokenizer, 4-bit base, LoRA
# ======================================================================================
def model_part(
    *,
    model_path,  # hub id or local directory
    prompt_template,
    revision=None,  # hub commit (or tag/branch) to load; None = the newest (docs/provenance.md)
    quantize=True,  # 4-bit nf4 base (QLoRA); False = standard LoRA on a 16-bit base
    dtype="float16",  # compute/storage dtype; fp16 runs on every 8 GB card (Turing has no bf16)
    model_type=None,  # None: SupervisedFinetune, or XTuner's DPO/ORPO for `preference`
    tokenizer=None,  # tokenizer dict; default: AutoTokenizer from model_path
    llm=None,  # model dict; default: AutoModelForCausalLM from model_path
    # run the model repository's own Python code: only for architectures transformers lacks
    # (InternLM, InternLM2: their presets say so); off, a repo's added modeling_*.py never runs
    trust_remote_code=False,
    # ---- LoRA ----
    lora_r=16,  # XTuner's r=64 costs ~2.6 GB of fp32 LoRA state on a 7B model
    lora_alpha=32,
    lora_dropout=0.05,
    lora_targets=None,  # None = every linear layer but the LM head (XTuner's default)
    # ---- memory patches (patches/, docs/memory.md) ----
    keep_16bit=True,  # frozen weights stay 16-bit: PEFT's fp32 upcast costs 1.6-2 GiB on 7B QLoRA
    loss_chunk=128,  # loss over 128 tokens of logits at a time (None = all logits at once)
    # long sequences (patches/sdpa_attention.py, offload_embeddings.py, offload_checkpoints.py,
    # fused_loss.py); the model presets (_base_/models.py) turn the offloads on where they pay
    sdpa_attention=True,  # InternLM/InternLM2 remote-code attention through SDPA (else a no-op)
    offload_embeddings=False,  # frozen, untied input embedding table in CPU memory
    offload_checkpoints=False,  # checkpointed layer inputs in pinned CPU memory
    fused_loss="auto",  # liger-kernel's fused loss on CUDA where installed, else loss_chunk's
    # ---- preference data: XTuner's DPO / ORPO trainers on chosen/rejected pairs ----
    preference=None,  # "dpo" | "orpo"; `dataset` then yields pairs (curation.convert.pairs).
    # Each example is two sequences (chosen, rejected) of up to max_length tokens, never packed;
    # the reference model is the LoRA model with its adapters disabled (no second copy); the
    # loss needs the full logits, so loss_chunk is off.
    beta=0.1,
    dpo_loss_type="sigmoid",  # XTuner's DPO losses: sigmoid, hinge, ipo, robust, ...
):
    if preference not in (None, "dpo", "orpo"):
        raise ValueError(f"preference={preference!r}: choose 'dpo', 'orpo' or None")
    if model_type is None:
        model_type = dict(dpo=DPO, orpo=ORPO).get(preference, SupervisedFinetune)
    if preference:
        loss_chunk = None  # chunked_ce returns only the loss; DPO/ORPO read the logits
        fused_loss = None  # likewise a fused linear cross-entropy
    if tokenizer is None:
        tokenizer = dict(
            type=AutoTokenizer.from_pretrained,
            pretrained_model_name_or_path=model_path,
            revision=revision,
            trust_remote_code=trust_remote_code,
            padding_side="right",
        )
        if preference:  # pairs are formatted by the chat template: make it the prompt template
            tokenizer.update(type=PairTokenizer, prompt_template=prompt_template)
    if llm is None:
        llm = dict(
            type=AutoModelForCausalLM.from_pretrained,
            pretrained_model_name_or_path=model_path,
            revision=revision,
            trust_remote_code=trust_remote_code,
            torch_dtype=_torch_dtype(dtype),
        )
    if quantize:
        llm = dict(llm, quantization_config=_nf4(dtype))

    # The memory patches come with the model type the runner builds (components/finetune.py).
    memory_knobs = dict(keep_16bit=keep_16bit, loss_chunk=loss_chunk,
                        sdpa_attention=sdpa_attention, offload_embeddings=offload_embeddings,
                        offload_checkpoints=offload_checkpoints, fused_loss=fused_loss)
    if any(memory_knobs.values()):
        built_as = dict(type=PatchedFinetune, base=model_type, **memory_knobs)
    else:
        built_as = dict(type=model_type)
    if preference == "dpo":
        built_as.update(beta=beta, loss_type=dpo_loss_type)
    elif preference == "orpo":
        built_as.update(beta=beta)
    lora = dict(type=LoraConfig, r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                target_modules=None if lora_targets is None else list(lora_targets),
                bias="none", task_type="CAUSAL_LM")
    return dict(tokenizer=tokenizer,
                model=dict(**built_as, use_varlen_attn=False, llm=llm, lora=lora))


def _torch_dtype(dtype: str):
    return dict(bfloat16=torch.bfloat16, float16=torch.float16, float32=torch.float32)[dtype]


def _nf4(dtype: str) -> dict:
    """QLoRA's 4-bit base: nf4 with double quantization, computing in `dtype`."""
    return dict(
        type=BitsAndBytesConfig,
        load_in_4bit=True,
        load_in_8bit=False,
        llm_int8_threshold=6.0,
        llm_int8_has_fp16_weight=False,
        bnb_4bit_compute_dtype=_torch_dtype(dtype),
        bnb_4bit_use_double_quant=True,  # 0.37 bit/param less than plain nf4
        bnb_4bit_quant_type="nf4",
    )


# ======================================================================================
#                  PART 2  Data: SFT conversations, or preference pairs
# ======================================================================================
def data_part(
    *,
    tokenizer,
    prompt_template,
    system,
    preference,
    dataset,  # dataset dict, e.g. dict(type=load_conversations, source="alpaca")
    # record -> {"conversation": [...]}; None: the pack's converters already write that form
    dataset_map_fn=None,
    max_length=1024,  # tokens per packed sequence; activations and logits scale with it
    pack_to_max_length=True,
    max_dataset_length=None,  # random subset of that many conversations (None = all)
    map_num_proc=4,  # XTuner's 32 starts 20 processes even on a 2-core machine
    batch_size=1,
    infinite_sampler=False,  # no 2 s pause at epoch ends (tiny CPU runs have many)
):
    if preference:
        if max_dataset_length:
            dataset = dict(dataset, limit=max_dataset_length)  # curation.convert.pairs.load_pairs
        train_dataset = dict(
            type=build_preference_dataset,
            dataset=dataset,
            tokenizer=tokenizer,
            max_length=max_length,  # per sequence: chosen and rejected each
            dataset_map_fn=dataset_map_fn,
            is_dpo=True,  # the pair format of DPO and ORPO alike (XTuner's own ORPO configs)
            is_reward=False,
            reward_token_id=-1,
            num_proc=map_num_proc,
            use_varlen_attn=False,  # varlen packing needs flash-attn, which 8 GB cards lack
        )
        collate_fn = dict(type=preference_collate_fn, use_varlen_attn=False)
    else:
        train_dataset = dict(
            type=process_hf_dataset,
            dataset=dataset,
            tokenizer=tokenizer,
            max_length=max_length,
            dataset_map_fn=dataset_map_fn,
            max_dataset_length=max_dataset_length,
            template_map_fn=dict(type=template_map_fn_factory, template=prompt_template,
                                 system=system),
            remove_unused_columns=True,
            shuffle_before_pack=True,
            pack_to_max_length=pack_to_max_length,
            use_varlen_attn=False,
            map_num_proc=map_num_proc,
        )
        collate_fn = dict(type=default_collate_fn, use_varlen_attn=False)
    return dict(train_dataloader=dict(
        batch_size=batch_size,
        num_workers=0,
        dataset=train_dataset,
        sampler=dict(type=InfiniteSampler if infinite_sampler else DefaultSampler, shuffle=True),
        collate_fn=collate_fn,
    ))


# ======================================================================================
#                      PART 3  Optimizer: 8-bit AdamW, clipping, AMP
# ======================================================================================
def optimizer_part(
    *,
    dtype,
    optimizer="paged_adamw_8bit",  # or "adamw" (torch's fp32 AdamW, 4x the state)
    lr=2e-4,
    weight_decay=0.0,
    max_norm=1.0,
    accumulative_counts=16,  # effective batch of 16 packed sequences
    amp=True,  # AmpOptimWrapper; mmengine refuses it on the CPU
):
    optimizer_type = dict(paged_adamw_8bit=PagedAdamW8bit, adamw=AdamW)[optimizer]
    wrapper = dict(
        type=OptimWrapper,
        optimizer=dict(type=optimizer_type, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay),
        clip_grad=dict(max_norm=max_norm, error_if_nonfinite=False),
        accumulative_counts=accumulative_counts,
    )
    if amp:
        wrapper.update(type=AmpOptimWrapper, loss_scale="dynamic", dtype=dtype)  # fp16 or bf16
    return dict(optim_wrapper=wrapper)


# ======================================================================================
#                      PART 4  Schedule: warm-up, cosine decay, epochs
# ======================================================================================
def schedule_part(
    *,
    max_epochs=1,
    warmup_ratio=0.03,
):
    param_scheduler = [
        # components/schedule.py: a warm-up of at least two iterations however small the data
        dict(type=WarmupLR, start_factor=1e-5, by_epoch=True, begin=0,
             end=warmup_ratio * max_epochs, convert_to_iter_based=True),
        dict(type=CosineLR, eta_min=0.0, by_epoch=True,
             begin=warmup_ratio * max_epochs, end=max_epochs, convert_to_iter_based=True),
    ]
    return dict(param_scheduler=param_scheduler,
                train_cfg=dict(type=TrainLoop, max_epochs=max_epochs))


# ======================================================================================
#              PART 5  Runtime: hooks, checkpoints, dashboards, distribution
# ======================================================================================
def runtime_part(
    *,
    tokenizer,
    prompt_template,
    save_steps=500,
    save_total_limit=2,
    evaluation_freq=500,
    evaluation_inputs=("Please tell me five scenic spots in Shanghai",),
    system="",  # the default system prompt: training conversations without one, the chat hook,
    # eval and the exported chat template (components/template_map.py)
    max_new_tokens=256,
    log_interval=10,
    seed=None,
    # NPROC_PER_NODE=N xtuner train ...: nccl where CUDA is, gloo on the CPU (resolved at start:
    # patches/cpu_distributed.py)
    dist_backend="auto",
    # dashboards (components/dashboards.py): vis_data/scalars.json is always written
    report_to=("tensorboard",),  # + "wandb"
    wandb_init=None,  # wandb.init kwargs, e.g. dict(project="xtuner-8gb", mode="offline")
):
    custom_hooks = [
        dict(type=DatasetInfoHook, tokenizer=tokenizer),
        dict(
            type=EvaluateChatHook,
            tokenizer=tokenizer,
            every_n_iters=evaluation_freq,
            evaluation_inputs=list(evaluation_inputs),
            system=system,
            prompt_template=prompt_template,
            max_new_tokens=max_new_tokens,
        ),
        dict(type=ProvenanceHook),  # what the run is made of -> work_dir/provenance.json
        dict(type=MemoryWatchHook),  # measured peak vs doctor fit -> work_dir/memory.json
        dict(type=ThroughputHook, window=log_interval),  # tokens_per_sec in the log line
    ]
    default_hooks = dict(
        timer=dict(type=IterTimerHook),
        logger=dict(type=LoggerHook, log_metric_by_epoch=False, interval=log_interval),
        param_scheduler=dict(type=ParamSchedulerHook),
        checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=save_steps,
                        max_keep_ckpts=save_total_limit),
        sampler_seed=dict(type=DistSamplerSeedHook),
    )
    return dict(
        custom_hooks=custom_hooks,
        default_hooks=default_hooks,
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
            dist_cfg=dict(backend=dist_backend),
        ),
        visualizer=dict(type=PackVisualizer, report_to=report_to, wandb_init=wandb_init),
        log_level="INFO",
        load_from=None,
        resume=False,
        randomness=dict(seed=seed, deterministic=False),
        log_processor=dict(by_epoch=False),
    )


PARTS = (model_part, data_part, optimizer_part, schedule_part, runtime_part)
