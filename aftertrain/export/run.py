"""`python -m aftertrain export CONFIG --adapter DIR`: the merged model as GGUF (f16 and Q4_K_M)
for llama.cpp / Ollama / LM Studio, in the chat template the config trains with, an Ollama
Modelfile beside it, and (--check) the round trip against the merged HF model."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from pathlib import Path

from doctor.atomic import write_json

from ..config import ConfigReadError, ensure_model, read_config
from . import llamacpp, provenance
from .llamacpp import ExportError
from .log import ExportLog


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
    p.add_argument("--provenance", help="the run's provenance.json, written into the GGUF's "
                   "metadata (default: the one in the --adapter or --merged directory)")
    return p


class Steps:
    """The terminal's view of the export: one line per step with what it made and its time."""

    def __init__(self, total: int):
        self.total, self.done = total, 0

    @contextlib.contextmanager
    def step(self, what: str):
        self.done += 1
        started = time.monotonic()
        result = {}
        yield result  # the step puts its one-line outcome in result["line"]
        print(f"[{self.done}/{self.total}] {what}: {result.get('line', 'done')} "
              f"({time.monotonic() - started:.0f} s)", flush=True)


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.0f} MiB"


def merged_model(args, spec, out: Path, steps: Steps, log: ExportLog) -> Path:
    if args.merged:
        merged = Path(args.merged)
    else:
        ensure_model(spec)
        from .merge import merge_as_trained  # as the config loads the base: revision, trust

        with steps.step("merge, the base as the config loads it") as r:
            log.section(f"merge {spec.model_path} + {args.adapter}")
            with log.native():
                merged = merge_as_trained(spec, Path(args.adapter), out / "merged")
            r["line"] = f"{spec.model_path} + {args.adapter} -> {merged}"
    if not (merged / "config.json").is_file():
        raise ExportError(f"{merged}: no config.json (not a Hugging Face model directory)")
    return merged


def convert_f16(spec, merged: Path, out: Path, prov, steps: Steps, log: ExportLog):
    """llama.cpp's converter on the merged model, staged with the training template, the run's
    provenance in its metadata."""
    with steps.step("GGUF f16 (llama.cpp's convert_hf_to_gguf.py)") as r:
        staged = llamacpp.stage(merged, spec.template, out / "staged", system=spec.system)
        f16 = out / "model-f16.gguf"
        with provenance.into_gguf(prov):  # what it was made from, in its metadata
            llamacpp.convert([[str(staged.path), "--outfile", str(f16), "--outtype", "f16",
                               "--model-name", merged.name]], log)
        meta = llamacpp.gguf_metadata(f16)
        shutil.rmtree(staged.path)
        if meta["chat_template"] != staged.chat_template:
            raise ExportError(f"{f16}: the converter did not keep the chat template")
        if meta["eos_token"] != staged.eos_token:
            raise ExportError(f"{f16}: EOS is {meta['eos_token']!r}, expected "
                              f"{staged.eos_token!r}")
        r["line"] = f"{f16.name}, {_size(f16)}, the training chat template, EOS " \
                    f"{meta['eos_token']!r}"
    return f16, meta, staged


def quantize(f16: Path, kind: str, steps: Steps, log: ExportLog) -> Path:
    with steps.step(f"GGUF {kind} (llama.cpp's llama_model_quantize)") as r:
        q = llamacpp.quantize(f16, f16.with_name(f"model-{kind}.gguf"), kind, log=log)
        r["line"] = f"{q.name}, {_size(q)}"
        fallback = [x for x in log.tail(5).splitlines() if "required fallback" in x]
        if fallback:  # e.g. SmolLM2's 576-wide rows: Q5_0/Q8_0 where Q4_K needs 256
            r["line"] += "; llama.cpp: " + fallback[-1].split("WARNING: ", 1)[-1]
    return q


def modelfiles(spec, files: dict, meta: dict, stop: list[str], out: Path) -> Path:
    """`Modelfile` for the smallest GGUF; `Modelfile.f16` beside it when there is a quantized
    one."""
    for label, path in files.items():
        text = llamacpp.modelfile(Path(path).name, spec.template, bos_token=meta["bos_token"],
                                  eos_token=meta["eos_token"], stop=stop, system=spec.system)
        name = "Modelfile.f16" if label == "f16" and len(files) > 1 else "Modelfile"
        (out / name).write_text(text)
    return out / "Modelfile"


def round_trip(spec, merged: Path, f16: Path, question: str, steps: Steps, log: ExportLog):
    from .roundtrip import check

    with steps.step("round trip, the f16 GGUF in llama.cpp vs the merged HF model") as r:
        log.section(f"round trip: {question!r}")
        with log.native():
            rt = check(merged, f16, spec.template, question, system=spec.system,
                       trust_remote_code=spec.trust_remote_code)
        if not rt.ok:
            raise ExportError("round trip failed:\n  " + "\n  ".join(rt.problems()))
        r["line"] = (f"same prompt ({len(rt.ids_gguf)} tokens), same greedy tokens "
                     f"{rt.text_gguf!r}")
    return rt


def export(args) -> dict:
    spec = read_config(args.config)
    out = Path(args.out or Path("work_dirs") / spec.name / "gguf").resolve()
    if not args.merged and not args.adapter:
        raise ExportError("pass --adapter DIR (merged here) or --merged DIR")
    if args.adapter and not (Path(args.adapter) / "adapter_config.json").is_file():
        raise ExportError(f"{args.adapter}: no adapter_config.json (the output of `xtuner "
                          "convert pth_to_hf CONFIG CKPT DIR`)")
    quant = None if args.quant.lower() == "none" else args.quant
    steps = Steps(1 + bool(quant) + bool(args.check) + (not args.merged))
    out.mkdir(parents=True, exist_ok=True)
    with ExportLog(out / "export.log") as log:
        print(f"export {spec.config} -> {out}  (the tools' output: {log.path})", flush=True)
        merged = merged_model(args, spec, out, steps, log)
        try:
            prov = provenance.find(args.provenance, args.adapter, merged)
        except FileNotFoundError as exc:
            raise ExportError(str(exc)) from None
        f16, meta, staged = convert_f16(spec, merged, out, prov, steps, log)
        files = {"f16": str(f16)}
        if quant:
            files[quant] = str(quantize(f16, quant, steps, log))
        modelfile = modelfiles(spec, files, meta, staged.stop, out)
        result = dict(config=str(spec.config), merged=str(merged), gguf=files,
                      modelfile=str(modelfile), chat_template=meta["chat_template"],
                      eos_token=meta["eos_token"], stop=staged.stop, log=str(log.path),
                      provenance=prov)
        if args.check:
            rt = round_trip(spec, merged, f16, args.question, steps, log)
            result["roundtrip"] = dict(ok=rt.ok, prompt=rt.prompt_gguf, greedy_hf=rt.text_hf,
                                       greedy_gguf=rt.text_gguf, problems=rt.problems())
    write_json(out / "export.json", result)
    print("".join(f"GGUF   {p}\n" for p in files.values()), end="")
    print(f"Ollama {modelfile}  (ollama create NAME -f {modelfile})")
    print(f"chat template: XTuner's, EOS {meta['eos_token']!r}, stop {staged.stop}"
          + (f", default system prompt {spec.system!r}" if spec.system else ""))
    print(provenance.line(prov))
    return result


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        export(args)
    except (ExportError, ConfigReadError) as exc:
        print(f"aftertrain export: {exc}", file=sys.stderr)
        return 2
    return 0
