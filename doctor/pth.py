"""The startup patches' `.pth` contract: the one file name and the one line that register the
pack's patches in every interpreter of an environment.

`python -m patches install` writes it, `python -m doctor check` (xtuner.patches) verifies it and
`python -m doctor fix` restores it: all three read these constants from here, a leaf module with
no imports of the pack, so the doctor needs nothing from `patches` (the room above it).
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

PTH_NAME = "xtuner_8gb_pack_patches.pth"
# One line: site.py executes lines that start with "import". find_spec keeps start-up silent
# when the pack has been uninstalled but the .pth left behind.
PTH_LINE = (
    "import importlib.util as _u; _u.find_spec('patches') and __import__('patches._startup')\n"
)


def pth_path() -> Path:
    """Where this interpreter's site-packages takes the .pth (site.py reads purelib)."""
    return Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
