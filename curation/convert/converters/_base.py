"""What every converter shares: skip accounting, turn pairing, and the record-stream driver.

A converter reads a stream of `Record`s in its dataset's public schema and yields XTuner
conversations, `[{"system"?, "input", "output"}, ...]` with "system" on the first turn only.
Row datasets turn one row into one conversation (`RowConverter.conversation`); datasets whose
dialogues span rows (oasst1, personachat, empathetic_dialogues) collect rows in `feed` and emit
conversations in `finish`.

A record that cannot become a conversation raises `Skip(reason)`; the driver counts it in `Stats`
by reason and keeps the first few places it happened, so a run over 200k rows never stops on one
bad row. Repairs that keep a record (an empty turn dropped, two user turns merged) are counted
separately in `Stats.fixed`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..readers import Record, Unparseable

USER, ASSISTANT, SYSTEM = "user", "assistant", "system"
TURN_KEYS = ("system", "input", "output")
EXAMPLES_PER_REASON = 3

Fix = Callable[[str], None]


class Skip(Exception):
    """This record yields no conversation; `reason` is the key it is counted under."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class Stats:
    """Counts of one conversion run: rows read, conversations written, skips and repairs."""

    read: int = 0
    written: int = 0
    skipped: Counter = field(default_factory=Counter)
    fixed: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, where: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        seen = self.examples.setdefault(reason, [])
        if len(seen) < EXAMPLES_PER_REASON:
            seen.append(f"{where} ({detail})" if detail else where)

    def fix(self, what: str) -> None:
        self.fixed[what] += 1

    def as_dict(self) -> dict:
        return dict(
            read=self.read,
            written=self.written,
            skipped=dict(sorted(self.skipped.items())),
            fixed=dict(sorted(self.fixed.items())),
        )

    def summary(self) -> str:
        lines = [f"read {self.read} rows, wrote {self.written} conversations, "
                 f"skipped {sum(self.skipped.values())}"]
        for reason, n in sorted(self.skipped.items()):
            lines.append(f"  skipped {n:>7} {reason}: e.g. {'; '.join(self.examples[reason])}")
        for what, n in sorted(self.fixed.items()):
            lines.append(f"  fixed   {n:>7} {what}")
        return "\n".join(lines)


class Converter:
    """Base class: drives the stream, counts skips, passes through rows already in XTuner form."""

    #: keyword options the constructor accepts, with their defaults
    OPTIONS: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options):
        unknown = set(options) - set(self.OPTIONS)
        if unknown:
            allowed = ", ".join(sorted(self.OPTIONS)) or "none"
            raise TypeError(f"{type(self).__name__}: unknown option(s) {sorted(unknown)}; "
                            f"options: {allowed}")
        for name, default in self.OPTIONS.items():
            setattr(self, name, options.get(name, default))

    def convert(self, records: Iterable[Record], stats: Stats) -> Iterator[list[dict]]:
        for record in records:
            stats.read += 1
            try:
                data = record.data
                if isinstance(data, Unparseable):
                    raise Skip("unparseable", data.error)
                if not isinstance(data, dict):
                    raise Skip("not_an_object", type(data).__name__)
                if "conversation" in data:  # already converted, e.g. by `prepare`
                    conversations = [check_conversation(data["conversation"])]
                else:
                    conversations = self.feed(record, stats)
                for conversation in conversations:
                    stats.written += 1
                    yield conversation
            except Skip as skip:
                stats.skip(skip.reason, record.where, skip.detail)
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
                # a record shaped in a way no check foresaw: count it, do not stop 200k rows
                stats.skip(f"unexpected_error:{type(e).__name__}", record.where, str(e)[:80])
        for conversation in self.finish(stats):
            stats.written += 1
            yield conversation

    def feed(self, record: Record, stats: Stats) -> Iterable[list[dict]]:
        raise NotImplementedError

    def finish(self, stats: Stats) -> Iterable[list[dict]]:
        return ()


class RowConverter(Converter):
    """One row in, one conversation out."""

    def feed(self, record: Record, stats: Stats) -> Iterable[list[dict]]:
        return [self.conversation(record.data, stats.fix)]

    def conversation(self, row: dict, fix: Fix) -> list[dict]:
        raise NotImplementedError


# ---- field access -------------------------------------------------------------------------


def text(row: dict, key: str) -> str:
    """Field `key` as stripped, non-empty text, or Skip saying which field is wrong."""
    value = row.get(key)
    if value is None:
        raise Skip(f"missing_field:{key}")
    if not isinstance(value, str):
        raise Skip(f"wrong_type:{key}", type(value).__name__)
    value = value.strip()
    if not value:
        raise Skip(f"empty_text:{key}")
    return value


