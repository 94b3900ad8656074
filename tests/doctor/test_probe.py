"""The probe's file operations: which mounts make them bounded, and a FIFO that would block."""

import os
import subprocess
import sys

from doctor.probe import hanging_mounts

MOUNTS = """\
/dev/nvme0n1p2 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0
nas:/export/home /home nfs4 rw,relatime,vers=4.2 0 0
//srv/share /mnt/my\\040share cifs rw 0 0
sshfs#me@box: /mnt/box fuse.sshfs rw,nosuid,nodev 0 0
C:\\134 /mnt/c 9p rw,noatime,aname=drvfs 0 0
"""


def test_network_fuse_and_wsl_mounts_are_the_ones_that_can_hang():
    assert hanging_mounts(MOUNTS) == ["/home", "/mnt/my share", "/mnt/box", "/mnt/c"]
    assert hanging_mounts("/dev/sda1 / ext4 rw 0 0\nsysfs /sys sysfs rw 0 0\n") == []


def test_a_fifo_reads_as_nothing_instead_of_blocking(tmp_path):
    fifo = tmp_path / "cuda_home_by_mistake"
    os.mkfifo(fifo)
    code = ("from doctor.probe import Machine; import sys; "
            "print(repr(Machine().read(sys.argv[1], host=False)))")
    out = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == "''", out
