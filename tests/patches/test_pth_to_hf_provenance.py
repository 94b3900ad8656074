"""patches.pth_to_hf_provenance: `xtuner convert pth_to_hf` carries the run's provenance.json
from beside the checkpoint into the adapter directory, with the checkpoint it came from."""

import json

import pytest

from doctor.provenance import sha256_file
from tests.helpers import REPO, xtuner

SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_oasst_cpu.py"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A work dir as `xtuner train` leaves it: a checkpoint of the smoke model (its LoRA
    weights, as XTuner saves them) and provenance.json beside it."""
    import torch
    from mmengine.config import Config
    from xtuner.registry import BUILDER

    work = tmp_path_factory.mktemp("work")
    model = BUILDER.build(Config.fromfile(SMOKE).model)
    torch.save({"state_dict": model.state_dict(), "meta": {}}, work / "iter_7.pth")
    (work / "provenance.json").write_text(json.dumps({"model": {"name_or_path": "tiny"},
                                                      "format": "test"}))
    return work / "iter_7.pth"


@pytest.mark.slow
def test_the_adapter_carries_the_provenance_only_with_the_patch(checkpoint, tmp_path):
    plain = xtuner("convert", "pth_to_hf", SMOKE, checkpoint, tmp_path / "plain",
                   XTUNER_PACK_PATCHES="-pth_to_hf_provenance")
    assert plain.returncode == 0, plain.stdout[-2000:]
    assert (tmp_path / "plain" / "adapter_config.json").is_file()
    assert not (tmp_path / "plain" / "provenance.json").exists()  # XTuner copies the config only

    out = xtuner("convert", "pth_to_hf", SMOKE, checkpoint, tmp_path / "adapter")
    assert out.returncode == 0, out.stdout[-2000:]
    carried = json.loads((tmp_path / "adapter" / "provenance.json").read_text())
    assert carried == {"model": {"name_or_path": "tiny"}, "format": "test", "checkpoint": {
        "file": "iter_7.pth", "sha256": sha256_file(checkpoint)}}
    assert f"Provenance of {checkpoint} -> {tmp_path / 'adapter' / 'provenance.json'}" in \
        out.stdout
