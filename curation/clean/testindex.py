"""The test side, held in memory: every test item with where it came from and its tokens.
Matchers build their own indexes from this."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .jsonl import read_batches
from .rowtext import RowError, row_text
from .tokens import Tokens


@dataclass
class TestItem:
    file: str
    line: int
    text: str  # the prompt as written in the test file


@dataclass
class Rejected:
    file: str
    line: int
    reason: str


@dataclass
class TestItems:
    items: list[TestItem]
    tokens: Tokens  # segment i = items[i]
    rejected: list[Rejected] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    _words: dict[int, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, paths: list[str], text_field: str | None = None, progress=None) -> TestItems:
        found: list[tuple[str, int, str]] = []
        rejected: list[Rejected] = []
        for path in paths:
            if progress is not None:
                progress.next_file()
            for batch in read_batches(path):
                for i, (row, error) in enumerate(zip(batch.rows, batch.errors, strict=True)):
                    line = batch.first_line + i
                    if error is None:
                        try:
                            prompt, _ = row_text(row, text_field)
                        except RowError as e:
                            error = str(e)
                    if error is not None:
                        rejected.append(Rejected(path, line, error))
                    else:
                        found.append((path, line, prompt))
                if progress is not None:
                    progress(batch.end_offset)
        return cls.build(found, rejected, list(paths))

    @classmethod
    def build(cls, found, rejected=(), files=()) -> TestItems:
        tokens = Tokens([text for _, _, text in found])
        items = [TestItem(path, line, text) for path, line, text in found]
        files = list(dict.fromkeys(files)) or list(dict.fromkeys(f for f, _, _ in found))
        return cls(items, tokens, list(rejected), files)

    def __len__(self) -> int:
        return len(self.items)

    def words(self, i: int) -> list[str]:
        if i not in self._words:
            self._words[i] = self.tokens.words(i)
        return self._words[i]

    def lengths(self) -> np.ndarray:
        return np.diff(self.tokens.seg_bounds)
