"""bench/remote_code_check.py, the check a maintainer runs on a modeling file before adding its
version to doctor/data/remote_code.json (docs/provenance.md): it passes the code the patches were
written for, on every rotary variant its config selects, and fails code for which a patch would
compute something else. It runs in a subprocess: it treats the file's version as known in its
own process."""

import shutil
import sys
from pathlib import Path

from bench.remote_models import REMOTE
from doctor import provenance
from tests.helpers import run
from tests.patches.remote_edits import CHANGED, SOFTMAX


def check(file: Path):
    return run([sys.executable, "-m", "bench.remote_code_check", file])


def test_the_code_the_patches_were_written_for_passes():
    import xtuner

    out = check(Path(xtuner.__file__).parent / "_lite/modelings/internlm2/modeling_internlm2.py")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "[FAIL]" not in out.stdout and "\nVERIFIED." in out.stdout
    for variant in ("defaults", "rope_scaling dynamic, beyond max_position_embeddings"):
        assert f"[ok] {variant}: rope swap: as xtuner train builds it, the model's own logits" \
            in out.stdout
        assert f"[ok] {variant}: sdpa: loss and LoRA gradients, padded fp32" in out.stdout
        assert f"[ok] {variant}: generate: with a KV cache equals without" in out.stdout
    # the fingerprints it prints are those the patches know this code by
    known = provenance.known_code()["sdpa_attention"]["InternLM2Attention"]["known"]
    assert any(e["fingerprints"]["InternLM2Attention.forward"] in out.stdout for e in known)


def test_an_attention_that_computes_otherwise_fails(tmp_path):
    source = tmp_path / "internlm"
    shutil.copytree(REMOTE / "internlm", source)
    file = source / "modeling_internlm.py"
    file.write_text(file.read_text().replace(SOFTMAX, CHANGED))  # attention weights halved
    out = check(file)
    assert out.returncode == 1, out.stdout[-3000:]
    assert "[ok] defaults: generate: remote_code_generate handles the class" in out.stdout
    # the stand-in's config has no rope_theta, as InternLM-7B's: XTuner's swap still builds it
    assert ("[ok] defaults: rope swap: as xtuner train builds it, the model's own logits: "
            "rotary ['xtuner:InternLMRotaryEmbedding']") in out.stdout
    assert "[FAIL] defaults: sdpa: loss and LoRA gradients, packed fp32" in out.stdout
    assert "[FAIL] defaults: generate: with a KV cache equals without" in out.stdout
    assert "NOT VERIFIED" in out.stdout


def test_every_known_version_says_what_it_is_and_what_checked_it():
    """doctor/data/remote_code.json: an entry per version, each member fingerprinted, its origin
    (what a run reports), the evidence for it and the check that passed on it."""
    for patch, classes in provenance.known_code().items():
        for cls, spec in classes.items():
            prints = [tuple(e["fingerprints"][m] for m in spec["members"]) for e in spec["known"]]
            assert len(set(prints)) == len(prints), (patch, cls)  # no version twice
            for entry in spec["known"]:
                assert set(entry) == {"origin", "evidence", "checked", "fingerprints"}
                assert set(entry["fingerprints"]) == set(spec["members"])
                assert all(len(v) == 64 for v in entry["fingerprints"].values())
                assert entry["evidence"] and entry["checked"]
