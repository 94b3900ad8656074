"""XTuner reads every model's config with `trust_remote_code=True` and no revision, whatever the
run's config says.

`SupervisedFinetune._dispatch_lm_model_cfg` (xtuner/model/sft.py; DPO and ORPO inherit it) calls
`AutoConfig.from_pretrained(path, trust_remote_code=True)` before the model loads, to choose the
attention dispatch. So a Qwen or Llama run whose `model.llm` says `trust_remote_code=False`
still executes any configuration_*.py its hub repository names in `auto_map` (a repository
can add one at any time), and a run pinned to a `revision` reads the newest config.json instead
of the pinned one. The patch makes that call use the `trust_remote_code` and `revision` of the
`model.llm` dict it is dispatching (absent: off and the newest, as transformers' own defaults).
"""

from __future__ import annotations

TARGET = "xtuner.model.sft"


def apply(sft) -> None:
    cls = sft.SupervisedFinetune
    AutoConfig = sft.AutoConfig  # noqa: N806 - the name sft.py uses

    def _dispatch_lm_model_cfg(self, cfg, max_position_embeddings=None):
        # XTuner 0.2.0's body, with the config's own trust_remote_code and revision
        cfg = self._prepare_for_qlora_zero3(cfg)
        llm_cfg = AutoConfig.from_pretrained(
            cfg.pretrained_model_name_or_path,
            trust_remote_code=bool(cfg.get("trust_remote_code", False)),
            revision=cfg.get("revision"),
        )
        cfg = self._prepare_for_flash_attn(cfg, llm_cfg)
        if max_position_embeddings is not None:
            cfg = self._prepare_for_long_context_training(cfg, llm_cfg, max_position_embeddings)
        return cfg

    cls._dispatch_lm_model_cfg = _dispatch_lm_model_cfg
