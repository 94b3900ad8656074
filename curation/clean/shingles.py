"""MinHash shingling shared by the minhash matcher and dedup: n-gram hashes as the 8-byte
tokens rensa hashes, and whether this process has started rensa's thread pool (a process
forked after that must not call rensa: its child would wait on threads it did not inherit)."""

from __future__ import annotations

import numpy as np

_rensa_threads = False


def rensa_started() -> bool:
    return _rensa_threads


def note_rensa() -> None:
    global _rensa_threads
    _rensa_threads = True


def as_tokens(hashes: np.ndarray) -> list[bytes]:
    """64-bit hashes as 8-byte tokens, the form rensa hashes."""
    data = hashes.astype("<u8").tobytes()
    return [data[k : k + 8] for k in range(0, len(data), 8)]


