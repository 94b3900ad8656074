"""Model architectures: the shapes the memory estimate is computed from.

An architecture comes from the table shipped in doctor/data/architectures.json (keyed by hub id, so
nothing is downloaded) or from a local model directory's config.json. Both go through
`from_config`, which knows the layer layout of each `model_type` the pack uses: module names (LoRA
targets match them), which projections carry a bias, fused q/k/v, mixture-of-experts MLPs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "data" / "architectures.json"


class ArchError(ValueError):
    """An architecture that cannot be found or read."""


@dataclass(frozen=True)
class Linear:
    """One nn.Linear of a decoder layer (`count` > 1 for the experts of an MoE layer)."""

    role: str  # q k v qkv o gate up down router
    name: str  # module name as the model spells it; LoRA targets match it
    d_in: int
    d_out: int
    bias: bool = False
    count: int = 1

    @property
    def numel(self) -> int:
        return self.d_in * self.d_out


@dataclass(frozen=True)
class Arch:
    name: str
    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    qkv_bias: bool = False
    o_bias: bool = False
    fused_qkv: bool = False
    experts: int = 0  # 0 = dense MLP
    experts_per_token: int = 0
    names: dict = field(default_factory=dict)  # role -> module name
    attn: str = "sdpa"  # sdpa | eager
    loss: str = "hf"  # hf | shift | float_shift: how the model's forward computes its loss
    source: str = ""

    # ---- shapes ----
    def layer_linears(self) -> list[Linear]:
        h, n = self.hidden, self.names
        q_dim, kv_dim = self.heads * self.head_dim, self.kv_heads * self.head_dim
        if self.fused_qkv:
            attn = [Linear("qkv", n["qkv"], h, q_dim + 2 * kv_dim, self.qkv_bias)]
        else:
            attn = [
                Linear("q", n["q"], h, q_dim, self.qkv_bias),
                Linear("k", n["k"], h, kv_dim, self.qkv_bias),
                Linear("v", n["v"], h, kv_dim, self.qkv_bias),
            ]
        attn.append(Linear("o", n["o"], q_dim, h, self.o_bias))
        e = max(self.experts, 1)
        mlp = [
            Linear("gate", n["gate"], h, self.intermediate, count=e),
            Linear("up", n["up"], h, self.intermediate, count=e),
            Linear("down", n["down"], self.intermediate, h, count=e),
        ]
        if self.experts:
            mlp.insert(0, Linear("router", n["router"], h, self.experts))
        return attn + mlp

    @property
    def head(self) -> Linear:
        return Linear("head", self.names["head"], self.hidden, self.vocab)

    @property
    def embed_numel(self) -> int:
        return self.vocab * self.hidden

    @property
    def head_numel(self) -> int:
        """LM head weights that are not the embedding's (0 when tied)."""
        return 0 if self.tied else self.vocab * self.hidden

    @property
    def norm_numel(self) -> int:
        return (2 * self.layers + 1) * self.hidden

    @property
    def bias_numel(self) -> int:
        return self.layers * sum(lin.d_out * lin.count for lin in self.layer_linears() if lin.bias)

    @property
    def linear_numel(self) -> int:
        """Weights of the decoder layers' linear modules (what 4-bit quantization replaces)."""
        return self.layers * sum(lin.numel * lin.count for lin in self.layer_linears())

    @property
    def total_params(self) -> int:
        return (self.linear_numel + self.embed_numel + self.head_numel + self.norm_numel
                + self.bias_numel)

    def describe(self) -> str:
        moe = (f", {self.experts} experts ({self.experts_per_token} per token)"
               if self.experts else "")
        return (f"{self.name}: {self.total_params / 1e9:.2f}B params, {self.layers} layers, "
                f"hidden {self.hidden}, vocab {self.vocab}{moe}")


# Module names per model_type, as the modeling code spells them.
_LLAMA_NAMES = dict(q="q_proj", k="k_proj", v="v_proj", o="o_proj", gate="gate_proj",
                    up="up_proj", down="down_proj", head="lm_head", embed="embed_tokens")
