"""A tiny random Llama and a BPE tokenizer, made on the spot, so the whole XTuner path runs offline:
the model type the CPU smoke configs build (configs/smoke/), and the stand-in the tests train.

The smoke config (tiny_llama_qlora_oasst_cpu.py) builds its model through `TinyFinetune`, which
writes the model directory the first time it is needed: XTuner reads the model's config.json
before building anything, so the directory must exist by then. The tokenizer is a byte-level
BPE trained on the text it will see, plus the special tokens of the chat templates the pack uses,
so every template tokenizes its markers as single tokens, as real tokenizers do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

# Markers of XTuner templates that real tokenizers keep as single special tokens.
TEMPLATE_SPECIAL_TOKENS = [
    "<|im_start|>",  # ChatML: qwen_chat, internlm2_chat
    "<|im_end|>",
    "<|begin_of_text|>",  # llama3_chat
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<eoh>",  # internlm_chat
    "<eoa>",
]

ARCH = dict(  # 2 layers, 64 wide: ~150k parameters, trains in seconds on a CPU
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=1024,
    tie_word_embeddings=False,
)

SMOKE_DATA = Path(__file__).resolve().parents[1] / "configs" / "smoke" / "oasst_tiny.jsonl"


def _corpus(files) -> list[str]:
    texts = []
    for f in files:
        for line in Path(f).read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.extend(v for v in _strings(json.loads(line)))
    return texts


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def build_tokenizer(corpus: list[str], vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<s>", "</s>", *TEMPLATE_SPECIAL_TOKENS]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        additional_special_tokens=TEMPLATE_SPECIAL_TOKENS,
        model_input_names=["input_ids", "attention_mask"],  # as Llama's: no token_type_ids
    )


def _recipe(data_files, seed, arch) -> str:
    """What the built directory depends on; a directory built from another recipe is rebuilt."""
    digest = hashlib.sha256()
    for f in data_files:
        digest.update(Path(f).read_bytes())
    spec = dict(arch={**ARCH, **arch}, seed=seed, specials=TEMPLATE_SPECIAL_TOKENS,
                data=digest.hexdigest(), version=1)
    return json.dumps(spec, sort_keys=True)


def build(path: str | os.PathLike, data_files=(SMOKE_DATA,), seed: int = 0, **arch) -> Path:
    """Write a tiny random Llama and its tokenizer to `path` (atomically; kept if up to date)."""
    path = Path(path)
    recipe = _recipe(data_files, seed, arch)
    stamp = path / "tiny_recipe.json"
    if stamp.is_file() and stamp.read_text() == recipe:
        return path
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(_corpus(data_files))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{**ARCH, **arch},
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=path.name + ".", dir=path.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "tiny_recipe.json").write_text(recipe)
        if path.exists():  # built from an older recipe
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError:
        if not stamp.is_file():  # not a concurrent builder winning the race
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def TinyFinetune(*, llm, **kwargs):  # noqa: N802 - used as a `type` in configs, like a class
    """XTuner's SupervisedFinetune, after making the tiny model its `llm` dict points at."""
    from xtuner.model import SupervisedFinetune

    build(llm["pretrained_model_name_or_path"])
    return SupervisedFinetune(llm=llm, **kwargs)


def TinyDPO(*, llm, **kwargs):  # noqa: N802 - a `type` in configs
    """XTuner's DPO (reference = the adapters disabled), after making the tiny model."""
    from xtuner.model.dpo import DPO

    build(llm["pretrained_model_name_or_path"])
    return DPO(llm=llm, **kwargs)


def cpu_twin(cfg, model_dir, data_files, *, max_length=128, max_epochs=4, lr=3e-3, seed=0):
    """The same config on a tiny model, on the CPU, offline: its recipe, template, converter and
    hooks unchanged; only the model, the data files and what a CPU cannot do are swapped.

    `cfg` is an mmengine Config of a run file; `data_files` are local files in the schema its
    dataset expects. Dump the result (`cfg.dump(path)`) and run it with `xtuner train path`.
    """
    from mmengine.config.lazy import LazyObject

    float32 = LazyObject("torch").float32
    real_model = cfg.model.llm.pretrained_model_name_or_path

    def swap(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pretrained_model_name_or_path" and value == real_model:
                    node[key] = str(model_dir)
                else:
                    swap(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                swap(value)

    swap(cfg._cfg_dict)
    cfg.pretrained_model_name_or_path = str(model_dir)
    llm = cfg.model.llm
    llm.torch_dtype = float32  # CPU: no fp16 AMP
    if llm.get("quantization_config"):
        llm.quantization_config.bnb_4bit_compute_dtype = float32
    if cfg.model.get("lora") and cfg.model.lora.get("target_modules"):
        # named for the real architecture (InternLM2's wqkv...): the tiny Llama's are all linears
        cfg.model.lora.target_modules = None
    optim = cfg.optim_wrapper
    optim.type = LazyObject("mmengine.optim", "OptimWrapper")  # AmpOptimWrapper refuses the CPU
    for key in ("loss_scale", "dtype"):
        optim.pop(key, None)
    optim.accumulative_counts = 1
    optim.optimizer.lr = lr  # a random tiny model needs a larger step to show the loss falling
    warmup, cosine = cfg.param_scheduler  # the recipe's schedule, over the twin's few epochs
    warmup.end = cosine.begin = max_epochs / 4
    cosine.end = max_epochs

    data = cfg.train_dataloader.dataset
    listed = data_files if isinstance(data_files, (list, tuple)) else [data_files]
    files = [str(f) for f in listed]
    if data.dataset.get("source"):  # curation.convert.load.load_conversations
        data.dataset.data_files = files
    else:  # datasets.load_dataset(hub id) -> the same loader on local JSON lines
        data.dataset.path = "json"
        data.dataset.data_files = dict(train=files)
    data.update(max_length=max_length, map_num_proc=1, max_dataset_length=None)
    cfg.train_dataloader.sampler.type = LazyObject("mmengine.dataset", "InfiniteSampler")
    cfg.train_cfg.max_epochs = max_epochs
    for hook in cfg.custom_hooks:
        if "every_n_iters" in hook:  # the chat hook: once before and once after training
            hook.update(every_n_iters=10**6, max_new_tokens=8)
    cfg.default_hooks.checkpoint.interval = 10**6  # only the final checkpoint
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=seed, deterministic=False)
    return cfg


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="directory to write the model and tokenizer to")
    parser.add_argument("--data", action="append", help="JSONL files to train the tokenizer on")
    args = parser.parse_args(argv)
    print(build(args.path, data_files=args.data or (SMOKE_DATA,)))


if __name__ == "__main__":
    main()
