"""The startup patches' `.pth` contract: the one file name and the one line that register the
pack's patches in every interpreter of an environment.

`python -m patches install` writes it, `python -m doctor check` (xtuner.patches) verifies it and
`python -m doctor fix` restores it: all three read these constants from here, a leaf module with
no imports of the pack, so the doctor needs nothing from `patches` (the room above it).
"""

from __future__ import annotations

import os
from pathlib import Path

PTH_NAME = "xtuner_8gb_pack_patches.pth"
# One line: site.py executes lines that start with "import". find_spec keeps start-up silent
# when the pack has been uninstalled but the .pth left behind.
PTH_LINE = (
    "import importlib.util as _u; _u.find_spec('patches') and __import__('patches._startup')\n"
)


def pth_path() -> Path:
    """Where this interpreter's site-packages takes the .pth (site.py reads purelib)."""
    import sysconfig  # here, not at import: every interpreter of the env imports this module

    return Path(sysconfig.get_paths()["purelib"]) / PTH_NAME


def selection(spec: str | None = None) -> tuple[list[str] | None, set[str]]:
    """XTUNER_PACK_PATCHES (or `spec`) as (only these startup patches, None meaning all of them;
    all but these): unset or "all" = every one, "none" = none, "-name,-other" = all but those,
    "name,other" = only those."""
    spec = (os.environ.get("XTUNER_PACK_PATCHES", "all") if spec is None else spec).strip()
    if spec in ("", "all", "1"):
        return None, set()
    if spec in ("none", "0"):
        return [], set()
    names = [n.strip() for n in spec.split(",") if n.strip()]
    only = [n for n in names if not n.startswith("-")]
    return (only or None), {n[1:] for n in names if n.startswith("-")}


def selects(name: str, spec: str | None = None) -> bool:
    """Whether the startup patch `name` is in force under XTUNER_PACK_PATCHES (or `spec`)."""
    only, but = selection(spec)
    return (only is None or name in only) and name not in but
