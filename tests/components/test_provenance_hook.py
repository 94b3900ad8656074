"""components.provenance: `xtuner train` writes work_dirs/<name>/provenance.json as training
starts: the config and its --cfg-options, the model's files, the data's files and its
decontamination report, the stack, the pack's commit, the patches in force; secrets and the
home directory redacted as `python -m doctor report` redacts them."""

import json
import shutil

import pytest

from doctor.provenance import read, sha256_file, tree_digest
from tests.helpers import REPO, xtuner

SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"
TOKEN = "hf_" + "Ab1" * 12  # shaped like a Hugging Face token


@pytest.mark.slow
def test_xtuner_train_records_what_the_run_is_made_of(tmp_path):
    from components import tiny

    home = tmp_path / "home" / "someone"
    data = home / "data"
    data.mkdir(parents=True)
    shutil.copy(REPO / "configs" / "smoke" / "oasst_tiny.jsonl", data / "oasst_clean.jsonl")
    (data / "oasst_report.jsonl").write_text('{"summary": {"removed": 0}}\n')
    work = tmp_path / "work"
    out = xtuner("train", SMOKE, "--work-dir", work, "--cfg-options", "train_cfg.max_epochs=1",
                 f"train_dataloader.dataset.dataset.data_files={data / 'oasst_clean.jsonl'}",
                 f"note={TOKEN}", HOME=str(home), HF_TOKEN="not-a-real-token-1234",
                 HF_HOME=str(tmp_path / "hf"))
    assert out.returncode == 0, out.stdout[-3000:]
    text = (work / "provenance.json").read_text()
    assert TOKEN not in text and str(home) not in text and "not-a-real-token" not in text
    prov = read(work)
    assert "provenance: run: configs/smoke/tiny_llama_qlora_oasst_cpu.py --cfg-options " \
           "train_cfg.max_epochs=1" in out.stdout  # the summary in the training log

    config = prov["config"]
    assert config["file"] == "configs/smoke/tiny_llama_qlora_oasst_cpu.py"
    assert config["sha256"] == sha256_file(SMOKE)
    assert config["cfg_options"] == {
        "train_cfg.max_epochs": 1,
        "train_dataloader.dataset.dataset.data_files": "~/data/oasst_clean.jsonl",
        "note": "<redacted token>"}
    assert "max_epochs=1" in config["dump"]["text"]  # the merged config the run used

    model = prov["model"]
    assert model["source"] == "local" and model["path"] == ".cache/tiny-llama"
    assert model["files"] == tree_digest(tiny.build(REPO / ".cache" / "tiny-llama"))
    assert model["trust_remote_code"] is False and model["revision"] is None
    assert prov["tokenizer"] is None  # the model's own

    dataset = prov["dataset"]
    assert dataset["name"] == "guanaco" and dataset["source"] == "data_files"
    assert dataset["files"]["files"] == {
        "~/data/oasst_clean.jsonl": sha256_file(REPO / "configs/smoke/oasst_tiny.jsonl")}
    assert prov["decontamination"] == {"path": "~/data/oasst_report.jsonl",
                                       "sha256": sha256_file(data / "oasst_report.jsonl")}

    assert prov["stack"]["xtuner"] == "0.2.0" and prov["stack"]["python"]
    assert len(prov["pack"]["commit"]) == 40
    assert {"xtuner_llm_config", "keep_16bit", "chunked_ce"} <= set(prov["patches"]["in_force"])
    assert prov["resumed_from"] is None
    assert not any(isinstance(v, dict) and "error" in v for v in prov.values()), prov
    json.dumps(prov)  # plain JSON all through
