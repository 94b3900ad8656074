"""Run llama.cpp's own convert_hf_to_gguf.py (from the llama-cpp-python sdist) one or more times,
each job the argument list of one converter run, in the calling process (`run_jobs`: the export
has torch and transformers imported by then; a separate process imported them again, ~7 s on a
2-core CPU).

Two adjustments, each only where the converter would otherwise stop:
- the sdist ships the converter without its gguf-py, so the `gguf` release from PyPI is used; that
  release predates `gguf.LazyChunkedTensor`, which the converter only creates for one sharded
  architecture (qwen4exp) and otherwise only tests with isinstance. A stand-in class nothing is an
  instance of keeps that test false, which is what it is for every other model.
- a byte-level BPE tokenizer the converter has no hash for (the smoke run's tiny tokenizer, or a
  new model) stops it with "BPE pre-tokenizer was not recognized". When the tokenizer.json's
  pre-tokenizer is exactly GPT-2's (ByteLevel with its regex, nothing else), the pre-tokenizer is
  GPT-2's and the converter is told so ("gpt-2"); anything else still stops it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import runpy
import sys
import traceback
from pathlib import Path


def gpt2_pretokenizer(model_dir: Path) -> bool:
    try:
        spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    pre = spec.get("pre_tokenizer") or {}
    return (pre.get("type") == "ByteLevel" and pre.get("use_regex", True)
            and not pre.get("add_prefix_space", False)
            and (spec.get("model") or {}).get("type") == "BPE")


def install_adjustments(model_dirs: list[Path]) -> None:
    import gguf

    if not hasattr(gguf, "LazyChunkedTensor"):
        class LazyChunkedTensor:  # noqa: D401 - see the module docstring
            """Stand-in: never instantiated outside qwen4exp."""

        gguf.LazyChunkedTensor = LazyChunkedTensor

    from conversion import base

    original = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer):
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            if Path(self.dir_model) in model_dirs and gpt2_pretokenizer(Path(self.dir_model)):
                return "gpt-2"
            raise

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre


def run_jobs(converter_dir: Path, jobs: list[list[str]], log=None) -> int:
    """Each job through the converter's `__main__`; its output (stdout, stderr, the logging it
    sets up) goes to `log`, a text file object. The first job that fails ends the run: its exit
    status, or 1 with the traceback in `log` when it raised. What the converter changes in this
    process (sys.path, sys.argv, NO_LOCAL_GGUF, the root logger) is put back afterwards."""
    log = log or sys.stdout
    root = logging.getLogger()
    saved_path, saved_argv, saved_env = list(sys.path), sys.argv, os.environ.get("NO_LOCAL_GGUF")
    saved_level, saved_handlers = root.level, list(root.handlers)
    os.environ["NO_LOCAL_GGUF"] = "1"  # the gguf release from PyPI (see above), not gguf-py
    sys.path.insert(0, str(converter_dir))
    script = str(converter_dir / "convert_hf_to_gguf.py")
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            install_adjustments([Path(job[0]).resolve() for job in jobs]
                                + [Path(job[0]) for job in jobs])
            for job in jobs:
                sys.argv = [script, *job]
                try:
                    runpy.run_path(script, run_name="__main__")
                except SystemExit as exc:
                    if exc.code not in (None, 0):
                        return int(exc.code) if isinstance(exc.code, int) else 1
                except Exception:  # the converter's own failure: reported, not raised
                    traceback.print_exc(file=log)
                    return 1
                finally:
                    for handler in root.handlers[:]:  # its basicConfig: bound to `log`
                        if handler not in saved_handlers:
                            root.removeHandler(handler)
        return 0
    finally:
        sys.path[:], sys.argv = saved_path, saved_argv
        if saved_env is None:
            os.environ.pop("NO_LOCAL_GGUF", None)
        else:
            os.environ["NO_LOCAL_GGUF"] = saved_env
        root.setLevel(saved_level)
