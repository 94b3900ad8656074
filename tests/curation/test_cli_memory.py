"""curation.common.cli.reuse_freed_memory: a command that allocates the same large buffers batch
after batch reuses freed heap memory instead of faulting fresh pages in each time."""

import platform
import subprocess
import sys

import pytest

# 10 rounds of a 40 MiB buffer (above the 32 MiB up to which glibc raises its own mmap
# threshold), written through and freed, as a batch's arrays are
PROBE = """
import ctypes, resource, sys
from curation.common.cli import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 40 << 20
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    p = libc.malloc(size)
    ctypes.memset(p, 1, size)
    libc.free(p)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_freed_buffers_are_reused_not_faulted_in_again():
    def faults(mode):
        out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True,
                             text=True, check=True)
        return int(out.stdout)

    pages = (40 << 20) // 4096
    plain, reused = faults("plain"), faults("reuse")
    assert plain > 5 * pages  # fresh pages every round
    assert reused < 2 * pages, (plain, reused)  # the first round's, then reused
