"""The check the patches that reach into hub code (sdpa_attention, remote_code_generate) make
before they touch a remote class: are the methods they replace or rely on the ones they were
written for? The known versions and their fingerprints are doctor/data/remote_code.json
(doctor/provenance.py computes them from the module's source: a reworded comment passes, a
changed computation or signature does not). Unknown code is refused, never patched.
"""

from __future__ import annotations

import sys
from pathlib import Path


class RemoteCodeChanged(RuntimeError):
    """A patch met remote code it was not written for; the message names the file."""


def source_file(cls) -> Path | None:
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    return Path(file) if file else None


def verify(patch: str, cls, way_out: str) -> str:
    """The origin of the known version `cls` (a remote class the patch targets) matches; else
    RemoteCodeChanged naming the file, the members that differ, their fingerprints, and
    `way_out` (how to run without the patch)."""
    from doctor.provenance import check_code, known_code

    file = source_file(cls)
    if file is None or not file.is_file():
        raise RemoteCodeChanged(f"{patch}: cannot read the source of {cls.__module__}."
                                f"{cls.__name__} to check it; {way_out}")
    origin, differs, prints = check_code(patch, cls.__name__, file.read_text(encoding="utf-8"))
    if origin:
        return origin
    known = [e["origin"] for e in known_code()[patch][cls.__name__]["known"]]
    lines = [f"{patch} was not written for this remote code: {file}",
             f"  {cls.__name__}: {', '.join(differs)} differ from every version it was checked "
             f"against ({'; '.join(known)}).",
             "  This file's fingerprints: " + ", ".join(
                 f"{m}={'absent' if prints[m] is None else prints[m][:16]}" for m in differs),
             "  The pack does not patch code it does not know: " + way_out,
             "  (doctor/data/remote_code.json lists the known versions; `python -m "
             "bench.remote_code_check FILE` checks the patches on this code, and when it passes "
             "docs/provenance.md says how to add the version.)"]
    raise RemoteCodeChanged("\n".join(lines))
