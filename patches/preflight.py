"""`xtuner train CONFIG` on a machine that cannot run it fails minutes later, in 264 lines.

Without this patch a 7B config on a machine without a GPU prints mmengine's environment dump,
the config, two tracebacks and transformers' `OSError: We couldn't connect to
'https://huggingface.co'`; on a GPU that is too small the user learns it from a CUDA OOM after
the download and the tokenization. So before `xtuner train` starts its tool (in the `xtuner`
process, before torch is imported), this checks what the config needs on this machine and stops
with one message and exit status 1:

- the config trains on a GPU (mixed precision or DeepSpeed) and there is no NVIDIA GPU;
- torch, the driver or bitsandbytes cannot use the GPU (the doctor's own checks and fixes);
- it does not fit this GPU by `doctor fit` (the knobs to turn, first first);
- its model or dataset is not in the local cache while the hub is offline or unreachable
  (which one, and the download command).

XTUNER_PACK_FORCE=1 prints the same findings and starts the run anyway. A preflight that cannot
decide (a config doctor fit cannot read, a bug here) never stops a run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TARGET = "xtuner.entry_point"
FORCE = "XTUNER_PACK_FORCE"
EXIT = 1
PREFIX = "xtuner-8gb-pack preflight"


# ---- what the run is ----------------------------------------------------------------------


class Run:
    """`xtuner train`'s arguments, as its tool (xtuner/tools/train.py) reads them. (Plain
    classes here: this module is imported at every interpreter start, dataclasses costs 16 ms.)"""

    def __init__(self, config: str, cfg_options: dict | None = None,
                 deepspeed: str | None = None):
        self.config = config  # resolved as the tool resolves it (a path, or a config's name)
        self.cfg_options = dict(cfg_options or {})
        self.deepspeed = deepspeed


def parse_train_args(argv: list[str]) -> Run | None:
    """The run `xtuner train ARGV` starts; None when ARGV asks for help or names no config."""
    import argparse

    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("config", nargs="?")
    parser.add_argument("--deepspeed")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={})
    parser.add_argument("-h", "--help", action="store_true")
    try:
        args, _ = parser.parse_known_args(argv)
    except SystemExit:  # the tool itself reports bad usage
        return None
    if args.help or not args.config:
        return None
    config = args.config
    if not os.path.isfile(config):
        from xtuner.configs import cfgs_name_path

        if config not in cfgs_name_path:
            return None  # the tool says "Cannot find ..."
        config = cfgs_name_path[config]
    return Run(config, dict(args.cfg_options or {}), args.deepspeed)


def load_config(run: Run) -> dict:
    """The config as the tool will see it (its --cfg-options merged), without importing torch:
    mmengine's lazy mode, read as LazyObjects, never resolved."""
    from mmengine.config import Config

    cfg = Config.fromfile(run.config, lazy_import=True)
    if run.cfg_options:
        cfg.merge_from_dict(run.cfg_options)
    return cfg._to_lazy_dict()


def config_for_fit(run: Run, workdir: Path) -> str:
    """A path doctor fit can read: the file itself, or a dump with the --cfg-options merged."""
    if not run.cfg_options:
        return run.config
    from mmengine.config import Config

    cfg = Config.fromfile(run.config, lazy_import=True)
    cfg.merge_from_dict(run.cfg_options)
    path = workdir / Path(run.config).name
    cfg.dump(str(path))
    return str(path)


def type_name(obj) -> str:
    from doctor.fit.config import _name

    return _name(obj)


def needs_gpu(cfg: dict, run: Run) -> str | None:
    """Why this config cannot train on a CPU, or None. mmengine's AmpOptimWrapper asserts a GPU
    (the pack's CPU configs and tests' CPU twins use OptimWrapper); DeepSpeed needs CUDA too."""
    if run.deepspeed:
        return f"--deepspeed {run.deepspeed}"
    wrapper = (cfg.get("optim_wrapper") or {}).get("type")
    if type_name(wrapper) == "AmpOptimWrapper":
        return "16-bit mixed precision (AmpOptimWrapper), which mmengine runs on a GPU only"
    return None


# ---- doctor fit -----------------------------------------------------------------------------


def fit_report(config: str, *, gpu_mem: float | None = None, deepspeed: str | None = None) -> dict:
    """doctor fit's verdict: the dict `python -m doctor fit CONFIG --json` prints."""
    from doctor.fit import fit_report as report

    return report(config, gpu_mem=gpu_mem, deepspeed=deepspeed)


def estimate_text(report: dict) -> str:
    total, upper = report.get("total_gb"), report.get("upper_gb")
    band = f" (up to {upper:.2f})" if upper is not None and upper > total + 0.005 else ""
    return f"{total:.2f} GiB{band}"


def knob_lines(report: dict, limit: int = 5, indent: str = "    ") -> list[str]:
    advice = list(report.get("advice") or [])
    lines = [f"{indent}{'turn first: ' if i == 0 else 'then:       '}{a}"
             for i, a in enumerate(advice[:limit])]
    if len(advice) > limit:
        lines.append(f"{indent}(`python -m doctor fit CONFIG` lists {len(advice) - limit} more)")
    return lines


