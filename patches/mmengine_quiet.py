"""Every run logs two mmengine deprecation warnings that no user can act on.

mmengine 0.10's own CheckpointHook calls `FileClient.infer_client` (mmengine/hooks/
checkpoint_hook.py), and FileClient and its HardDiskBackend announce their own deprecation
("FileClient" will be deprecated in future..., "HardDiskBackend" is the alias of "LocalBackend"...)
through the module's `print_log`. Those two messages, from that module only, are dropped; every
other message of mmengine stays.
"""

from __future__ import annotations

TARGET = "mmengine.fileio.file_client"
DROPPED = ('"FileClient" will be deprecated in future', '"HardDiskBackend" is the alias of')


def apply(file_client) -> None:
    print_log = file_client.print_log

    def quiet_print_log(msg, *args, **kwargs):
        if isinstance(msg, str) and msg.startswith(DROPPED):
            return None
        return print_log(msg, *args, **kwargs)

    file_client.print_log = quiet_print_log