def text_list(row: dict, key: str, *, allow_empty: bool = False) -> list[str]:
    """Field `key` as a list of strings (items stripped, kept even if empty)."""
    value = row.get(key)
    if value is None:
        raise Skip(f"missing_field:{key}")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Skip(f"wrong_type:{key}", "not a list of strings")
    if not value and not allow_empty:
        raise Skip(f"empty_text:{key}")
    return [v.strip() for v in value]


def integer(row: dict, key: str) -> int:
    """Field `key` as an int; CSV files hold numbers as text."""
    value = row.get(key)
    if value is None or value == "":
        raise Skip(f"missing_field:{key}")
    if isinstance(value, bool):
        raise Skip(f"wrong_type:{key}", "bool")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Skip(f"wrong_type:{key}", repr(value)[:40]) from None


# ---- turns -> conversation ----------------------------------------------------------------


def pair_turns(turns: Iterable[tuple[str, str]], fix: Fix, system: str | None = None) -> list[dict]:
    """Role-tagged turns -> XTuner conversation, repairing what can be repaired.

    Empty turns are dropped; consecutive turns of one role are merged (blank line between);
    system turns are allowed only before the first user turn; a leading assistant turn (no prompt
    to answer) and a trailing user turn (no answer to learn) are dropped. Each repair is counted.
    """
    kept: list[list[str]] = []
    repairs = []  # reported only if the record is kept
    systems = [system] if system else []
    for role, content in turns:
        if not isinstance(content, str):
            raise Skip("wrong_type:turn", type(content).__name__)
        content = content.strip()
        if not content:
            repairs.append("dropped_empty_turn")
            continue
        if role == SYSTEM:
            if any(r == USER for r, _ in kept):
                raise Skip("misplaced_system", "system turn after the conversation started")
            systems.append(content)
        elif kept and kept[-1][0] == role:
            repairs.append(f"merged_consecutive_{role}_turns")
            kept[-1][1] += "\n\n" + content
        else:
            kept.append([role, content])
    if kept and kept[0][0] == ASSISTANT:
        repairs.append("dropped_leading_assistant_turn")
        kept.pop(0)
    if kept and kept[-1][0] == USER:
        repairs.append("dropped_trailing_user_turn")
        kept.pop()
    if not kept:
        raise Skip("no_exchange", "no user turn followed by an assistant turn")
    pairs = zip(kept[::2], kept[1::2], strict=True)
    conversation = [{"input": user[1], "output": reply[1]} for user, reply in pairs]
    if systems:
        conversation[0] = {"system": "\n\n".join(systems), **conversation[0]}
    for repair in repairs:
        fix(repair)
    return conversation


def check_conversation(conversation: Any) -> list[dict]:
    """A row already in XTuner's format, validated and reduced to system/input/output."""
    if not isinstance(conversation, list) or not conversation:
        raise Skip("bad_conversation", "not a non-empty list")
    out = []
    for i, turn in enumerate(conversation):
        if not isinstance(turn, dict):
            raise Skip("bad_conversation", f"turn {i} is not an object")
        extra = set(turn) - set(TURN_KEYS)
        if extra:  # e.g. output_with_loss: dropping it would change what is trained
            raise Skip("bad_conversation", f"turn {i} has keys {sorted(extra)}")
        system = turn.get("system")
        if system is not None and (not isinstance(system, str) or (i > 0 and system)):
            raise Skip("bad_conversation", f"turn {i}: system must be text, first turn only")
        inp, output = turn.get("input", ""), turn.get("output")
        if not isinstance(inp, str) or not isinstance(output, str):
            raise Skip("bad_conversation", f"turn {i}: input/output must be text")
        if not output.strip():
            raise Skip("bad_conversation", f"turn {i}: empty output")
        out.append({"system": system, "input": inp, "output": output} if system else
                   {"input": inp, "output": output})
    return out


# ---- source metadata ----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A dataset the pack converts: its converter and where its public copy lives."""

    name: str  # the short name used by configs and `prepare`
    converter: type[Converter]
    hub_id: str
    licence: str
    rows: str  # split sizes as the card gives them
    rules: str  # what the converter does, for docs/datasets.md
    notes: str = ""  # caveats
    splits: tuple[str, ...] = ("train",)
    default_split: str = "train"
    hub_configs: tuple[str | None, ...] = (None,)  # several: loaded one by one, concatenated
    hub_revision: str | None = None  # e.g. the Hub's Parquet export of a script-only dataset
    hub_data_files: str | None = None  # pattern in the repo, with {config} and {split}
    hub_file: str | None = None  # one raw file to download instead of load_dataset
    #: file-name globs of the public release for each split, tried before the generic
    #: "<split>.*" / "<split>-*" / ".../<split>/..." rule when reading a local directory
    local_globs: dict[str, tuple[str, ...]] = field(default_factory=dict)