# ---- the machine ----------------------------------------------------------------------------


class Problem:
    def __init__(self, summary: str, fix: list[str] | None = None):
        self.summary = summary
        self.fix = list(fix or [])  # lines shown under it, indented


def doctor_findings(facts, ids: tuple[str, ...]) -> list[Problem]:
    """The doctor's failing checks among `ids`, each with its fix (doctor/checks/)."""
    from doctor import checks
    from doctor.check import run_one, select

    chosen, _ = select(checks.load(), list(ids))
    problems = []
    for c in chosen:
        finding = run_one(c, facts)
        if finding.status == "fail":
            fix = finding.fix
            lines = [fix.text] if fix and fix.text else []
            lines += [f"$ {cmd}" for cmd in (fix.commands if fix else [])]
            problems.append(Problem(f"{finding.id}: {finding.summary}", lines[:6]))
    return problems


def gpu_label(gpu) -> str:
    total = f", {gpu.memory_total / 2**30:.2f} GiB" if gpu.memory_total else ""
    return f"GPU {gpu.index} ({gpu.name}{total})"


# ---- model and data in the cache ------------------------------------------------------------


def _is_hub_id(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", name)) and not os.path.exists(name)


def _model_cached(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo, "config.json")
    if not isinstance(config, str):
        return False
    snapshot = Path(config).parent
    return any(snapshot.glob("*.safetensors")) or any(snapshot.glob("*.bin")) or any(
        snapshot.glob("*.index.json"))


def _dataset_cached(repo: str, filename: str | None = None) -> bool:
    from huggingface_hub import constants, try_to_load_from_cache

    if filename:
        return isinstance(try_to_load_from_cache(repo, filename, repo_type="dataset"), str)
    hub = Path(constants.HF_HUB_CACHE) / ("datasets--" + repo.replace("/", "--")) / "snapshots"
    if hub.is_dir() and any(hub.iterdir()):
        return True
    datasets_cache = Path(os.environ.get("HF_DATASETS_CACHE")
                          or Path(constants.HF_HOME) / "datasets")
    return (datasets_cache / repo.replace("/", "___")).is_dir()


def hub_offline() -> str | None:
    """Why the hub cannot be reached (offline by setting, or no connection), or None."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE=1"
    if os.environ.get("TRANSFORMERS_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return "TRANSFORMERS_OFFLINE=1"
    import socket
    from urllib.parse import urlparse

    from doctor.probe import ProbeTimeout, bounded

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https"
                                                                 else 80)
    try:
        bounded(lambda: socket.create_connection((host, port), timeout=3).close(), 4)
    except (OSError, ProbeTimeout) as exc:
        return f"{host} is not reachable: {exc}"
    return None


def cache_problems(cfg: dict, config: str) -> list[Problem]:
    """The model and the dataset the run would download, where they are not in the cache."""
    wanted: list[tuple[str, str, list[str]]] = []  # (what, name, fix lines)
    llm = (cfg.get("model") or {}).get("llm") or {}
    model = str(llm.get("pretrained_model_name_or_path") or "")
    if model and _is_hub_id(model) and not _model_cached(model):
        wanted.append(("model", model, [
            f"$ huggingface-cli download {model}",
            "or a local copy: --cfg-options model.llm.pretrained_model_name_or_path=DIR "
            "tokenizer.pretrained_model_name_or_path=DIR"]))
    data = ((cfg.get("train_dataloader") or {}).get("dataset") or {}).get("dataset") or {}
    kind = type_name(data.get("type"))
    if kind == "load_conversations" and not data.get("data_files"):
        problem = _pack_dataset_problem(data)
        if problem:
            wanted.append(problem)
    elif kind == "load_dataset":
        path = str(data.get("path") or "")
        if _is_hub_id(path) and not data.get("data_files") and not _dataset_cached(path):
            wanted.append(("dataset", path, [
                f"$ huggingface-cli download --repo-type dataset {path}"]))
    if not wanted:
        return []
    offline = hub_offline()
    if not offline:
        return []
    return [Problem(f"{what} {name} is not in the local cache, and the hub is offline "
                    f"({offline})", fix) for what, name, fix in wanted]


def _pack_dataset_problem(data: dict):
    """A dataset of the pack (curation's load_conversations): XTUNER_PACK_DATA, else the hub."""
    from curation.convert.converters import get
    from curation.convert.load import ENV_VAR, SourceError, env_files
    from curation.convert.readers import DataFileError

    source = get(str(data.get("source")))
    split = data.get("split") or source.default_split
    if os.environ.get(ENV_VAR):
        try:
            env_files(source, split)
        except (SourceError, DataFileError) as exc:
            return ("dataset", source.hub_id, [str(exc)])
        return None
    if _dataset_cached(source.hub_id, source.hub_file):
        return None
    return ("dataset", f"{source.hub_id} ({source.name})", [
        f"$ huggingface-cli download --repo-type dataset {source.hub_id} "
        f"--local-dir DIR/{source.hub_id}",
        f"then {ENV_VAR}=DIR xtuner train ... (or --cfg-options "
        "train_dataloader.dataset.dataset.data_files=FILE)"])


def remote_code_facts(cfg: dict) -> tuple[list[str], list[Problem]]:
    """The remote code the run trusts (doctor.provenance): its digest, and the patches in force
    that would refuse it."""
    from huggingface_hub import constants

    from doctor.provenance import preflight_remote_code
    from patches import selected

    model = cfg.get("model") or {}
    on = {"sdpa_attention": bool(model.get("sdpa_attention")),
          "remote_code_generate": "remote_code_generate" in selected()}
    info, found = preflight_remote_code(model.get("llm") or {}, constants.HF_HUB_CACHE, on)
    return info, [Problem(summary, fix) for summary, fix in found]


# ---- the check ------------------------------------------------------------------------------


def check(run: Run) -> list[str]:
    """The message that stops `run` on this machine (lines), or [] when it may start."""
    import tempfile

    from doctor.facts import Facts
    from doctor.probe import Machine

    cfg = load_config(run)
    name = run.config
    facts = Facts(Machine.from_environ())
    remote_info, remote_problems = remote_code_facts(cfg)  # the digest of the code it trusts
    for line in remote_info:
        print(f"{PREFIX}: {line}", file=sys.stderr, flush=True)
    gpu_reason = needs_gpu(cfg, run)
    gpus = facts.gpus

    if gpu_reason and not gpus:
        driver = doctor_findings(facts, ("gpu.driver",))
        lines = [f"{PREFIX}: {name} needs an NVIDIA GPU, and this machine has none."]
        for p in driver:
            lines += [f"  {p.summary}", *(f"    {f}" for f in p.fix)]
        lines.append(f"  It trains with {gpu_reason}.")
        try:
            report = fit_report(name, gpu_mem=8.0, deepspeed=run.deepspeed)
            lines.append(f"  doctor fit puts its peak at {estimate_text(report)} on an 8 GiB card.")
        except Exception:  # noqa: BLE001 - the estimate is extra information here
            pass
        lines += ["  What runs here: `make smoke` (the same recipe on a tiny model, on the CPU).",
                  "  `python -m doctor check` says what this machine has."]
        return lines

    problems: list[Problem] = []
    if gpus:
        label = gpu_label(gpus[0])
        try:
            with tempfile.TemporaryDirectory(prefix="xtuner-pack-preflight.") as tmp:
                # gpu_mem=None: doctor fit judges GPU 0's free memory (a desktop may hold some)
                report = fit_report(config_for_fit(run, Path(tmp)), deepspeed=run.deepspeed)
        except Exception:  # noqa: BLE001 - a config doctor fit cannot read is not stopped
            report = None
        if report and report.get("fits") is False:
            held = report.get("held_by_others_gb") or 0
            others = (f", {held:.2f} GiB of it held by other processes (`nvidia-smi` lists them)"
                      if held >= 0.05 else "")
            problems.append(Problem(
                f"does not fit {label}: doctor fit needs {estimate_text(report)}, "
                f"{report['budget_gb']:.2f} GiB usable{others}",
                knob_lines(report, limit=4, indent="")))
        ids = ["torch.cuda_build", "gpu.driver_cuda"]
        if ((cfg.get("model") or {}).get("llm") or {}).get("quantization_config"):
            ids += ["bnb.install", "bnb.cuda_lib", "bnb.arch"]
        problems += doctor_findings(facts, tuple(ids))
    problems += cache_problems(cfg, name)
    problems += remote_problems
    if not problems:
        return []
    lines = [f"{PREFIX}: {name} cannot train on this machine:"]
    for p in problems:
        lines += [f"  ✗ {p.summary}", *(f"      {f}" for f in p.fix)]
    lines.append("  `python -m doctor check` says more about this machine.")
    return lines


def stop_or_go(argv: list[str]) -> None:
    """Run the preflight for `xtuner train ARGV`: print its message and exit, or return."""
    try:
        run = parse_train_args(argv)
        lines = check(run) if run else []
    except Exception as exc:  # noqa: BLE001 - never stop a run for a bug of the preflight
        print(f"{PREFIX}: skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
        return
    if not lines:
        return
    force = os.environ.get(FORCE, "").strip() not in ("", "0")
    if force:
        lines.append(f"  {FORCE}={os.environ[FORCE]}: starting it anyway.")
    else:
        lines.append(f"  {FORCE}=1 xtuner train ... starts it anyway.")
    print("\n".join(lines), file=sys.stderr, flush=True)
    if not force:
        raise SystemExit(EXIT)  # xtuner's cli() catches Exception, not SystemExit


def apply(entry_point) -> None:
    train = entry_point.modes["train"]

    def preflight_then_train():
        # cli() calls this for `xtuner train ...`, before it starts the tool
        stop_or_go(sys.argv[2:])
        return train()

    entry_point.modes["train"] = preflight_then_train
