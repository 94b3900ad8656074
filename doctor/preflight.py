"""`python -m doctor preflight CONFIG [--deepspeed X] [--cfg-options ...]`: what `xtuner train
CONFIG` checks before it starts (the startup patch `patches/preflight.py` calls `stop_or_go`).

Without it, `xtuner train CONFIG` on a machine that cannot run CONFIG fails minutes later, in 264
lines: a 7B config on a machine without a GPU prints mmengine's environment dump, the config, two
tracebacks and transformers' `OSError: We couldn't connect to 'https://huggingface.co'`; on a GPU
that is too small the user learns it from a CUDA OOM after the download and the tokenization. So
before the tool starts (in the `xtuner` process, before torch is imported) this checks what the
config needs on this machine and stops with one message and exit status 1:

- the config trains on a GPU (mixed precision or DeepSpeed) and there is no NVIDIA GPU;
- torch, the driver or bitsandbytes cannot use the GPU (the doctor's own checks and fixes);
- it does not fit the GPU the run sees by `doctor fit` (the knobs to turn, first first);
- its model or dataset is not in the local cache while the hub is offline or unreachable
  (which one, and the download command). A dataset loader of the config says itself what it
  would download: a loader function may carry `offline_need(**its config kwargs)`, returning
  `(name, fix lines)` when its data is not here (the pack's `load_conversations` does), so the
  doctor needs no import of the rooms above it.

XTUNER_PACK_FORCE=1 prints the same findings and starts the run anyway. A preflight that cannot
decide (a config doctor fit cannot read, a bug here) never stops a run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

FORCE = "XTUNER_PACK_FORCE"
EXIT = 1
PREFIX = "xtuner-8gb-pack preflight"


# ---- what the run is ----------------------------------------------------------------------


class Run:
    """`xtuner train`'s arguments, as its tool (xtuner/tools/train.py) reads them."""

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
    from .fit.config import _name

    return _name(obj)


def needs_gpu(cfg: dict, run: Run) -> str | None:
    """Why this config cannot train on a CPU, or None. mmengine's AmpOptimWrapper asserts a GPU
    (the pack's CPU configs and tests' CPU twins use OptimWrapper). Under --deepspeed XTuner
    swaps that wrapper for DeepSpeed's, whose fp16/bf16 need a GPU where the JSON turns them on;
    its "auto" follows the machine (fp32 on a CPU, as `make smoke-dist` trains ZeRO-2)."""
    wrapper = (cfg.get("optim_wrapper") or {}).get("type")
    if type_name(wrapper) == "AmpOptimWrapper":
        return "16-bit mixed precision (AmpOptimWrapper), which mmengine runs on a GPU only"
    if run.deepspeed:
        on = [k for k, v in deepspeed_json(run.deepspeed).items()
              if k in ("fp16", "bf16") and isinstance(v, dict) and v.get("enabled") is True]
        if on:
            return (f"--deepspeed {run.deepspeed} with {'/'.join(on)} on, which DeepSpeed runs "
                    "on a GPU")
    return None


def deepspeed_json(name: str) -> dict:
    """The DeepSpeed config `xtuner train --deepspeed NAME` reads: a file, or one of XTuner's
    own by name (deepspeed_zero2, ...), found without importing xtuner. {} if unreadable."""
    import importlib.util
    import json

    path = Path(name)
    if not path.is_file():
        spec = importlib.util.find_spec("xtuner")
        roots = spec.submodule_search_locations if spec else []
        path = next((Path(r) / "configs" / "deepspeed" / f"{name}.json" for r in roots), path)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# ---- doctor fit -----------------------------------------------------------------------------


def fit_report(config: str, *, gpu_mem: float | None = None, deepspeed: str | None = None) -> dict:
    """doctor fit's verdict: the dict `python -m doctor fit CONFIG --json` prints."""
    from .fit import fit_report as report

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
    from . import checks
    from .check import run_one, select

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


