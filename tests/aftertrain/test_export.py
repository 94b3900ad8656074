"""`python -m aftertrain export` on a tiny model: llama.cpp's converter, its quantizer, the
Modelfile, and the round trip (same prompt tokens and greedy continuation in llama.cpp as in
the HF model)."""

from __future__ import annotations

import json
import sys

import pytest

from aftertrain.export import llamacpp
from tests.helpers import REPO, run

SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"


@pytest.fixture(scope="module")
def peaked_model(tmp_path_factory):
    """The tiny Llama with larger random weights: its next-token choice is clear-cut, as a trained
    model's is, so a greedy comparison tests the kernels and not near-ties."""
    from components import tiny

    return tiny.build(tmp_path_factory.mktemp("peaked") / "tiny", initializer_range=0.3)


@pytest.mark.slow
def test_export_gguf_modelfile_and_round_trip(tmp_path, peaked_model):
    out = run([sys.executable, "-m", "aftertrain", "export", SMOKE, "--merged", peaked_model,
               "--out", tmp_path, "--check"])
    assert out.returncode == 0, out.stdout[-3000:]
    result = json.loads((tmp_path / "export.json").read_text())
    assert result["roundtrip"]["ok"] is True, result["roundtrip"]
    f16, q4 = tmp_path / "model-f16.gguf", tmp_path / "model-Q4_K_M.gguf"
    assert f16.is_file() and q4.is_file()
    assert llamacpp.gguf_metadata(f16)["file_type"] == 1  # LLAMA_FTYPE_MOSTLY_F16
    assert llamacpp.gguf_metadata(q4)["file_type"] == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    modelfile = (tmp_path / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./model-Q4_K_M.gguf\n")
    assert 'PARAMETER stop "</s>"' in modelfile
    assert "<|User|>:" in modelfile and "<|Bot|>:" in modelfile
    assert "round trip, the f16 GGUF in llama.cpp vs the merged HF model: same prompt" in out.stdout
    assert "llama_model_loader" not in out.stdout  # llama.cpp's log went to export.log
    assert "llama_model_loader" in (tmp_path / "export.log").read_text()

    from llama_cpp import Llama

    llm = Llama(model_path=str(q4), n_ctx=128, verbose=False)
    assert len(llm("<|User|>:hi\n<|Bot|>:", max_tokens=4, temperature=0.0)["choices"]) == 1


def test_export_without_a_model_is_a_message(tmp_path):
    out = run([sys.executable, "-m", "aftertrain", "export", SMOKE, "--out", tmp_path])
    assert out.returncode == 2 and "--adapter" in out.stdout and "Traceback" not in out.stdout
    out = run([sys.executable, "-m", "aftertrain", "export", SMOKE, "--merged", tmp_path])
    assert out.returncode == 2 and "no config.json" in out.stdout


@pytest.mark.slow
def test_export_check_of_a_real_chatml_model_passes_in_a_few_lines(tmp_path, smollm2):
    """A real pretrained ChatML model (SmolLM2-135M-Instruct) under a real ChatML config: the
    round trip passes (it failed on every template with a SUFFIX), and llama.cpp's ~500 lines of
    per-tensor log go to export.log, not to the terminal."""
    config = REPO / "configs" / "qwen2_5_7b_qlora_orca_math_e1.py"
    out = run([sys.executable, "-m", "aftertrain", "export", config, "--merged", smollm2,
               "--out", tmp_path, "--check"])
    assert out.returncode == 0, out.stdout[-3000:]
    lines = out.stdout.splitlines()
    assert len(lines) <= 40, out.stdout
    result = json.loads((tmp_path / "export.json").read_text())
    assert result["roundtrip"]["ok"] is True, result["roundtrip"]
    assert result["roundtrip"]["prompt"].startswith("<|im_start|>user\nWhat is 12 + 30?")
    assert llamacpp.gguf_metadata(tmp_path / "model-Q4_K_M.gguf")["eos_token"] == "<|im_end|>"
    log = (tmp_path / "export.log").read_text()
    assert log.count("/ 272] blk.") == 270 and "/ 272] blk." not in out.stdout  # one per tensor
    assert "180 of 272 tensor(s) required fallback quantization" in out.stdout  # its one note
