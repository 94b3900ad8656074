"""`xtuner train CONFIG` on a machine that cannot run it fails minutes later, in 264 lines.

This startup patch is only the hook: before `xtuner train` starts its tool (in the `xtuner`
process, before torch is imported) it runs the doctor's preflight (doctor/preflight.py, also
`python -m doctor preflight CONFIG`), which stops the run with one message and exit status 1 when
the config needs a GPU there is not, does not fit the GPU by `doctor fit`, or needs a download
while the hub is offline. XTUNER_PACK_FORCE=1 starts it anyway.
"""

from __future__ import annotations

import sys

TARGET = "xtuner.entry_point"


def apply(entry_point) -> None:
    train = entry_point.modes["train"]

    def preflight_then_train():
        # cli() calls this for `xtuner train ...`, before it starts the tool
        from doctor.preflight import stop_or_go

        stop_or_go(sys.argv[2:])
        return train()

    entry_point.modes["train"] = preflight_then_train
