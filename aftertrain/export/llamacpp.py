"""A merged HF model -> GGUF (f16, then Q4_K_M) with llama.cpp's own tools, carrying the chat
template and stop tokens the model was trained with, and an Ollama Modelfile beside it.

- convert: llama.cpp's convert_hf_to_gguf.py, taken from the llama-cpp-python sdist pinned in
  env/stack.txt (`make env` unpacks it into .cache/llama.cpp/<version>/), run in this process
  by aftertrain.export.convert_hf;
- quantize: llama.cpp's llama_model_quantize through llama-cpp-python (the same library build);
- template: the converter writes tokenizer_config.json's `chat_template` as the GGUF's
  `tokenizer.chat_template`, so the model directory is staged (weights linked, not copied) with
  XTuner's template rendered as Jinja, and, for a template whose SUFFIX ends the turn
  (SUFFIX_AS_EOS: <|im_end|>, <|eot_id|>), that token as EOS, which is where llama.cpp and
  llama-cpp-python's chat handler stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from components import chat_template as templates

REPO = Path(__file__).resolve().parents[2]
CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion")  # what install.sh unpacks
ENV_DIR = "LLAMA_CPP_CONVERTER"  # a llama.cpp checkout (its convert_hf_to_gguf.py) instead


class ExportError(RuntimeError):
    """The export cannot go on; the message says why and what to do."""


def llama_cpp_pin() -> str:
    from doctor.facts import STACK, parse_stack

    for pin in parse_stack(STACK, STACK.read_text()).pins:
        if pin.name == "llama-cpp-python":
            return pin.version
    raise ExportError(f"{STACK}: no llama-cpp-python pin")


def converter_dir() -> Path:
    given = os.environ.get(ENV_DIR)
    where = Path(given) if given else REPO / ".cache" / "llama.cpp" / llama_cpp_pin()
    if not (where / "convert_hf_to_gguf.py").is_file():
        raise ExportError(f"{where}: no convert_hf_to_gguf.py: run `make env` (it unpacks "
                          "llama.cpp's converter from the llama-cpp-python sdist), or set "
                          f"{ENV_DIR}=<a llama.cpp checkout>")
    return where


@dataclass
class Staged:
    path: Path
    eos_token: str
    bos_token: str | None
    chat_template: str
    stop: list[str]


def stage(model_dir, template, out_dir, *, system: str = "") -> Staged:
    """`model_dir` as the converter should see it: the same files (linked) with the training
    template as its chat_template (`system`, the config's, its default system prompt) and the
    end-of-turn token as EOS."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    cfg_path = model_dir / "tokenizer_config.json"
    try:
        tok_cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{cfg_path}: cannot read the tokenizer config ({exc})") from None
    t = templates.as_dict(template)

    def content(tok):
        return tok.get("content") if isinstance(tok, dict) else tok

    eos, bos = content(tok_cfg.get("eos_token")), content(tok_cfg.get("bos_token"))
    if t.get("SUFFIX_AS_EOS") and t.get("SUFFIX"):
        eos = t["SUFFIX"].strip()
        added = {v.get("content") for v in (tok_cfg.get("added_tokens_decoder") or {}).values()}
        if added and eos not in added:
            raise ExportError(f"{cfg_path}: the template ends a turn with {eos!r}, which is "
                              "not a special token of this tokenizer: the model cannot have "
                              "learnt to stop")
        tok_cfg["eos_token"] = eos
    chat_template = templates.jinja(t, bos_token=templates.xtuner_bos(_tokenizer(model_dir)),
                                    system=system)
    tok_cfg["chat_template"] = chat_template
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for f in model_dir.iterdir():
        if f.name in ("tokenizer_config.json", "chat_template.jinja", "chat_template.json"):
            continue  # a template file beside the config would win over ours in the converter
        (out_dir / f.name).symlink_to(f.resolve())
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(tok_cfg, indent=1, ensure_ascii=False))
    return Staged(out_dir, eos, bos, chat_template, templates.stop_words(t, eos))


def _tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:
        raise ExportError(f"{model_dir}: cannot load its tokenizer ({exc})") from None


def convert(jobs: list[list[str]], log) -> None:
    """Run the converter on each argument list, in this process (torch is imported already); its
    output goes to `log` (an ExportLog, or a path for a file of its own)."""
    from .convert_hf import run_jobs
    from .log import ExportLog

    conv = converter_dir()
    own = not isinstance(log, ExportLog)
    log = ExportLog(log) if own else log
    try:
        log.section(f"llama.cpp's convert_hf_to_gguf.py ({conv})")
        rc = run_jobs(conv, jobs, log.file)
        if rc != 0:
            raise ExportError(f"llama.cpp's convert_hf_to_gguf.py exited {rc}; end of "
                              f"{log.path}:\n{log.tail()}")
    finally:
        if own:
            log.close()


QUANT_TYPES = {"Q4_K_M": 15, "Q5_K_M": 17, "Q8_0": 7}  # llama_ftype values (llama.h)


def quantize(src: Path, dst: Path, kind: str = "Q4_K_M", log=None) -> Path:
    """llama.cpp's llama_model_quantize, through llama-cpp-python's bindings; what llama.cpp
    prints (a line per tensor) goes to `log` (an ExportLog), else to the terminal."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ExportError(f"llama-cpp-python is not installed ({exc}): `make env` "
                          "builds it") from None
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}", QUANT_TYPES.get(kind))
    if ftype is None:
        raise ExportError(f"unknown quantization {kind!r}: one of {sorted(QUANT_TYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = os.cpu_count() or 1
    tmp = dst.with_name(dst.name + ".tmp")
    if log is not None:
        log.section(f"llama.cpp's llama_model_quantize {src.name} -> {dst.name} ({kind})")
    with log.native() if log is not None else contextlib.nullcontext():
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        where = f"; end of {log.path}:\n{log.tail()}" if log is not None else ""
        raise ExportError(f"llama_model_quantize({src} -> {kind}) failed with {rc}{where}")
    os.replace(tmp, dst)
    return dst


def gguf_metadata(path: Path) -> dict:
    """The GGUF's chat template, special tokens and their text, read with gguf-py."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def field(name):
        f = reader.fields.get(name)
        return None if f is None else f.contents()

    tokens = field("tokenizer.ggml.tokens") or []
    out = dict(chat_template=field("tokenizer.chat_template"),
               architecture=field("general.architecture"),
               file_type=field("general.file_type"))
    for kind in ("bos", "eos", "eot", "pad"):
        idx = field(f"tokenizer.ggml.{kind}_token_id")
        out[f"{kind}_token_id"] = idx
        out[f"{kind}_token"] = tokens[idx] if idx is not None and idx < len(tokens) else None
    return out


def modelfile(gguf_name: str, template, *, bos_token: str | None, eos_token: str,
              stop: list[str], system: str = "") -> str:
    """An Ollama Modelfile: FROM the GGUF, the training template, its stop strings, greedy-ish
    defaults left to Ollama, and the system prompt the config trains with (if any)."""
    lines = [f"FROM ./{gguf_name}",
             'TEMPLATE """' + templates.ollama_template(template, bos_token=bos_token or "",
                                                        eos_token=eos_token, system=system)
             + '"""']
    lines += [f"PARAMETER stop {json.dumps(s)}" for s in stop]
    if system:
        lines.append('SYSTEM """' + system + '"""')
    return "\n".join(lines) + "\n"