_NAMES = {
    "llama": _LLAMA_NAMES,
    "mistral": _LLAMA_NAMES,
    "qwen2": _LLAMA_NAMES,
    "internlm": _LLAMA_NAMES,  # InternLM-7B's remote code is Llama's with "Llama" renamed
    "mixtral": dict(_LLAMA_NAMES, gate="w1", up="w3", down="w2", router="gate"),
    "internlm2": dict(qkv="wqkv", o="wo", gate="w1", up="w3", down="w2", head="output",
                      embed="tok_embeddings"),
    # Qwen (v1) remote code: c_attn = fused q,k,v with bias; the attention output projection and
    # the MLP's down projection are both called c_proj; w2 goes through SiLU.
    "qwen": dict(qkv="c_attn", o="c_proj", gate="w2", up="w1", down="c_proj", head="lm_head",
                 embed="wte"),
}
# How each model's forward turns logits into a loss (see estimate.logits_bytes):
#   hf          transformers' own models: 16-bit logits, ForCausalLMLoss upcasts them to fp32
#   shift       remote code: 16-bit logits, shifted `.contiguous()` copy, CrossEntropyLoss
#   float_shift remote code: `logits.float()` in forward, shifted fp32 copy, CrossEntropyLoss
_LOSS = {"llama": "hf", "mistral": "hf", "qwen2": "hf", "mixtral": "hf", "internlm": "shift",
         "internlm2": "float_shift", "qwen": "shift"}


def from_config(cfg: dict, name: str = "", source: str = "", attn: str | None = None) -> Arch:
    """An Arch from config.json fields (a model directory's, or a table entry's)."""
    model_type = cfg.get("model_type")
    if model_type not in _NAMES:
        raise ArchError(
            f"model_type {model_type!r} is not one the estimator knows "
            f"(it knows {', '.join(sorted(_NAMES))})"
        )
    try:
        heads = int(cfg["num_attention_heads"])
        hidden = int(cfg["hidden_size"])
        kv = int(cfg.get("num_key_value_heads") or heads)
        experts = int(cfg.get("num_local_experts") or 0)
        bias = bool(cfg.get("bias", False))
        intermediate = int(cfg["intermediate_size"])
        if model_type == "qwen":  # its config counts both MLP input projections together
            intermediate //= 2
        arch = Arch(
            name=name or cfg.get("_name_or_path") or model_type,
            model_type=model_type,
            hidden=hidden,
            layers=int(cfg["num_hidden_layers"]),
            heads=heads,
            kv_heads=kv,
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            intermediate=intermediate,
            vocab=int(cfg["vocab_size"]),
            # every config class here defaults tie_word_embeddings to False
            tied=bool(cfg.get("tie_word_embeddings", False)),
            qkv_bias=(model_type in ("qwen2", "qwen") or bias
                      or bool(cfg.get("attention_bias", False))),
            o_bias=bias or bool(cfg.get("attention_bias", False)),
            fused_qkv=model_type in ("internlm2", "qwen"),
            experts=experts,
            experts_per_token=int(cfg.get("num_experts_per_tok") or 0) if experts else 0,
            names=_NAMES[model_type],
            attn=attn or ("eager" if model_type in ("internlm", "internlm2", "qwen") else "sdpa"),
            loss=_LOSS[model_type],
            source=source,
        )
    except KeyError as exc:
        raise ArchError(f"config.json lacks {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ArchError(f"config.json has a malformed field: {exc}") from None
    return arch


def load_table(path: Path = TABLE) -> dict[str, Arch]:
    """hub id (lower case) -> Arch, for every id of every table entry."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArchError(f"cannot read the architecture table {path}: {exc}") from None
    by_id = {}
    for name, entry in data["architectures"].items():
        arch = from_config(entry["config"], name=name, source=entry["source"], attn=entry["attn"])
        for hub_id in entry["ids"]:
            by_id[hub_id.lower()] = arch
    return by_id


def resolve(model_path: str, base_dir: Path | None = None) -> Arch:
    """The Arch of a config's `pretrained_model_name_or_path`: a local directory with a
    config.json, or a hub id from the table."""
    local = Path(model_path)
    if base_dir is not None and not local.is_absolute():
        local = base_dir / local
    if local.is_dir():
        cfg_file = local / "config.json"
        if not cfg_file.is_file():
            raise ArchError(f"model directory {local} has no config.json")
        try:
            cfg = json.loads(cfg_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ArchError(f"cannot read {cfg_file}: {exc}") from None
        return from_config(cfg, name=str(local.name), source=str(cfg_file))
    if model_path.startswith((".", "/", "~")) or model_path.count("/") > 1:
        # a hub id is "owner/name"; anything else is a path that is not there (yet)
        raise ArchError(f"model directory {local} does not exist")
    table = load_table()
    arch = table.get(model_path.lower())
    if arch is None:
        raise ArchError(
            f"model {model_path!r} is neither a local directory nor in the architecture table "
            f"({TABLE}); known ids: {', '.join(sorted(table))}"
        )
    return arch
