"""One converter per dataset, from its public record schema to XTuner's conversation format.

`SOURCES` maps the short names used by configs and `python -m curation prepare` to a `Source`:
the converter class and where the public copy lives (hub id, configs, splits, licence, notes).
"""

from __future__ import annotations

from . import (
    alpaca,
    blended_skill_talk,
    empathetic_dialogues,
    gsm8k,
    guanaco,
    hendrycks_math,
    hh_rlhf,
    oasst1,
    orca_math,
    personachat,
    sharegpt,
    ultrachat,
)
from ._base import Converter, RowConverter, Skip, Source, Stats, pair_turns

SOURCES: dict[str, Source] = {
    module.SOURCE.name: module.SOURCE
    for module in (
        alpaca,
        ultrachat,
        sharegpt,
        orca_math,
        gsm8k,
        hendrycks_math,
        personachat,
        blended_skill_talk,
        hh_rlhf,
        oasst1,
        guanaco,
        empathetic_dialogues,
    )
}


def get(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)}") from None


__all__ = ["SOURCES", "Converter", "RowConverter", "Skip", "Source", "Stats", "get", "pair_turns"]
