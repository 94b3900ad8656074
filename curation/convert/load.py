"""`load_conversations`: a dataset of the pack, converted for XTuner's `process_hf_dataset`.

A config names it as the dataset's `type` and leaves XTuner's map function out:

    dataset=dict(type=load_conversations, source="alpaca", split="train"),
    dataset_map_fn=None,

mmengine reads configs in lazy-import mode, so this runs only when the runner builds the dataset.
Where the rows come from, first match wins:

1. `data_files=` (a file, a list, a glob, a directory, or {split: ...}); from the command line:
   `--cfg-options train_dataloader.dataset.dataset.data_files=/path/x.jsonl`
2. the environment variable XTUNER_PACK_DATA=DIR: the files of `DIR/<name>/` (or `DIR/<hub id>/`,
   the layout `huggingface-cli download --local-dir DIR/<hub id>` leaves) for the split
3. the Hugging Face Hub (`datasets.load_dataset`, or one file download for ShareGPT).

Local files are JSON lines, JSON, CSV (each optionally .gz) or Parquet, in the dataset's public
schema (rows already in XTuner's {"conversation": [...]} form, e.g. from `prepare`, pass through).
The counts of the conversion (rows read, conversations, skipped by reason) go to the log.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from itertools import islice
from pathlib import Path

from ..common.atomic import publish, temp_beside
from .converters import Source, Stats, get
from .readers import DataFileError, Record, count_rows, is_data_file, iter_records

ENV_VAR = "XTUNER_PACK_DATA"
BATCH = 1_000  # conversations per Arrow record batch


class SourceError(ValueError):
    """The rows of a dataset cannot be found or fetched; the message says how to fix it."""


@dataclass
class Conversion:
    """The conversations of one dataset split, produced lazily; `stats` fills as they are read."""

    source: Source
    split: str
    origin: str  # where the rows come from, for logs
    records: Iterable[Record]
    total: int | None = None  # rows to read, when known (progress bars)
    options: dict = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)

    def __iter__(self) -> Iterator[list[dict]]:
        return self.source.converter(**self.options).convert(self.records, self.stats)


def open_conversion(source: str, split: str | None = None, data_files=None,
                    revision: str | None = None, **options):
    """Resolve where the rows of `source` come from; nothing is converted until iterated.
    `revision`: the hub commit (or tag/branch) to read; None = the newest (or the export the
    dataset is read from, e.g. refs/convert/parquet)."""
    src = source if isinstance(source, Source) else get(source)  # pairs pass their Source
    split = split or src.default_split
    src.converter(**options)  # unknown options fail here, before any download
    if data_files:  # "" or [] (e.g. an emptied --cfg-options value) means: not given
        files = local_files(data_files, src, split)
        origin = "data_files"
    elif os.environ.get(ENV_VAR):
        files, directory = env_files(src, split)
        origin = f"{ENV_VAR}: {directory}"
    else:
        records, total, origin = hub_records(src, split, revision)
        return Conversion(src, split, origin, records, total, options)
    totals = [count_rows(f) for f in files]
    total = None if None in totals else sum(totals)
    records = (record for f in files for record in iter_records(f))
    origin += ": " + ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
    return Conversion(src, split, origin, records, total, options)


def load_conversations(source: str, split: str | None = None, data_files=None,
                       limit: int | None = None, cache_dir=None, revision: str | None = None,
                       **options):
    """A `datasets.Dataset` with one `conversation` column, for `process_hf_dataset`.

    `source` is a short name of `curation.convert.converters.SOURCES`; `split` defaults to the
    dataset's training split; `limit` keeps the first N conversations; other keyword arguments are
    the converter's options (e.g. `lang="en"` for oasst1); `revision` pins the hub commit the
    rows are read from (docs/provenance.md). The conversations are written to an Arrow
    file in `cache_dir` (default: the datasets cache, `$HF_DATASETS_CACHE/curation`) and memory-
    mapped, so XTuner's tokenization maps cache on disk as they do for a hub dataset instead of
    holding 200k tokenized rows in RAM.
    """
    from mmengine.logging import print_log

    conversion = open_conversion(source, split, data_files, revision, **options)
    conversations = iter(conversion)
    if cache_dir is None:
        from datasets import config

        cache_dir = Path(config.HF_DATASETS_CACHE) / "curation"
    dataset = to_dataset(islice(conversations, limit) if limit else conversations,
                         Path(cache_dir), f"{source}-{conversion.split}")
    print_log(f"[curation] {source}/{conversion.split} from {conversion.origin}\n"
              f"{conversion.stats.summary()}", logger="current")
    if len(dataset) == 0:
        raise SourceError(f"{source}/{conversion.split} from {conversion.origin}: no "
                          f"conversation left\n{conversion.stats.summary()}")
    return dataset


def offline_need(source: str, split: str | None = None, data_files=None, **_) -> tuple[
        str, list[str]] | None:
    """What `load_conversations` with these arguments would download from the hub, when it is
    not here: (name, lines that say how to get it), else None. The doctor's preflight asks it
    (`load_conversations.offline_need`) before `xtuner train` starts, so a missing dataset on
    an offline machine stops the run in seconds, not after the model has loaded."""
    from doctor.preflight import dataset_cached

    if data_files:  # local files: load_conversations itself names a missing one
        return None
    src = get(source)
    split = split or src.default_split
    if os.environ.get(ENV_VAR):
        try:
            env_files(src, split)
        except (SourceError, DataFileError) as exc:
            return src.hub_id, [str(exc)]
        return None
    if dataset_cached(src.hub_id, src.hub_file):
        return None
    return f"{src.hub_id} ({src.name})", [
        f"$ huggingface-cli download --repo-type dataset {src.hub_id} --local-dir DIR/{src.hub_id}",
        f"then {ENV_VAR}=DIR xtuner train ... (or --cfg-options "
        "train_dataloader.dataset.dataset.data_files=FILE)"]


load_conversations.offline_need = offline_need


def conversation_features():
    from datasets import Features, List, Value

    turn = {"system": Value("string"), "input": Value("string"), "output": Value("string")}
    return Features({"conversation": List(turn)})


def to_dataset(conversations: Iterable[list[dict]], directory: Path, stem: str):
    """Conversations -> a memory-mapped `datasets.Dataset` in `directory`.

    The file is named by a hash of its content and kept when it exists: a dataset's
    fingerprint comes from its file's path and mtime, and XTuner's map caches are keyed by that
    fingerprint, so new content gets a new path and the same content the same file (a second
    run reuses the tokenized caches).
    """
    from datasets import Dataset
    from datasets.arrow_writer import ArrowWriter

    digest = hashlib.sha256()
    with temp_beside(directory / stem, suffix=".arrow.tmp") as tmp:
        writer = ArrowWriter(features=conversation_features(), path=str(tmp))
        batch: list[list[dict]] = []
        for conversation in conversations:
            digest.update(json.dumps(conversation, sort_keys=True).encode() + b"\n")
            batch.append(conversation)
            if len(batch) == BATCH:
                writer.write_batch({"conversation": batch})
                batch = []
        if batch:
            writer.write_batch({"conversation": batch})
        writer.finalize()
        final = directory / f"{stem}-{digest.hexdigest()[:16]}.arrow"
        # same content: keep the file (and its mtime, part of the fingerprint), so XTuner's
        # map caches of it stay valid; the temporary goes on the way out
        if not final.is_file():
            publish(tmp, final)
    return Dataset.from_file(str(final))


# ---- local files --------------------------------------------------------------------------


def local_files(spec, source: Source, split: str) -> list[Path]:
    """The files `data_files` names for `split`: paths, globs, directories, or {split: those}."""
    if isinstance(spec, dict):
        if split not in spec:
            raise SourceError(f"data_files has no split {split!r} (it has {sorted(spec)})")
        spec = spec[split]
    items = [spec] if isinstance(spec, str | os.PathLike) else list(spec)
    files: list[Path] = []
    for item in items:
        path = Path(os.path.expanduser(str(item)))
        if glob.has_magic(str(path)):
            matches = [Path(m) for m in sorted(glob.glob(str(path), recursive=True))]
            matches = [m for m in matches if m.is_file()]
            if not matches:
                raise SourceError(f"data_files: no file matches {item}")
            files += matches
        elif path.is_dir():
            found = split_files(path, source, split)
            if not found:
                raise SourceError(_no_split_files(path, source, split))
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataFileError(path, None, "no such file or directory (data_files)")
    if not files:
        raise SourceError("data_files names no file")
    return files


def env_files(source: Source, split: str) -> tuple[list[Path], Path]:
    root = Path(os.path.expanduser(os.environ[ENV_VAR]))
    candidates = [root / source.name, root / source.hub_id, root / source.hub_id.split("/")[-1]]
    for directory in candidates:
        if directory.is_dir():
            files = split_files(directory, source, split)
            if not files:
                raise SourceError(f"{ENV_VAR}: " + _no_split_files(directory, source, split))
            return files, directory
    raise SourceError(
        f"{ENV_VAR}={root} is set, but neither {candidates[0]} nor {candidates[1]} is a "
        f"directory; put the {source.name} files there, or unset {ENV_VAR} to use the hub"
    )


def split_files(directory: Path, source: Source, split: str) -> list[Path]:
    """The data files of `split` under `directory` (recursively), in name order.

    First the release's own file names (`Source.local_globs`), then any file named like the
    split (`train.jsonl`, `train-00000-of-00001.parquet`) or inside a folder named like it
    (`full/train/0000.parquet`); a dataset with a single split takes every data file.
    Under a hub mirror with one folder per config, only the configs the pack uses count.
    """
    files = sorted(
        p for p in directory.rglob("*")
        if is_data_file(p) and not _hidden(p.relative_to(directory))  # e.g. .cache/huggingface
    )
    for pattern in source.local_globs.get(split, ()):
        matched = [p for p in files if fnmatch(p.name, pattern)]
        if matched:
            return matched
    matched = [p for p in files if _names_split(p.relative_to(directory), split)]
    configs = {c for c in source.hub_configs if c}
    in_configs = [p for p in matched if configs & set(p.relative_to(directory).parts[:-1])]
    if in_configs:
        matched = in_configs
    if not matched and source.splits == (split,):
        matched = files
    return matched


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _names_split(relative: Path, split: str) -> bool:
    name = relative.name
    return (
        split in relative.parts[:-1]
        or name.split(".")[0] == split
        or name.startswith(split + "-")
    )


def _no_split_files(directory: Path, source: Source, split: str) -> str:
    found = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if is_data_file(p))
    shown = ", ".join(found[:8]) + (" ..." if len(found) > 8 else "") if found else "none"
    return (f"no {split!r} files of {source.name} in {directory} (data files there: {shown}); "
            f"name them <split>.jsonl / <split>-*.parquet, or pass data_files")


# ---- the hub ------------------------------------------------------------------------------


def hub_records(source: Source, split: str,
                revision: str | None = None) -> tuple[Iterable[Record], int | None, str]:
    """Download (or reuse the cache of) the public copy; rows are read lazily. `revision`
    replaces the source's own (a commit pins it)."""
    if split not in source.splits:
        splits = ", ".join(source.splits)
        raise SourceError(f"{source.name} has no split {split!r}; splits: {splits}")
    revision = revision or source.hub_revision
    try:
        if source.hub_file:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(source.hub_id, source.hub_file, repo_type="dataset",
                                   revision=revision)
            return iter_records(path), None, f"hub: {source.hub_id}/{source.hub_file}"
        parts = [(config, _load_hub_split(source, config, split, revision))
                 for config in source.hub_configs]
    except Exception as e:  # no network, gated repo, renamed dataset, ...
        raise SourceError(
            f"cannot load {source.hub_id} ({split}) from the Hugging Face Hub: "
            f"{type(e).__name__}: {e}\nWithout hub access, point at local copies of its files: "
            f"data_files=... (in a config: --cfg-options "
            f"train_dataloader.dataset.dataset.data_files=PATH) or {ENV_VAR}=DIR with the files "
            f"in DIR/{source.name}/ (see docs/datasets.md)"
        ) from e

    def records():
        for config, dataset in parts:
            label = f"{source.hub_id}[{config + '/' if config else ''}{split}]"
            for i, row in enumerate(dataset):
                yield Record(row, f"{label}#{i}")

    configs = ",".join(c for c in source.hub_configs if c)
    origin = (f"hub: {source.hub_id}" + (f" ({configs})" if configs else "")
              + (f" @ {revision}" if revision else ""))
    return records(), sum(len(d) for _, d in parts), origin


def _load_hub_split(source: Source, config: str | None, split: str, revision: str | None):
    from datasets import load_dataset

    kwargs = {"split": split}
    if revision:
        kwargs["revision"] = revision
    if source.hub_data_files:
        kwargs["data_files"] = {split: source.hub_data_files.format(config=config, split=split)}
    else:
        kwargs["name"] = config
    return load_dataset(source.hub_id, **kwargs)
