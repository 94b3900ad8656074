"""The embedded default, end to end through the real `xtuner` commands (what `make smoke` runs)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doctor.provenance import sha256_file
from tests.helpers import REPO, offline_env, run, xtuner

SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"
FINAL = "iter_440.pth"  # the smoke config's 40 epochs of 11 packed sequences


def test_smoke_config_builds_an_nf4_qlora_model(tiny_model):
    """The smoke run is real QLoRA: bitsandbytes 4-bit layers with LoRA adapters on them."""
    from bitsandbytes.nn import Linear4bit
    from mmengine.config import Config
    from xtuner.registry import BUILDER

    cfg = Config.fromfile(SMOKE)
    cfg.model.llm.pretrained_model_name_or_path = str(tiny_model)
    model = BUILDER.build(cfg.model)
    quantized = [n for n, m in model.named_modules() if isinstance(m, Linear4bit)]
    assert len(quantized) == 14  # q,k,v,o,gate,up,down x 2 layers
    assert all(m.weight.quant_type == "nf4" for m in model.modules() if isinstance(m, Linear4bit))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


@pytest.mark.slow
def test_make_smoke_trains_converts_merges_and_answers(tmp_path):
    out = run([sys.executable, "-m", "demo.smoke", "--work-dir", tmp_path / "smoke"],
              timeout=1500)  # six steps: ~80 s idle, several minutes on a loaded 2-core machine
    assert out.returncode == 0, out.stdout[-3000:]
    first, last = map(float, out.stdout.split("loss ")[1].split()[0:3:2])
    assert last < first
    assert "smoke OK" in out.stdout
    assert f"pth_to_hf: {FINAL} ->" in out.stdout
    assert (tmp_path / "smoke" / "hf_adapter" / "adapter_config.json").is_file()
    merged = tmp_path / "smoke" / "merged"
    assert json.loads((merged / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    # aftertrain: a base-vs-tuned table, then a GGUF that llama.cpp runs like the merged model
    assert "[5/6] python -m aftertrain eval" in out.stdout
    assert "base+adapter" in out.stdout.split("[5/6]")[1]
    evaluated = json.loads((tmp_path / "smoke" / "eval.json").read_text())
    assert {r["model"] for r in evaluated["items"]} == {"base", "base+adapter"}
    exported = json.loads((tmp_path / "smoke" / "gguf" / "export.json").read_text())
    assert exported["roundtrip"]["ok"] is True
    assert Path(exported["gguf"]["Q4_K_M"]).is_file()
    assert f"[6/6] python -m aftertrain export: {exported['gguf']['Q4_K_M']}" in out.stdout
    answer = exported["roundtrip"]["greedy_hf"].split(exported["eos_token"])[0].strip()
    assert f"the merged model, asked 'What is the capital of France?': {answer!r}" in out.stdout
    assert exported["roundtrip"]["greedy_gguf"] == exported["roundtrip"]["greedy_hf"]
    # what the run was made of: written as it started, read back from the adapter and the GGUFs
    from aftertrain.export.provenance import from_gguf
    from doctor.provenance import read

    smoke = tmp_path / "smoke"
    started = read(smoke)
    assert started["config"]["file"] == "configs/smoke/tiny_llama_qlora_oasst_cpu.py"
    assert started["model"]["source"] == "local" and len(started["model"]["files"]["sha256"]) == 64
    assert started["model"]["trust_remote_code"] is False and "remote_code" not in started["model"]
    assert started["dataset"]["files"]["files"] == {
        "configs/smoke/oasst_tiny.jsonl": sha256_file(REPO / "configs/smoke/oasst_tiny.jsonl")}
    assert started["stack"]["xtuner"] == "0.2.0" and started["pack"]["commit"]
    adapter = read(smoke / "hf_adapter")
    assert adapter["checkpoint"]["file"] == FINAL
    assert {k: v for k, v in adapter.items() if k != "checkpoint"} == started
    for gguf in exported["gguf"].values():
        assert from_gguf(gguf) == adapter


@pytest.mark.slow
def test_xtuner_train_exits_nonzero_when_the_model_path_does_not_exist(tmp_path):
    out = xtuner("train", SMOKE, "--work-dir", tmp_path,
                 "--cfg-options", "model.llm.pretrained_model_name_or_path=/nonexistent/model",
                 "model.base=xtuner.model.SupervisedFinetune")  # not TinyFinetune, which builds it
    assert out.returncode != 0
    assert "/nonexistent/model" in out.stdout


def _train_until_first_checkpoint_then_kill(work_dir: Path, timeout=300) -> Path:
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "xtuner"), "train", str(SMOKE), "--work-dir",
         str(work_dir)], cwd=REPO, env=offline_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not (work_dir / "last_checkpoint").is_file():  # written after the checkpoint
            assert proc.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its child train.py
        proc.wait()
    return Path((work_dir / "last_checkpoint").read_text().strip())


@pytest.mark.slow
def test_a_run_killed_after_its_first_checkpoint_resumes_and_finishes(tmp_path):
    ckpt = _train_until_first_checkpoint_then_kill(tmp_path)
    assert ckpt.name == "iter_100.pth"
    assert not (tmp_path / FINAL).exists()

    # torch>=2.6 refuses mmengine's checkpoint without the resume_safe_globals patch
    broken = xtuner("train", SMOKE, "--work-dir", tmp_path, "--resume", ckpt,
                    XTUNER_PACK_PATCHES="-resume_safe_globals")
    assert broken.returncode != 0
    assert "Weights only load failed" in broken.stdout

    resumed = xtuner("train", SMOKE, "--work-dir", tmp_path, "--resume", ckpt)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "resumed epoch: " in resumed.stdout and "iter: 100" in resumed.stdout
    assert (tmp_path / FINAL).is_file()
