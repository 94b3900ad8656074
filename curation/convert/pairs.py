"""`load_pairs`: preference pairs of a dataset, for XTuner's `build_preference_dataset` (DPO, ORPO).

A config names it as the dataset's `type`, as `load_conversations` for SFT:

    dataset=dict(type=load_pairs, source="hh_rlhf"),

Rows come from `data_files=`, XTUNER_PACK_DATA or the hub, as for `load_conversations` (the same
resolution, curation.convert.load.open_conversion); each becomes {"prompt": [messages],
"chosen": [reply], "rejected": [reply]} with {"role", "content"} messages, which XTuner tokenizes
with the tokenizer's chat template. The counts (rows read, pairs kept, skipped by reason) go to
the log.
"""

from __future__ import annotations

from .converters import hh_rlhf
from .load import SourceError, open_conversion

#: dataset name -> the Source whose converter yields pairs
PAIR_SOURCES = {"hh_rlhf": hh_rlhf.PAIRS}


def load_pairs(source: str, split: str | None = None, data_files=None, limit: int | None = None,
               revision: str | None = None):
    """A `datasets.Dataset` with `prompt`, `chosen` and `rejected` message-list columns;
    `revision` pins the hub commit, as in load_conversations."""
    from datasets import Dataset
    from mmengine.logging import print_log

    if source not in PAIR_SOURCES:
        raise SourceError(f"no preference pairs for {source!r}; datasets with pairs: "
                          f"{', '.join(PAIR_SOURCES)}")
    conversion = open_conversion(PAIR_SOURCES[source], split, data_files, revision)
    pairs = []
    for pair in conversion:
        pairs.append(pair)
        if limit and len(pairs) >= limit:
            break
    summary = conversion.stats.summary().replace("conversations", "pairs")
    print_log(f"[curation] {source} pairs/{conversion.split} from {conversion.origin}\n{summary}",
              logger="current")
    if not pairs:
        raise SourceError(f"{source}/{conversion.split} from {conversion.origin}: no pair "
                          f"left\n{summary}")
    return Dataset.from_list(pairs)
