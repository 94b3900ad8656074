"""doctor.provenance: what a run is made of, read from files. A Hugging Face cache built in the
layout huggingface_hub writes (refs/<branch> -> snapshots/<commit>/), holding InternLM2's
modeling code as XTuner ships it; `python -m doctor report` and the preflight report the remote
code's digest and whether the pack's patches know it, without importing torch."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from doctor import provenance
from tests.helpers import REPO, python, run, xtuner
from tests.patches.remote_edits import CHANGED, SOFTMAX

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO_ID = "internlm/internlm2-math-plus-7b"  # the model of the InternLM2 configs


def xtuner_internlm2() -> Path:
    import xtuner

    return Path(xtuner.__file__).parent / "_lite" / "modelings" / "internlm2"


def fake_cache(root: Path, *, edit: tuple[str, str] | None = None) -> Path:
    """A hub cache with REPO_ID at COMMIT (refs/main), its remote code and config.json."""
    snap = root / ("models--" + REPO_ID.replace("/", "--")) / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text(COMMIT)
    for name in ("configuration_internlm2.py", "modeling_internlm2.py"):
        shutil.copy(xtuner_internlm2() / name, snap / name)
    if edit:
        file = snap / "modeling_internlm2.py"
        file.write_text(file.read_text().replace(*edit))
    (snap / "config.json").write_text(json.dumps({
        "model_type": "internlm2", "architectures": ["InternLM2ForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config",
                     "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"}}))
    return root


def test_the_cache_resolves_a_branch_and_a_commit(tmp_path):
    cache = fake_cache(tmp_path)
    snap = provenance.hub_snapshot(cache, REPO_ID)
    assert snap is not None and snap.name == COMMIT
    assert provenance.hub_snapshot(cache, REPO_ID, COMMIT) == snap
    assert provenance.hub_snapshot(cache, REPO_ID, "f" * 40) is None  # not downloaded
    assert provenance.hub_snapshot(cache, "other/model") is None
    model = provenance.describe_model(REPO_ID, None, cache=cache, trust_remote_code=True)
    assert model["source"] == "hub" and model["commit"] == COMMIT
    assert model["remote_code"]["ran"] is True
    expected = {n: hashlib.sha256((snap / n).read_bytes()).hexdigest()
                for n in ("configuration_internlm2.py", "modeling_internlm2.py")}
    assert model["remote_code"]["files"] == expected


def test_the_remote_code_xtuner_ships_is_known_and_a_changed_one_is_not(tmp_path):
    known = provenance.remote_code(provenance.hub_snapshot(fake_cache(tmp_path / "a"), REPO_ID))
    sdpa = known["patches"]["sdpa_attention"]["InternLM2Attention"]
    assert "XTuner 0.2.0" in sdpa["known"]  # the version of the code XTuner ships
    assert known["patches"]["remote_code_generate"]["InternLM2ForCausalLM"]["known"]
    changed = provenance.remote_code(provenance.hub_snapshot(
        fake_cache(tmp_path / "b", edit=(SOFTMAX, CHANGED)), REPO_ID))
    sdpa = changed["patches"]["sdpa_attention"]["InternLM2Attention"]
    assert sdpa["known"] is None and sdpa["differs"] == ["InternLM2Attention.forward"]
    # the attention is not what remote_code_generate relies on
    assert changed["patches"]["remote_code_generate"]["InternLM2ForCausalLM"]["known"]
    assert changed["sha256"] != known["sha256"]


def test_fingerprints_ignore_comments_docstrings_annotations_and_layout():
    a = 'def f(x, y=1):\n    """Doc."""\n    return x + y  # sum\n'
    b = "# moved\ndef f(x: int,\n      y: int = 1) -> int:\n    return (x +\n            y)\n"
    c = "def f(x, y=2):\n    return x + y\n"  # another default: another function
    d = "def f(x, z=1):\n    return x + z\n"  # another signature
    fp = [provenance.fingerprints(s, ["f"])["f"] for s in (a, b, c, d)]
    assert fp[0] == fp[1] and len({fp[0], fp[2], fp[3]}) == 3
    assert provenance.fingerprints(a, ["g", "K.f"]) == {"g": None, "K.f": None}
    # a file that does not parse is unknown, not a traceback of the doctor
    assert provenance.fingerprints("def f(x:\n    return x\n", ["f"]) == {"f": None}


def test_a_local_directory_is_identified_by_its_files(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "w.bin").write_bytes(b"\0" * 10)
    first = provenance.describe_model(str(tmp_path / "m"), None, cache=tmp_path,
                                      trust_remote_code=False)
    shutil.copytree(tmp_path / "m", tmp_path / "copy")
    assert provenance.tree_digest(tmp_path / "copy") == first["files"]  # where they lie: no
    (tmp_path / "copy" / "w.bin").write_bytes(b"\1" * 10)
    assert provenance.tree_digest(tmp_path / "copy")["sha256"] != first["files"]["sha256"]
    assert first["source"] == "local" and "remote_code" not in first


def _work_dir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir(parents=True)
    (work / "provenance.json").write_text(json.dumps({
        "format": provenance.FORMAT, "created": "2026-12-07T00:00:00Z",
        "config": {"file": "configs/x.py", "cfg_options": {"model.llm.revision": COMMIT}},
        "model": {"name_or_path": REPO_ID, "revision": COMMIT, "commit": COMMIT,
                  "trust_remote_code": True, "source": "hub"},
        "dataset": {"name": "gsm8k", "source": "hub", "commit": "c" * 40},
        "decontamination": None, "stack": {"python": "3.11.7", "xtuner": "0.2.0"},
        "pack": {"commit": "d" * 40, "modified": []}}))
    return work


def test_doctor_report_shows_the_run_and_the_remote_code_in_the_cache(tmp_path):
    cache = fake_cache(tmp_path / "hub")
    out = run([sys.executable, "-m", "doctor", "report", "--work-dir", _work_dir(tmp_path)],
              HF_HUB_CACHE=str(cache))
    assert out.returncode in (0, 1), out.stdout[-2000:]
    text = out.stdout
    assert "**Provenance of the run**" in text
    assert f"- model: {REPO_ID} @ {COMMIT} (revision {COMMIT}), trust_remote_code=True" in text
    code = provenance.remote_code(provenance.hub_snapshot(cache, REPO_ID))
    assert (f"- {REPO_ID} @ {COMMIT} (main): sha256 {code['sha256']} "
            "(configuration_internlm2.py, modeling_internlm2.py)") in text
    assert ("  - sdpa_attention / InternLM2Attention: known (InternLM2's hub code since "
            "2024-07") in text
    as_json = json.loads(run([sys.executable, "-m", "doctor", "report", "--json", "--work-dir",
                              _work_dir(tmp_path / "j")], HF_HUB_CACHE=str(cache)).stdout)
    assert as_json["provenance"]["model"]["commit"] == COMMIT
    assert as_json["summary"]["remote_code"][0]["sha256"] == code["sha256"]


def test_doctor_report_of_a_dir_without_provenance_is_a_message(tmp_path):
    out = run([sys.executable, "-m", "doctor", "report", "--work-dir", tmp_path])
    assert out.returncode == 2 and f"{tmp_path}: no provenance.json" in out.stdout
    assert "Traceback" not in out.stdout


def test_the_doctor_reads_it_without_torch(tmp_path):
    cache = fake_cache(tmp_path / "hub")
    out = python("import sys\nfrom doctor import report\n"
                 f"report.main(['--work-dir', {str(_work_dir(tmp_path))!r}])\n"
                 "print('HEAVY', sorted(m for m in ('torch', 'transformers') if m in "
                 "sys.modules))", HF_HUB_CACHE=str(cache))
    assert "HEAVY []" in out.stdout


@pytest.mark.parametrize("edit", [None, (SOFTMAX, CHANGED)], ids=["known", "changed"])
def test_the_preflight_reports_the_digest_and_what_a_patch_would_refuse(tmp_path, edit,
                                                                          monkeypatch):
    from doctor import preflight

    cache = fake_cache(tmp_path / "hub", edit=edit)
    config = REPO / "configs" / "internlm2_math_plus_7b_qlora_gsm8k_e3.py"
    out = xtuner("train", config, HF_HUB_CACHE=str(cache))  # no GPU here: it stops after
    code = provenance.remote_code(provenance.hub_snapshot(cache, REPO_ID))
    assert (f"xtuner-8gb-pack preflight: {REPO_ID} @ {COMMIT} runs its own code "
            f"(trust_remote_code): sha256 {code['sha256']}") in out.stdout
    cfg = preflight.load_config(preflight.Run(str(config)))
    _, problems = preflight.remote_code_facts(cfg, str(cache))
    off = dict(cfg, model=dict(cfg["model"], sdpa_attention=False))
    assert preflight.remote_code_facts(off, str(cache))[1] == []  # the patch is off
    if edit is None:
        assert problems == []
    else:
        (p,) = problems
        assert p.summary.startswith(f"sdpa_attention was not written for {REPO_ID} @ {COMMIT}'s "
                                    "InternLM2Attention (modeling_internlm2.py: "
                                    "InternLM2Attention.forward differ)")


def test_the_fingerprint_command_a_maintainer_adds_a_version_with(tmp_path):
    """`python -m doctor.provenance FILE` (docs/provenance.md): per patch and class, the
    fingerprints to add to doctor/data/remote_code.json, and whether they are known."""
    changed = tmp_path / "modeling_internlm2.py"
    changed.write_text((xtuner_internlm2() / "modeling_internlm2.py").read_text()
                       .replace(SOFTMAX, CHANGED))
    out = run([sys.executable, "-m", "doctor.provenance", changed])
    assert out.returncode == 0, out.stdout
    sdpa = json.loads(out.stdout)[str(changed)]["sdpa_attention"]["InternLM2Attention"]
    assert sdpa["known"] is None and sdpa["differs"] == ["InternLM2Attention.forward"]
    known = provenance.known_code()["sdpa_attention"]["InternLM2Attention"]["known"][0]
    assert sdpa["fingerprints"]["repeat_kv"] == known["fingerprints"]["repeat_kv"]
    assert sdpa["fingerprints"]["InternLM2Attention.forward"] != \
        known["fingerprints"]["InternLM2Attention.forward"]
