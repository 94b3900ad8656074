"""Read local data files as a stream of records, each with the place it came from.

The converters need raw rows (not a typed Arrow table): one bad record must be skipped and counted,
while `datasets.load_dataset("json")` would fail the whole file on one row of another type, and its
errors name no line. So JSON, JSON lines and CSV are read here with the standard library, Parquet
with pyarrow, `.gz` transparently. A record's `where` is "path:line" (Parquet: "path#row").

A file that cannot be read at all raises `DataFileError` naming the file and the line. Inside a
readable file, a line that does not parse becomes an `Unparseable` record: the converter counts it
and the run goes on. A JSON-lines file whose first record does not parse is taken to be the wrong
kind of file and raises, rather than yielding every line as a bad record.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Formats read here, by file suffix (a trailing ".gz" is allowed on the text formats).
FORMATS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # ShareGPT-sized fields exceed the 128 kB default


class DataFileError(ValueError):
    """A local data file that cannot be read; the message starts with "path:line:"."""

    def __init__(self, path, line: int | None, message: str):
        self.path, self.line = str(path), line
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass
class Record:
    data: Any  # a row (dict) as the public schema has it, or an Unparseable
    where: str  # "path:line", "path#row" or "hub-id[split]#row"


@dataclass
class Unparseable:
    error: str


def file_format(path) -> str | None:
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        if name.endswith(".parquet"):
            return None
    return next((fmt for suffix, fmt in FORMATS.items() if name.endswith(suffix)), None)


def is_data_file(path) -> bool:
    return Path(path).is_file() and file_format(path) is not None


def count_rows(path) -> int | None:
    """Rows in `path` if that is cheap to know (Parquet metadata, plain JSON lines), else None."""
    fmt = file_format(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if fmt == "jsonl" and not str(path).endswith(".gz"):
            with open(path, "rb") as f:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except Exception:  # only an estimate for the progress bar; the reader reports real errors
        return None
    return None


def iter_records(path) -> Iterator[Record]:
    """Every record of one local file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, None, "no such file")
    fmt = file_format(path)
    if fmt is None:
        raise DataFileError(
            path, None, "unsupported file type; expected .jsonl, .json, .csv (each may be .gz) "
            "or .parquet"
        )
    if fmt == "parquet":
        yield from _parquet(path)
    elif fmt == "csv":
        yield from _csv(path)
    else:
        yield from _json(path, fmt)


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, decoded strictly so a bad byte names its line."""
    try:
        with _open_binary(path) as f:
            for number, raw in enumerate(f, 1):
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataFileError(path, number, f"not UTF-8 text ({e.reason})") from None
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise DataFileError(path, None, f"cannot read: {e}") from None


def _json(path: Path, fmt: str) -> Iterator[Record]:
    lines = _lines(path)
    for number, text in lines:
        stripped = text.lstrip("\ufeff").strip()
        if not stripped:
            continue
        if stripped.startswith("[") or (fmt == "json" and not _parses(stripped)):
            # A JSON document (an array of records, or one record): needs the whole text.
            rest = "".join(t for _, t in lines)
            yield from _json_document(path, number, text.lstrip("\ufeff") + rest)
            return
        yield from _json_lines(path, number, stripped, lines)
        return


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_lines(path: Path, first_number: int, first: str, lines) -> Iterator[Record]:
    try:
        yield Record(json.loads(first), f"{path}:{first_number}")
    except ValueError as e:
        raise DataFileError(path, first_number, f"not JSON lines: {e}") from None
    for number, text in lines:
        text = text.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except ValueError as e:
            data = Unparseable(f"invalid JSON: {e}")
        yield Record(data, f"{path}:{number}")


def _json_document(path: Path, first_line: int, text: str) -> Iterator[Record]:
    """The elements of a top-level JSON array one at a time (each with its line), or the object."""
    decoder = json.JSONDecoder()
    line_at = _LineCounter(text, first_line)
    pos = _skip_ws(text, 0)
    if text.startswith("[", pos):
        pos = _skip_ws(text, pos + 1)
        if text.startswith("]", pos):
            return
        while True:
            try:
                value, end = decoder.raw_decode(text, pos)
            except ValueError as e:
                raise DataFileError(path, line_at(getattr(e, "pos", pos)), _json_error(e)) from None
            yield Record(value, f"{path}:{line_at(pos)}")
            pos = _skip_ws(text, end)
            if text.startswith(",", pos):
                pos = _skip_ws(text, pos + 1)
            elif text.startswith("]", pos):
                break
            else:
                raise DataFileError(path, line_at(pos), "expected ',' or ']' in the JSON array")
        if _skip_ws(text, pos + 1) != len(text):
            raise DataFileError(path, line_at(pos + 1), "text after the end of the JSON array")
        return
    try:
        value = json.loads(text)
    except ValueError as e:
        raise DataFileError(path, line_at(getattr(e, "pos", 0)), _json_error(e)) from None
    yield Record(value, f"{path}:{first_line}")


def _json_error(e: ValueError) -> str:
    return f"invalid JSON: {getattr(e, 'msg', e)}"


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


class _LineCounter:
    """Line number of a position in `text`; positions are asked for in increasing order."""

    def __init__(self, text: str, first_line: int):
        self.text, self.pos, self.line = text, 0, first_line

    def __call__(self, pos: int) -> int:
        if pos < self.pos:
            return self.line - self.text.count("\n", pos, self.pos)
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _csv(path: Path) -> Iterator[Record]:
    numbered = _lines(path)
    state = {"line": 0}

    def texts():
        for number, text in numbered:
            state["line"] = number
            yield text

    reader = csv.reader(texts())
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise DataFileError(path, state["line"], f"unreadable CSV header: {e}") from None
    if not header or not any(h.strip() for h in header):
        raise DataFileError(path, 1, "no CSV header line")
    header = [h.lstrip("\ufeff").strip() for h in header]
    start = state["line"] + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield Record(Unparseable(f"CSV: {e}"), f"{path}:{start}")
            start = state["line"] + 1
            continue
        where = f"{path}:{start}"
        start = state["line"] + 1
        if not fields:
            continue
        if len(fields) != len(header):
            data = Unparseable(f"{len(fields)} CSV fields, the header has {len(header)}")
        else:
            data = dict(zip(header, fields, strict=True))
        yield Record(data, where)


def _parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise DataFileError(path, None, f"not a readable Parquet file: {e}") from None
    row = 0
    for batch in file.iter_batches(batch_size=1024):
        for data in batch.to_pylist():
            yield Record(data, f"{path}#row{row}")
            row += 1
