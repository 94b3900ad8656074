# The pack's shared recipe: every config in configs/ is this recipe plus its own knobs.
#
# A run file does
#     with read_base():
#         from ._base_.datasets import alpaca               # the dataset's preset (datasets.py)
#         from ._base_.models import qwen2_5_7b_instruct   # the model's preset (models.py)
#         from ._base_.recipe_8gb import *
#     ... knobs ...
#     globals().update(recipe(**qwen2_5_7b_instruct, **alpaca, max_epochs=...))
# mmengine reads these files in lazy-import mode: the imports below become LazyObjects that are
# resolved only when the runner builds them, and a function defined here can be called by the run
# file to lay out XTuner's five config parts (model, data, optimizer, schedule, runtime) from its
# knobs. That keeps the run files to what differs and this recipe in one place.
#
# Defaults are the 8 GB settings. XTuner's stock QLoRA recipe (r=64 on every linear layer,
# 2048 packed tokens) does not fit 8 GB for 7B models; see README "Memory" and
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
from components.schedule import CosineLR, WarmupLR
from components.template_map import template_map_fn_factory


def recipe(
    *,
    # ---- model ----
    model_path,  # hub id or local directory
    quantize=True,  # 4-bit nf4 base (QLoRA); False = standard LoRA on a 16-bit base
    dtype="float16",  # compute/storage dtype; fp16 runs on every 8 GB card (Turing has no bf16)
    model_type=None,  # None: SupervisedFinetune, or XTuner's DPO/ORPO for `preference`
    tokenizer=None,  # tokenizer dict; default: AutoTokenizer from model_path
    llm=None,  # model dict; default: AutoModelForCausalLM from model_path
    trust_remote_code=True,
    # ---- LoRA ----
    lora_r=16,  # XTuner's r=64 costs ~2.6 GB of fp32 LoRA state on a 7B model
    lora_alpha=32,
    lora_dropout=0.05,
    lora_targets=None,  # None = every linear layer but the LM head (XTuner's default)
    # ---- memory patches (patches/, docs/memory.md) ----
    keep_16bit=True,  # frozen weights stay 16-bit: PEFT's fp32 upcast costs 1.6-2 GiB on 7B QLoRA
    loss_chunk=128,  # loss over 128 tokens of logits at a time (None = all logits at once)
    optimizer="paged_adamw_8bit",  # or "adamw" (torch's fp32 AdamW, 4x the state)
    # long sequences (patches/sdpa_attention.py, offload_embeddings.py, offload_checkpoints.py,
    # fused_loss.py); the model presets (_base_/models.py) turn the offloads on where they pay
    sdpa_attention=True,  # InternLM/InternLM2 remote-code attention through SDPA (else a no-op)
    offload_embeddings=False,  # frozen, untied input embedding table in CPU memory
    offload_checkpoints=False,  # checkpointed layer inputs in pinned CPU memory
    fused_loss="auto",  # liger-kernel's fused loss on CUDA where installed, else loss_chunk's
    # ---- data ----
    dataset,  # dataset dict, e.g. dict(type=load_dataset, path="tatsu-lab/alpaca")
    dataset_map_fn,  # record -> {"conversation": [...]}, None if already in that form
    prompt_template,
    max_length=1024,  # tokens per packed sequence; activations and logits scale with it
    pack_to_max_length=True,
    max_dataset_length=None,  # random subset of that many conversations (None = all)
    map_num_proc=4,  # XTuner's 32 starts 20 processes even on a 2-core machine
    # ---- preference data: XTuner's DPO / ORPO trainers on chosen/rejected pairs ----
    preference=None,  # "dpo" | "orpo"; `dataset` then yields pairs (curation.convert.pairs).
    # Each example is two sequences (chosen, rejected) of up to max_length tokens, never packed;
    # the reference model is the LoRA model with its adapters disabled (no second copy); the
    # loss needs the full logits, so loss_chunk is off.
    beta=0.1,
    dpo_loss_type="sigmoid",  # XTuner's DPO losses: sigmoid, hinge, ipo, robust, ...
    # ---- optimisation ----
    batch_size=1,
    accumulative_counts=16,  # effective batch of 16 packed sequences
    max_epochs=1,
    lr=2e-4,
    weight_decay=0.0,
    max_norm=1.0,
    warmup_ratio=0.03,
    amp=True,  # AmpOptimWrapper; mmengine refuses it on the CPU
    infinite_sampler=False,  # no 2 s pause at epoch ends (tiny CPU runs have many)
    # ---- runtime ----
    save_steps=500,
    save_total_limit=2,
    evaluation_freq=500,
    evaluation_inputs=("Please tell me five scenic spots in Shanghai",),
    system="",  # the default system prompt: training conversations without one, the chat hook,
    # eval and the exported chat template (components/template_map.py)
    max_new_tokens=256,
    log_interval=10,
    seed=None,
    # ---- distributed (NPROC_PER_NODE=N xtuner train ...; README "More than one GPU") ----
    dist_backend="auto",  # nccl where CUDA is, gloo on the CPU (resolved at start: patches/cpu_distributed.py)
    # ---- dashboards (components/dashboards.py) ----
    report_to=("tensorboard",),  # + "wandb"; vis_data/scalars.json is always written
    wandb_init=None,  # wandb.init kwargs, e.g. dict(project="xtuner-8gb", mode="offline")
):
    if preference not in (None, "dpo", "orpo"):
        raise ValueError(f"preference={preference!r}: choose 'dpo', 'orpo' or None")
    if model_type is None:
        model_type = dict(dpo=DPO, orpo=ORPO).get(preference, SupervisedFinetune)
    if preference:
        loss_chunk = None  # chunked_ce returns only the loss; DPO/ORPO read the logits
        fused_loss = None  # likewise a fused linear cross-entropy
    torch_dtype = dict(bfloat16=torch.bfloat16, float16=torch.float16, float32=torch.float32)[dtype]
    if tokenizer is None:
        tokenizer = dict(
            type=AutoTokenizer.from_pretrained,
            pretrained_model_name_or_path=model_path,
            trust_remote_code=trust_remote_code,
            padding_side="right",
        )
        if preference:  # pairs are formatted by the chat template: make it the prompt template
            tokenizer.update(type=PairTokenizer, prompt_template=prompt_template)
    quantization_config = None
    if quantize:
        quantization_config = dict(
            type=BitsAndBytesConfig,
            load_in_4bit=True,
            load_in_8bit=False,
            llm_int8_threshold=6.0,
            llm_int8_has_fp16_weight=False,
            bnb_4bit_compute_dtype=torch_dtype,
            bnb_4bit_use_double_quant=True,  # 0.37 bit/param less than plain nf4
            bnb_4bit_quant_type="nf4",
        )
    if llm is None:
        llm = dict(
            type=AutoModelForCausalLM.from_pretrained,
            pretrained_model_name_or_path=model_path,
            trust_remote_code=trust_remote_code,
            torch_dtype=torch_dtype,
        )
    if quantization_config is not None:
        llm = dict(llm, quantization_config=quantization_config)

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
    model = dict(
        **built_as,
        use_varlen_attn=False,
        llm=llm,
        lora=dict(
            type=LoraConfig,
            r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=None if lora_targets is None else list(lora_targets),
            bias="none",
            task_type="CAUSAL_LM",
        ),
    )

    train_dataset = dict(
        type=process_hf_dataset,
        dataset=dataset,
        tokenizer=tokenizer,
        max_length=max_length,
        dataset_map_fn=dataset_map_fn,
        max_dataset_length=max_dataset_length,
        template_map_fn=dict(type=template_map_fn_factory, template=prompt_template, system=system),
        remove_unused_columns=True,
        shuffle_before_pack=True,
        pack_to_max_length=pack_to_max_length,
        use_varlen_attn=False,
        map_num_proc=map_num_proc,
    )
    collate_fn = dict(type=default_collate_fn, use_varlen_attn=False)
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
    train_dataloader = dict(
        batch_size=batch_size,
        num_workers=0,
        dataset=train_dataset,
        sampler=dict(type=InfiniteSampler if infinite_sampler else DefaultSampler, shuffle=True),
        collate_fn=collate_fn,
    )

    optimizer_type = dict(paged_adamw_8bit=PagedAdamW8bit, adamw=AdamW)[optimizer]
    optimizer = dict(type=optimizer_type, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)
    clip_grad = dict(max_norm=max_norm, error_if_nonfinite=False)
    if amp:
        optim_wrapper = dict(
            type=AmpOptimWrapper,
            optimizer=optimizer,
            clip_grad=clip_grad,
            accumulative_counts=accumulative_counts,
            loss_scale="dynamic",
            dtype=dtype,  # float16 or bfloat16
        )
    else:
        optim_wrapper = dict(
            type=OptimWrapper,
            optimizer=optimizer,
            clip_grad=clip_grad,
            accumulative_counts=accumulative_counts,
        )
    param_scheduler = [
        dict(  # components/schedule.py: at least one iteration however small the dataset
            type=WarmupLR,
            start_factor=1e-5,
            by_epoch=True,
            begin=0,
            end=warmup_ratio * max_epochs,
            convert_to_iter_based=True,
        ),
        dict(
            type=CosineLR,
            eta_min=0.0,
            by_epoch=True,
            begin=warmup_ratio * max_epochs,
            end=max_epochs,
            convert_to_iter_based=True,
        ),
    ]
    train_cfg = dict(type=TrainLoop, max_epochs=max_epochs)

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
        dict(type=MemoryWatchHook),  # measured peak vs doctor fit -> work_dir/memory.json
        dict(type=ThroughputHook, window=log_interval),  # tokens_per_sec in the log line
    ]
    default_hooks = dict(
        timer=dict(type=IterTimerHook),
        logger=dict(type=LoggerHook, log_metric_by_epoch=False, interval=log_interval),
        param_scheduler=dict(type=ParamSchedulerHook),
        checkpoint=dict(
            type=CheckpointHook,
            by_epoch=False,
            interval=save_steps,
            max_keep_ckpts=save_total_limit,
        ),
        sampler_seed=dict(type=DistSamplerSeedHook),
    )

    return dict(
        # The function's name in the run file is replaced by this note: a function cannot be
        # dumped with the config, and the dump then says where its settings came from.
        recipe="configs/_base_/recipe_8gb.py",
        # knobs kept at the top level, for readers and for `python -m doctor fit`
        pretrained_model_name_or_path=model_path,
        prompt_template=prompt_template,
        max_length=max_length,
        pack_to_max_length=pack_to_max_length,
        batch_size=batch_size,
        accumulative_counts=accumulative_counts,
        max_epochs=max_epochs,
        preference=preference,  # doctor fit: two sequences per example
        # XTuner's five parts
        tokenizer=tokenizer,
        model=model,
        train_dataloader=train_dataloader,
        optim_wrapper=optim_wrapper,
        param_scheduler=param_scheduler,
        train_cfg=train_cfg,
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
