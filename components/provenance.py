"""`work_dirs/<name>/provenance.json`: what a training run is made of, written as it starts.

An adapter found months later must say which base weights, which data and which stack made it,
and a dataset or a model that changed on the hub must not change a run silently. When the
runner has built the model and the data (`before_run`), `ProvenanceHook` (in the recipe's
custom_hooks) writes, on the main process:

- config: the run file (path, sha256), its `--cfg-options`, and mmengine's dump of the merged
  config in the work dir (path, sha256, text);
- model: hub id and requested revision, the commit transformers loaded (`_commit_hash`, else the
  cache's refs), or for a local directory the sha256 of its files; `trust_remote_code`, and the
  remote code's files and digests (with the fingerprints the pack's patches check);
- tokenizer: the same, when it is not the model's;
- dataset: the pack's source (or the `load_dataset` path), split, requested revision and the
  commit in the cache, or the sha256 of the local files it was read from;
- decontamination: the report beside the data file (path, sha256), if any;
- stack: Python and every package of env/stack.txt as installed; pack: its git commit and the
  files modified since; patches: the startup patches selected and those in force.

Secrets are redacted as `python -m doctor report` redacts them (tokens, keys, the home
directory). `xtuner convert pth_to_hf` copies the file into the adapter
(patches/pth_to_hf_provenance.py), the export into the GGUF's metadata
(aftertrain/export/provenance.py); `python -m doctor report --work-dir DIR` shows it.
A section that cannot be read says why ({"error": ...}): provenance never stops a run.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from mmengine.hooks import Hook

REPO = Path(__file__).resolve().parents[1]


def _section(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - recorded, never fatal to the run
        return {"error": f"{type(exc).__name__}: {exc}"}


def _rel(path) -> str:
    p = Path(path).resolve()
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(p)


def _sha256(path) -> str:
    from doctor.provenance import sha256_file

    return sha256_file(path)


def _type_name(obj) -> str:
    name = getattr(obj, "__name__", None) or getattr(obj, "_module", None) or str(obj)
    return str(name).rsplit(".", 1)[-1]


def config_section(runner) -> dict:
    cfg = runner.cfg
    out: dict = {"file": None, "cfg_options": None}
    filename = getattr(cfg, "filename", None)
    if filename and Path(filename).is_file():
        out.update(file=_rel(filename), sha256=_sha256(filename))
    if Path(sys.argv[0]).name == "train.py":  # started by `xtuner train` (its tool's argv)
        from doctor.preflight import parse_train_args

        run = parse_train_args(sys.argv[1:])
        out["cfg_options"] = run.cfg_options if run else None
        out["argv"] = sys.argv[1:]
    dump = Path(runner.work_dir) / Path(filename or "").name
    if filename and dump.is_file():  # mmengine's dump: the config as this run merged it
        text = dump.read_text(encoding="utf-8", errors="replace")
        out["dump"] = dict(file=_rel(dump), sha256=hashlib.sha256(text.encode()).hexdigest(),
                           text=text)
    return out


def _hub_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _loaded_commit(runner) -> str | None:
    model = getattr(runner.model, "module", runner.model)  # DDP wraps it
    llm = getattr(model, "llm", None)
    if llm is None:
        return None
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    return getattr(getattr(base, "config", None), "_commit_hash", None)


def model_section(runner) -> dict:
    from doctor.provenance import describe_model

    llm = runner.cfg.model.llm
    out = describe_model(str(llm.pretrained_model_name_or_path), llm.get("revision"),
                         cache=_hub_cache(), trust_remote_code=llm.get("trust_remote_code"),
                         commit=_loaded_commit(runner))
    if out.get("source") == "local":
        out["path"] = _rel(llm.pretrained_model_name_or_path)
    return out


def tokenizer_section(runner) -> dict | None:
    from doctor.provenance import describe_model

    tok, llm = runner.cfg.get("tokenizer") or {}, runner.cfg.model.llm
    path = tok.get("pretrained_model_name_or_path")
    if not path or (str(path), tok.get("revision")) == (
            str(llm.pretrained_model_name_or_path), llm.get("revision")):
        return None  # the model's own
    return describe_model(str(path), tok.get("revision"), cache=_hub_cache(),
                          trust_remote_code=tok.get("trust_remote_code"))


def _data_spec(runner) -> dict:
    data = runner.cfg.train_dataloader.dataset
    return dict(data.get("dataset") or {})


def dataset_section(runner) -> dict:
    from doctor.provenance import describe_dataset_repo, files_digest

    spec = _data_spec(runner)
    kind = _type_name(spec.get("type"))
    out: dict = {"type": kind}
    if kind in ("load_conversations", "load_pairs"):
        from curation.convert.converters import get
        from curation.convert.load import ENV_VAR, env_files, local_files
        from curation.convert.pairs import PAIR_SOURCES

        name = spec["source"]
        source = PAIR_SOURCES[name] if kind == "load_pairs" else get(name)
        split = spec.get("split") or source.default_split
        out.update(name=name, split=split, revision=spec.get("revision"))
        if spec.get("data_files"):
            files = local_files(spec["data_files"], source, split)
            out.update(source="data_files", files=files_digest(files, _rel))
        elif os.environ.get(ENV_VAR):
            files, directory = env_files(source, split)
            out.update(source=f"{ENV_VAR}={directory}", files=files_digest(files, _rel))
        else:
            hub = describe_dataset_repo(source.hub_id, spec.get("revision") or source.hub_revision,
                                        cache=_hub_cache())
            out.update({k: v for k, v in hub.items() if k != "revision"})
        return out
    path, files = spec.get("path"), spec.get("data_files")
    out.update(name=str(path), revision=spec.get("revision"))
    if files:
        if isinstance(files, dict):
            files = [f for v in files.values() for f in (v if isinstance(v, list) else [v])]
        files = [files] if isinstance(files, str) else list(files)
        out.update(source="data_files", files=files_digest(files, _rel))
    elif path:
        hub = describe_dataset_repo(str(path), spec.get("revision"), cache=_hub_cache())
        out.update({k: v for k, v in hub.items() if k != "revision"})
    return out


def decontamination_section(dataset: dict) -> dict | None:
    from doctor.provenance import decontamination_report

    files = [REPO / f for f in ((dataset or {}).get("files") or {}).get("files") or []]
    report = decontamination_report(files)  # (REPO / an absolute path is that path)
    return None if report is None else {"path": _rel(report), "sha256": _sha256(report)}


def patches_section() -> dict:
    import patches

    return {"startup": patches.selected(), "in_force": sorted(patches.applied)}


def collect(runner) -> dict:
    from doctor.provenance import FORMAT, pack_commit, stack_versions

    dataset = _section(dataset_section, runner)
    prov = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "work_dir": _rel(runner.work_dir),
        "config": _section(config_section, runner),
        "model": _section(model_section, runner),
        "tokenizer": _section(tokenizer_section, runner),
        "dataset": dataset,
        "decontamination": _section(decontamination_section, dataset),
        "stack": _section(stack_versions),
        "pack": _section(pack_commit),
        "patches": _section(patches_section),
        "resumed_from": runner.cfg.get("load_from") if runner.cfg.get("resume") else None,
    }
    from doctor.report import Redactor  # the doctor's redactor: tokens, keys, home

    return Redactor(dict(os.environ))(prov)


class ProvenanceHook(Hook):
    priority = "VERY_HIGH"  # before the chat hook's first sample, which can fail

    def before_run(self, runner) -> None:
        from mmengine.dist import is_main_process

        if not is_main_process():
            return
        from doctor.atomic import write_json
        from doctor.provenance import FILE, summary_lines

        prov = collect(runner)
        path = write_json(Path(runner.work_dir) / FILE, prov)
        runner.logger.info("provenance: " + "\n  ".join(summary_lines(prov)) + f"\n  [{path}]")