def dataset_cached(repo: str, filename: str | None = None) -> bool:
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

    from .probe import ProbeTimeout, bounded

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
    if kind == "load_dataset":
        path = str(data.get("path") or "")
        if _is_hub_id(path) and not data.get("data_files") and not dataset_cached(path):
            wanted.append(("dataset", path, [
                f"$ huggingface-cli download --repo-type dataset {path}"]))
    elif (need := loader_need(data)) is not None:
        wanted.append(("dataset", *need))
    if not wanted:
        return []
    offline = hub_offline()
    if not offline:
        return []
    return [Problem(f"{what} {name} is not in the local cache, and the hub is offline "
                    f"({offline})", fix) for what, name, fix in wanted]


def loader_need(data: dict) -> tuple[str, list[str]] | None:
    """What the config's dataset loader would download, by the loader's own `offline_need`
    (None where it has none, or its data is here). Built from the config's lazy type as mmengine
    builds it: the loader's module is imported by name, not by the doctor."""
    kind = data.get("type")
    try:
        loader = kind.build() if hasattr(kind, "build") else kind
    except Exception:  # noqa: BLE001 - the tool reports a loader it cannot import
        return None
    need = getattr(loader, "offline_need", None)
    if not callable(need):
        return None
    return need(**{k: v for k, v in data.items() if k != "type"})


def remote_code_facts(cfg: dict, cache: str) -> tuple[list[str], list[Problem]]:
    """The remote code the run trusts (doctor.provenance): its digest, and the patches in force
    that would refuse it."""
    from .provenance import preflight_remote_code
    from .pth import selects

    model = cfg.get("model") or {}
    on = {"sdpa_attention": bool(model.get("sdpa_attention")),
          "remote_code_generate": selects("remote_code_generate")}
    info, found = preflight_remote_code(model.get("llm") or {}, cache, on)
    return info, [Problem(summary, fix) for summary, fix in found]


# ---- the check ------------------------------------------------------------------------------


def check(run: Run) -> list[str]:
    """The message that stops `run` on this machine (lines), or [] when it may start."""
    import tempfile

    from .facts import Facts
    from .probe import Machine

    cfg = load_config(run)
    name = run.config
    facts = Facts(Machine.from_environ())
    remote_info, remote_problems = remote_code_facts(cfg, facts.hf_cache)  # the code it trusts
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
        lines += ["  What runs here: `make demo` (the same recipe on a real 135M model, on the "
                  "CPU).",
                  "  `python -m doctor check` says what this machine has."]
        return lines

    problems: list[Problem] = []
    if gpus:
        # The GPU the run gets as cuda:0 (CUDA_VISIBLE_DEVICES); where CUDA's own numbering
        # leaves it open, the smallest it could be.
        vis = facts.visibility
        first = gpus[0] if vis.exact else min(gpus, key=lambda g: g.memory_total or 0)
        label = gpu_label(first)
        # doctor fit reads GPU 0 itself (its free memory: a desktop may hold some); for another
        # GPU it is given that one's size
        gpu_mem = (None if first is facts.all_gpus[0] or first.memory_total is None
                   else first.memory_total / 2**30)
        try:
            with tempfile.TemporaryDirectory(prefix="xtuner-pack-preflight.") as tmp:
                report = fit_report(config_for_fit(run, Path(tmp)), gpu_mem=gpu_mem,
                                    deepspeed=run.deepspeed)
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


USAGE = """usage: python -m doctor preflight CONFIG [--deepspeed NAME] [--cfg-options K=V ...]

What `xtuner train CONFIG ...` checks before it starts, without starting it: a GPU for a GPU
config, torch/driver/bitsandbytes that can use it, doctor fit on the GPU the run sees, the model
and dataset in the cache when the hub is offline. Exit 0: it may start; 1: it would be stopped;
2: bad usage."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    try:
        run = parse_train_args(argv)
        if run is None:
            print(f"doctor preflight: no config {argv[0]!r} (a path, or one of xtuner's config "
                  "names)", file=sys.stderr)
            return 2
        lines = check(run)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback for the config's own error
        print(f"doctor preflight: cannot check {argv[0]}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1
    print("\n".join(lines) if lines else f"{PREFIX}: {run.config} may start on this machine.")
    return 1 if lines else 0
