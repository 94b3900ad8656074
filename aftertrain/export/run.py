"""`python -m aftertrain export CONFIG --adapter DIR`: the merged model as GGUF (f16 and Q4_K_M)
for llama.cpp / Ollama / LM Studio, in the chat template the config trains with, an Ollama
Modelfile beside it, and (--check) the round trip against the merged HF model."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..config import ConfigReadError, ensure_model, read_config
from ..jsonio import write_json
from . import llamacpp
from .llamacpp import ExportError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aftertrain export",
                                description=__doc__.split("\n")[0])
    p.add_argument("config", help="the XTuner training config (base model and chat template)")
    p.add_argument("--adapter", help="the HF adapter of `xtuner convert pth_to_hf` (merged here)")
    p.add_argument("--merged", help="an already merged model directory instead of --adapter")
    p.add_argument("--out", help="output directory (default work_dirs/<config name>/gguf)")
    p.add_argument("--quant", default="Q4_K_M", help="llama.cpp quantization after f16 "
                   "(Q4_K_M, Q5_K_M, Q8_0; 'none' for f16 only)")
    p.add_argument("--check", action="store_true", help="round trip: the f16 GGUF in llama.cpp vs "
                   "the merged HF model, same prompt and greedy continuation")
    p.add_argument("--question", default="What is 12 + 30?", help="the round trip's prompt")
    return p


def merge(spec, adapter: Path, out: Path, log: Path) -> Path:
    """XTuner's own `xtuner convert merge BASE ADAPTER OUT` on the CPU."""
    exe = shutil.which("xtuner", path=str(Path(sys.executable).parent)) or "xtuner"
    with open(log, "w") as f:
        rc = subprocess.run([exe, "convert", "merge", spec.model_path, str(adapter), str(out),
                             "--device", "cpu"], stdout=f, stderr=subprocess.STDOUT,
                            env=dict(os.environ, HF_HUB_OFFLINE="1")).returncode
    if rc != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-12:])
        raise ExportError(f"`xtuner convert merge` exited {rc}; end of {log}:\n{tail}")
    return out


def export(args) -> dict:
    spec = read_config(args.config)
    out = Path(args.out or Path("work_dirs") / spec.name / "gguf").resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.merged:
        merged = Path(args.merged)
    elif args.adapter:
        if not (Path(args.adapter) / "adapter_config.json").is_file():
            raise ExportError(f"{args.adapter}: no adapter_config.json (the output of `xtuner "
                              "convert pth_to_hf CONFIG CKPT DIR`)")
        ensure_model(spec)
        merged = merge(spec, Path(args.adapter), out / "merged", out / "merge.log")
    else:
        raise ExportError("pass --adapter DIR (merged here) or --merged DIR")
    if not (merged / "config.json").is_file():
        raise ExportError(f"{merged}: no config.json (not a Hugging Face model directory)")

    staged = llamacpp.stage(merged, spec.template, out / "staged", system=spec.system)
    f16 = out / "model-f16.gguf"
    llamacpp.convert([[str(staged.path), "--outfile", str(f16), "--outtype", "f16"]],
                     out / "convert.log")
    meta = llamacpp.gguf_metadata(f16)
    if meta["chat_template"] != staged.chat_template:
        raise ExportError(f"{f16}: the converter did not keep the chat template")
    if meta["eos_token"] != staged.eos_token:
        raise ExportError(f"{f16}: EOS is {meta['eos_token']!r}, expected {staged.eos_token!r}")
    files = {"f16": str(f16)}
    if args.quant.lower() != "none":
        q = llamacpp.quantize(f16, out / f"model-{args.quant}.gguf", args.quant)
        files[args.quant] = str(q)
    for label, path in files.items():
        text = llamacpp.modelfile(Path(path).name, spec.template, bos_token=meta["bos_token"],
                                  eos_token=meta["eos_token"], stop=staged.stop,
                                  system=spec.system)
        # `Modelfile` for the smallest file; the f16 one beside it when there is a quantized one
        name = "Modelfile.f16" if label == "f16" and len(files) > 1 else "Modelfile"
        (out / name).write_text(text)
    shutil.rmtree(staged.path)
    result = dict(config=str(spec.config), merged=str(merged), gguf=files,
                  modelfile=str(out / "Modelfile"), chat_template=meta["chat_template"],
                  eos_token=meta["eos_token"], stop=staged.stop)
    print(f"GGUF   {f16}" + "".join(f"\nGGUF   {p}" for k, p in files.items() if k != "f16"))
    print(f"Ollama {out / 'Modelfile'}  (ollama create NAME -f {out / 'Modelfile'})")
    print(f"chat template: XTuner's, EOS {meta['eos_token']!r}, stop {staged.stop}")
    if args.check:
        from .roundtrip import check

        rt = check(merged, f16, spec.template, args.question, system=spec.system)
        result["roundtrip"] = dict(ok=rt.ok, prompt=rt.prompt_gguf, greedy_hf=rt.text_hf,
                                   greedy_gguf=rt.text_gguf, problems=rt.problems())
        if not rt.ok:
            raise ExportError("round trip failed:\n  " + "\n  ".join(rt.problems()))
        print(f"round trip: same prompt ({len(rt.ids_gguf)} tokens) and greedy continuation "
              f"in llama.cpp and HF: {rt.text_gguf!r}")
    write_json(out / "export.json", result)
    return result


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        export(args)
    except (ExportError, ConfigReadError) as exc:
        print(f"aftertrain export: {exc}", file=sys.stderr)
        return 2
    return 0
