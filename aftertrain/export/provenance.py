"""A GGUF that says what it was made from.

The training run writes work_dirs/<name>/provenance.json (components/provenance.py),
`xtuner convert pth_to_hf` copies it into the adapter (patches/pth_to_hf_provenance.py), and
the export writes it into the GGUF's metadata as one JSON string under `xtuner_pack.provenance`
(gguf-py's GGUFReader reads it back; llama.cpp's quantizer copies every key of the f16 file
into the quantized one).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from doctor.provenance import FILE, GGUF_KEY, read


def find(given=None, *dirs) -> dict | None:
    """The provenance the export carries: --provenance FILE, else the adapter's or the merged
    model's provenance.json."""
    if given:
        prov = read(given)
        if prov is None:
            raise FileNotFoundError(f"{given}: no {FILE} there")
        return prov
    for d in dirs:
        prov = read(d) if d else None
        if prov is not None:
            return prov
    return None


@contextlib.contextmanager
def into_gguf(prov: dict | None):
    """While converting: every GGUF the converter writes gets `xtuner_pack.provenance`."""
    if prov is None:
        yield
        return
    import gguf

    text = json.dumps(prov, sort_keys=True, ensure_ascii=False)
    original = gguf.GGUFWriter.write_header_to_file

    def write_header_to_file(self, path: Path | None = None):
        if not any(GGUF_KEY in kv for kv in self.kv_data):  # the header counts the keys
            self.add_string(GGUF_KEY, text)
        return original(self, path)

    gguf.GGUFWriter.write_header_to_file = write_header_to_file
    try:
        yield
    finally:
        gguf.GGUFWriter.write_header_to_file = original


def line(prov: dict | None) -> str:
    if prov is None:
        return (f"provenance: none found (no {FILE} in the adapter or merged directory, no "
                "--provenance): the GGUF does not say what it was made from")
    model = prov.get("model") or {}
    made = model.get("commit") or (model.get("files") or {}).get("sha256") or "?"
    return (f"provenance: {model.get('name_or_path')} @ {made}, in the GGUF's metadata "
            f"({GGUF_KEY})")


def from_gguf(path) -> dict | None:
    """The provenance a GGUF carries (None if it carries none)."""
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get(GGUF_KEY)
    return None if field is None else json.loads(field.contents())
