"""What evaluation and export take from an XTuner training config: the model (path and
quantization), the chat template it trains in, its system prompt, its training data files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from components import chat_template as templates


class ConfigReadError(RuntimeError):
    """A config evaluation/export cannot use; the message names the file."""


@dataclass
class ModelSpec:
    """What evaluation takes from a training config."""

    config: Path
    name: str
    model_path: str
    template: dict
    system: str = ""
    quantized: bool = False
    revision: str | None = None  # the hub commit the config pins (None: the newest)
    trust_remote_code: bool = False  # as the config loads the model: eval and export follow it
    data_files: list[str] = field(default_factory=list)
    cfg: object = None  # the mmengine Config


def read_config(path) -> ModelSpec:
    from mmengine.config import Config

    path = Path(path)
    if not path.is_file():
        raise ConfigReadError(f"{path}: no such config")
    try:
        cfg = Config.fromfile(str(path))
    except Exception as exc:  # mmengine raises many types for a broken config
        raise ConfigReadError(f"{path}: cannot read the config: "
                              f"{type(exc).__name__}: {exc}") from None
    llm = (cfg.get("model") or {}).get("llm")
    if not llm or not llm.get("pretrained_model_name_or_path"):
        raise ConfigReadError(f"{path}: no model.llm.pretrained_model_name_or_path (not an XTuner "
                        "training config)")
    template = cfg.get("prompt_template")
    if template is None:
        raise ConfigReadError(f"{path}: no top-level `prompt_template` (the chat template "
                              "it trains in)")
    system = ""
    for hook in cfg.get("custom_hooks") or []:
        if hook.get("system"):
            system = hook["system"]
    return ModelSpec(
        config=path,
        name=path.stem,
        model_path=str(llm["pretrained_model_name_or_path"]),
        template=templates.as_dict(template),
        system=system,
        quantized=bool((llm.get("quantization_config") or {}).get("load_in_4bit")),
        revision=llm.get("revision"),
        trust_remote_code=bool(llm.get("trust_remote_code", False)),
        data_files=_data_files(cfg),
        cfg=cfg,
    )


def _data_files(cfg) -> list[str]:
    """The training data files a config names (to find their decontamination report)."""
    try:
        inner = cfg.train_dataloader.dataset.dataset
    except AttributeError:
        return []
    files = inner.get("data_files")
    if isinstance(files, dict):
        files = [f for v in files.values() for f in (v if isinstance(v, list) else [v])]
    elif isinstance(files, str):
        files = [files]
    return [str(f) for f in files or []]


def ensure_model(spec: ModelSpec) -> None:
    """The smoke config's tiny model is written on first use (components/tiny.py)."""
    model = spec.cfg.model  # the recipe wraps the model type: PatchedFinetune(base=TinyFinetune)
    names = [getattr(t, "__name__", str(t)) for t in (model.get("type"), model.get("base"))]
    if any(name.endswith("TinyFinetune") for name in names):
        from components import tiny

        tiny.build(spec.model_path)
