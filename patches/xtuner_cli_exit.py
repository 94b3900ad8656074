"""`xtuner <cmd>` exits 0 even when the command failed, and runs whatever `python` is on PATH.

xtuner 0.2.0's `cli()` (xtuner/entry_point.py) runs each tool as
`subprocess.run(["python", tool.py, ...])` (or `["torchrun", ...]`) and drops the return code, so
`xtuner train missing.py` and a crashed training both exit 0, and with the venv not activated the
child is another interpreter (`No module named 'xtuner'`). The fix lives where the bug does: the
`subprocess` that entry_point.py uses is swapped for one whose `run` starts the tool with the
interpreter running `xtuner` itself and turns a failure into `SystemExit(returncode)`.
(`cli()` catches `Exception`, which SystemExit is not, so the code reaches the shell.)
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

TARGET = "xtuner.entry_point"


def run_checked(cmd, *args, **kwargs):
    import subprocess  # here, not at the top: this module loads at every interpreter start

    cmd = list(cmd)
    if cmd and cmd[0] == "python":
        cmd[0] = sys.executable
    elif cmd and cmd[0] == "torchrun":
        cmd[:1] = [sys.executable, "-m", "torch.distributed.run"]
    result = subprocess.run(cmd, *args, **kwargs)
    if result.returncode != 0:
        raise SystemExit(result.returncode)
    return result


def apply(entry_point) -> None:
    entry_point.subprocess = SimpleNamespace(run=run_checked)
