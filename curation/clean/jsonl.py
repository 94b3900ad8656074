"""JSONL in: batches of lines that keep their raw bytes and 1-based line numbers (outputs are
written by curation.common.atomic).

A malformed line is never an exception here: it comes back with a reason ("invalid JSON: ...",
"not valid UTF-8", "empty line"), so callers can reject it with its file and line and go on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

# One batch: ~3k rows of ~300 bytes, enough for numpy to pay off, while its arrays (tens of
# bytes a character) stay small enough to reuse memory instead of faulting in fresh pages:
# 4 MB chunks spent twice the system time (measured, bench/decontaminate_speed.py data).
CHUNK_BYTES = 1 << 20

# json.loads() wraps this C scanner in two Python frames and a whitespace regex; calling it
# directly halves the parse cost of a short row. It returns the end index, which is checked.
_scan_once = json.decoder.JSONDecoder().scan_once


@dataclass
class LineBatch:
    """Consecutive lines of one file. raw[i] is line first_line+i without its "\\n"."""

    path: str
    first_line: int
    raw: list[bytes]
    rows: list[object] = field(default_factory=list)  # parsed value, None where errors[i]
    errors: list[str | None] = field(default_factory=list)
    end_offset: int = 0  # bytes of the file consumed after this batch (for progress bars)


def parse_line(text: str) -> tuple[object, str | None]:
    """(value, None) for one JSON value on the line, else (None, reason)."""
    if not text.strip():
        return None, "empty line"
    try:
        value, end = _scan_once(text, 0)
        if end == len(text) or text[end:].isspace():
            return value, None
    except (StopIteration, ValueError, RecursionError):
        pass
    try:  # slow path only to word the error the way json does
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"invalid JSON: {e.msg} (column {e.colno})"
    except (ValueError, RecursionError) as e:
        return None, f"invalid JSON: {e}"


def _decode_lines(raw: list[bytes]) -> tuple[list[str | None], list[str | None]]:
    """Decode each line on its own, so one bad byte rejects one line, not the chunk."""
    texts: list[str | None] = []
    errors: list[str | None] = []
    for line in raw:
        try:
            texts.append(line.decode("utf-8"))
            errors.append(None)
        except UnicodeDecodeError as e:
            texts.append(None)
            errors.append(f"not valid UTF-8 (byte {e.start + 1})")
    return texts, errors


@dataclass
class Chunk:
    """Whole consecutive lines of one file, joined by b"\\n", not yet decoded."""

    path: str
    first_line: int
    data: bytes
    end_offset: int  # bytes of the file consumed after this chunk (for progress bars)


def read_chunks(path: str | os.PathLike, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Stream a file as chunks of whole lines; memory is one chunk, whatever the file size."""
    name = str(path)
    line_no = 1
    offset = 0
    with open(path, "rb") as f:
        tail = b""
        while True:
            block = f.read(chunk_bytes)
            offset += len(block)
            data = tail + block
            if not data:
                return
            if block:
                cut = data.rfind(b"\n")
                if cut < 0:  # one line longer than a chunk: keep reading it
                    tail = data
                    continue
                data, tail = data[:cut], data[cut + 1 :]
            else:
                tail = b""
            yield Chunk(name, line_no, data, offset - len(tail))
            line_no += count_newlines(data) + 1
            if not block:
                return


def count_newlines(data: bytes) -> int:
    """bytes.count(b"\\n") compares byte by byte in Python's own loop (1 ms a MB); numpy's
    vectorized comparison is several times faster."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == 10))


def parse_chunk(chunk: Chunk) -> LineBatch:
    """Decode and parse every line of a chunk; a bad line gets a reason, never an exception."""
    data = chunk.data
    raw = data.split(b"\n")
    try:
        # UTF-8 never has a 0x0A byte inside a character, so str and bytes lines align.
        texts: list[str | None] = data.decode("utf-8").split("\n")
        errors: list[str | None] = [None] * len(raw)
    except UnicodeDecodeError:
        texts, errors = _decode_lines(raw)
    if chunk.first_line == 1 and texts[0] is not None and texts[0].startswith("\ufeff"):
        texts[0] = texts[0][1:]  # a UTF-8 byte order mark is not part of the row
    rows: list[object] = []
    for i, text in enumerate(texts):
        try:  # parse_line's fast path, inlined: this loop runs once per row
            value, end = _scan_once(text, 0)
            if end != len(text) and not text[end:].isspace():
                raise ValueError
        except Exception:
            value, error = (None, errors[i]) if text is None else parse_line(text)
            errors[i] = error
        rows.append(value)
    return LineBatch(chunk.path, chunk.first_line, raw, rows, errors, chunk.end_offset)


def read_batches(path: str | os.PathLike, chunk_bytes: int = CHUNK_BYTES) -> Iterator[LineBatch]:
    """Stream a JSONL file as parsed LineBatches."""
    for chunk in read_chunks(path, chunk_bytes):
        yield parse_chunk(chunk)


def count_bytes(paths) -> int:
    return sum(os.path.getsize(p) for p in paths)
