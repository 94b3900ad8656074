"""python -m patches install | uninstall | status | list

`install` writes the one-line .pth file that registers the startup patches in every interpreter
of this environment (idempotent); `status` says whether it is in place; `list` shows each patch
and why it exists.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# The .pth contract (its name and line) lives in one leaf module that the doctor reads too.
from doctor.pth import PTH_LINE, PTH_NAME, pth_path

from . import MEMORY, STARTUP

__all__ = ["PTH_LINE", "PTH_NAME", "main", "pth_path"]


def install() -> int:
    path = pth_path()
    if path.is_file() and path.read_text() == PTH_LINE:
        print(f"patches: already installed ({path})")
        return 0
    path.write_text(PTH_LINE)
    print(f"patches: installed {path}")
    return 0


def uninstall() -> int:
    pth_path().unlink(missing_ok=True)
    print(f"patches: removed {pth_path()}")
    return 0


def status() -> int:
    ok = pth_path().is_file() and pth_path().read_text() == PTH_LINE
    print(f"patches: {'installed' if ok else 'NOT installed'} ({pth_path()})")
    return 0 if ok else 1


def list_patches() -> int:
    for name in STARTUP:
        doc = (importlib.import_module(f"patches.{name}").__doc__ or "").strip().splitlines()[0]
        print(f"{name:24s} {doc}")
    for name in MEMORY:  # opt-in per config
        doc = (importlib.import_module(f"patches.{name}").__doc__ or "").strip().splitlines()[0]
        print(f"{name:24s} (opt-in) {doc}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m patches", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["install", "uninstall", "status", "list"])
    args = parser.parse_args(argv)
    return {"install": install, "uninstall": uninstall, "status": status, "list": list_patches}[
        args.command
    ]()


if __name__ == "__main__":
    sys.exit(main())
