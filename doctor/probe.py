"""The only place the doctor touches the machine: file reads, directory listings, commands, NVML.

No operation raises for what it finds or hangs on it: a missing, unreadable or non-UTF-8 file
reads as None or as text with U+FFFD, a FIFO as nothing; file operations have a timeout where
this process sees a mount that can hang (network, FUSE); a command that hangs is killed with its
process group, a command that cannot start says why. Everything the doctor reads can be pointed
elsewhere, which is how the tests build whole machines from files:

- `root`: the filesystem root for the well-known paths (/proc, /etc, /sys, /usr/local/cuda,
  /dev/shm, ...). Paths that come from the environment (CUDA_HOME, PATH, HOME) are used as given.
- `env`: the environment (PATH included) used for lookups and handed to every command.
- NVML is asked only when `root` is the real "/" (the library describes this machine, not a fake
  root); otherwise, and when NVML is unavailable, `nvidia-smi` on PATH is asked instead.

Small API, shared with `doctor fit`:

    m = Machine()                      # or Machine(root=..., env=..., timeout=...)
    report = gpu_report(m)             # GpuReport: source, driver_version, cuda_driver, gpus, error
    for gpu in report.gpus:            # Gpu: index, name, memory_total, memory_free (bytes), cc
        print(gpu.name, gpu.memory_total / 2**30, gpu.cc)
    m.read("/proc/meminfo"); m.run(["nvcc", "-V"]); m.which("xtuner")
"""

from __future__ import annotations

import functools
import glob as _glob
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TIMEOUT = 5.0  # seconds for one command; the doctor's whole default run takes ~0.2 s
FS_TIMEOUT = 2.0  # seconds for one file operation (a hung NFS mount must not hang the doctor)
READ_LIMIT = 4 << 20  # bytes: enough for /var/lib/dpkg/status, bounded for anything else
# Filesystems whose operations can block for minutes (a server gone, a FUSE daemon stuck). Local
# filesystems answer or fail at once; procfs and sysfs too (the doctor only stats /dev).
HANGING_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "ceph", "glusterfs",
              "lustre", "gpfs", "beegfs", "davfs", "9p", "drvfs", "fuse", "virtiofs")


def hanging_mounts(mounts: str) -> list[str]:
    """Mount points of /proc/self/mounts' text whose filesystem can hang (fuse.* included)."""
    points = []
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2].split(".", 1)[0] in HANGING_FS:
            points.append(fields[1].replace("\\040", " "))
    return points


class ProbeTimeout(Exception):
    pass


class _Worker:
    """One daemon thread that runs bounded calls in turn: starting a thread per file operation
    cost ~0.7 ms each (60-70 ms a run under load); a queue hand-off costs ~0.05 ms."""

    def __init__(self):
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self.loop, daemon=True, name="doctor-probe")
        self.thread.start()

    def loop(self):
        while True:
            fn, box, done = self.queue.get()
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed to the caller
                box["error"] = exc
            done.set()


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def bounded(fn, timeout: float):
    """fn() on the probe thread, abandoned after `timeout` seconds (ProbeTimeout). A call that
    hangs keeps its thread; the next call gets a fresh one."""
    global _worker
    if _worker is not None and threading.current_thread() is _worker.thread:
        return fn()  # already on the probe thread (a bounded call inside one)
    with _worker_lock:
        if _worker is None:
            _worker = _Worker()
        worker = _worker
    box: dict = {}
    done = threading.Event()
    worker.queue.put((fn, box, done))
    if not done.wait(timeout):
        with _worker_lock:
            if _worker is worker:
                _worker = None
        raise ProbeTimeout(f"no answer in {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


@dataclass
class Run:
    """What a command did. `rc` is None when it did not finish (timeout) or did not start."""

    argv: list[str]
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    error: str = ""  # why it could not start
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        if self.error:
            return f"could not start: {self.error}"
        if self.timed_out:
            return f"no answer in {self.seconds:.0f} s (killed)"
        if self.rc is not None and self.rc < 0:
            import signal

            try:
                name = signal.Signals(-self.rc).name
            except ValueError:
                name = "unknown signal"
            return f"killed by signal {-self.rc} ({name})"
        return f"exit status {self.rc}"

    def last_line(self) -> str:
        lines = [ln.strip() for ln in self.output.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else ""


class Machine:
    def __init__(self, root: str | os.PathLike = "/", env: dict | None = None,
                 timeout: float = DEFAULT_TIMEOUT, python: str | None = None):
        self.root = Path(root)
        self.env = dict(os.environ if env is None else env)
        self.timeout = timeout
        self.python = python or sys.executable
        self.real_root = self.root.resolve() == Path("/")

    @classmethod
    def from_environ(cls, timeout: float = DEFAULT_TIMEOUT) -> Machine:
        """DOCTOR_ROOT moves the well-known paths (tests, or a mounted image)."""
        return cls(root=os.environ.get("DOCTOR_ROOT", "/"), timeout=timeout)

    # -- paths ------------------------------------------------------------------------------
    def host(self, path: str) -> Path:
        """A well-known absolute path under this machine's root."""
        return self.root / str(path).lstrip("/")

    def unhost(self, path: str | os.PathLike) -> str:
        """The path as the machine itself names it (the inverse of `host`), for fix lines."""
        text, root = str(path), str(self.root).rstrip("/")
        if root and text.startswith(root + "/"):
            return text[len(root):]
        return text

    def resolve(self, path: str, hops: int = 8) -> tuple[str, list[str]]:
        """Follow a well-known path's symlinks inside the root: (final path, every hop), as the
        machine names them (/usr/local/cuda -> /etc/alternatives/cuda -> /usr/local/cuda-12.6)."""
        chain = [path]
        for _ in range(hops):
            link = self._fs(lambda p=chain[-1]: os.readlink(self.host(p)), None)
            if link is None:
                break
            chain.append(os.path.normpath(os.path.join(os.path.dirname(chain[-1]), link)))
        return chain[-1], chain

    @functools.cached_property
    def fs_can_hang(self) -> bool:
        """Whether this process sees a network or FUSE mount. Without one, file operations run
        on the calling thread: the hand-off to the probe thread cost ~0.25 ms each, a fifth of a
        doctor run. (The doctor's own process: a fake root's files are local files too.)"""
        try:
            with open("/proc/self/mounts", "rb") as fh:
                return bool(hanging_mounts(decode(fh.read(READ_LIMIT))))
        except OSError:
            return True  # no /proc (macOS, a sandbox): stay careful

    def _fs(self, fn, default):
        try:
            return bounded(fn, FS_TIMEOUT) if self.fs_can_hang else fn()
        except (OSError, ValueError, ProbeTimeout):
            return default

    def read(self, path: str | os.PathLike, *, host: bool = True,
             limit: int = READ_LIMIT) -> str | None:
        """Text of a file (None when missing/unreadable); `host` maps it under the root."""
        p = self.host(path) if host else Path(path)

        def read():
            # O_NONBLOCK: a FIFO or a device named by mistake (CUDA_HOME=/dev/...) reads as
            # nothing instead of blocking; a regular file reads as usual
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as fh:
                return decode(fh.read(limit))

        return self._fs(read, None)

    def exists(self, path, *, host: bool = True, kind: str = "any") -> bool:
        p = self.host(path) if host else Path(path)
        test = {"any": p.exists, "file": p.is_file, "dir": p.is_dir}[kind]
        return bool(self._fs(test, False))

    def listdir(self, path, *, host: bool = True) -> list[str]:
        p = self.host(path) if host else Path(path)
        return sorted(self._fs(lambda: os.listdir(p), []))

    def glob(self, pattern: str, *, host: bool = True) -> list[str]:
        """Matches of a glob; with `host` the pattern is absolute and mapped under the root."""
        base = str(self.host(pattern)) if host else pattern
        return sorted(self._fs(lambda: _glob.glob(base), []))

    def disk(self, path, *, host: bool = False) -> tuple[int, int] | None:
        """(total, free) bytes of the filesystem holding `path`, or its nearest existing parent."""
        p = Path(self.host(path) if host else path)

        import shutil

        def usage():
            q = p
            while not q.exists() and q != q.parent:
                q = q.parent
            u = shutil.disk_usage(q)
            return u.total, u.free

        return self._fs(usage, None)

    def same_filesystem(self, a, b) -> bool:
        """Whether two paths (or their nearest existing parents) are on one filesystem."""

        def dev(path):
            q = Path(path)
            while not q.exists() and q != q.parent:
                q = q.parent
            return q.stat().st_dev

        return bool(self._fs(lambda: dev(a) == dev(b), False))

    def cwd(self) -> str:
        return self._fs(os.getcwd, "/")

    def realpath(self, path: str) -> str:
        return self._fs(lambda: os.path.realpath(path), path)

    # -- environment and commands -----------------------------------------------------------
    def getenv(self, name: str, default: str | None = None) -> str | None:
        return self.env.get(name, default)

    def which(self, name: str) -> str | None:
        import shutil

        return self._fs(lambda: shutil.which(name, path=self.env.get("PATH", "")), None)

    def run(self, argv: list[str], timeout: float | None = None, env: dict | None = None) -> Run:
        """Run a command with the machine's environment; kill its process group on timeout."""
        import signal
        import subprocess  # imported here: a default run on a machine without a GPU runs none

        timeout = self.timeout if timeout is None else timeout
        result = Run(argv=[str(a) for a in argv])
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                result.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env={**self.env, **(env or {})},
                start_new_session=True,  # its own process group: a timeout kills its children too
            )
        except (OSError, ValueError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            return result
        try:
            out, err = proc.communicate(timeout=timeout)
            result.rc = proc.returncode
        except subprocess.TimeoutExpired:
            result.timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            try:  # a grandchild that left the group may still hold the pipes
                out, err = proc.communicate(timeout=1)
            except subprocess.TimeoutExpired:
                out, err = b"", b""
        result.stdout, result.stderr = decode(out), decode(err)
        result.seconds = time.monotonic() - start
        return result

    def python_run(self, code: str, timeout: float | None = None) -> Run:
        """Run Python code in the environment's interpreter (a fresh process)."""
        return self.run([self.python, "-c", code], timeout=timeout)


# -- GPUs ---------------------------------------------------------------------------------------
@dataclass
class Gpu:
    index: int
    name: str
    memory_total: int | None = None  # bytes
    memory_free: int | None = None  # bytes
    cc: tuple[int, int] | None = None  # compute capability

    @property
    def cc_text(self) -> str:
        return f"{self.cc[0]}.{self.cc[1]}" if self.cc else "unknown"


@dataclass
class GpuReport:
    source: str = "none"  # "nvml", "nvidia-smi" or "none"
    driver_version: str | None = None
    cuda_driver: str | None = None  # the newest CUDA the driver supports, "13.0"
    gpus: list[Gpu] = field(default_factory=list)
    error: str | None = None  # what went wrong asking
    error_kind: str | None = None  # library-not-found | driver-not-loaded | version-mismatch | ...


# NVML error class names -> our kinds (pynvml generates NVMLError_<Name> classes).
NVML_KINDS = {
    "NVMLError_LibraryNotFound": "library-not-found",
    "NVMLError_DriverNotLoaded": "driver-not-loaded",
    "NVMLError_LibRmVersionMismatch": "version-mismatch",
    "NVMLError_NoPermission": "no-permission",
    "NVMLError_GpuIsLost": "gpu-lost",
}


def nvml_report(timeout: float = DEFAULT_TIMEOUT) -> GpuReport:
    """GPU facts from NVML (nvidia-ml-py's pynvml), in a bounded thread: a sick GPU can hang it."""
    try:
        import pynvml
    except ImportError as exc:
        return GpuReport(error=f"pynvml is not importable: {exc}", error_kind="no-pynvml")

    def ask() -> GpuReport:
        def text(value):
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

        pynvml.nvmlInit()
        try:
            rep = GpuReport(source="nvml", driver_version=text(pynvml.nvmlSystemGetDriverVersion()))
            try:
                v = pynvml.nvmlSystemGetCudaDriverVersion()
                rep.cuda_driver = f"{v // 1000}.{v % 1000 // 10}"
            except pynvml.NVMLError:
                pass
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                gpu = Gpu(index=i, name=text(pynvml.nvmlDeviceGetName(h)))
                try:
                    mem = pynvml.nvmlDeviceGetMemoryInfo(h)
                    gpu.memory_total, gpu.memory_free = int(mem.total), int(mem.free)
                except pynvml.NVMLError:  # e.g. NotSupported under WSL for some fields
                    pass
                try:
                    gpu.cc = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(h))
                except pynvml.NVMLError:
                    pass
                rep.gpus.append(gpu)
            return rep
        finally:
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError:
                pass

    try:
        return bounded(ask, timeout)
    except ProbeTimeout as exc:
        return GpuReport(error=f"NVML: {exc}", error_kind="timeout")
    except Exception as exc:  # NVMLError_* and anything a broken library raises
        kind = NVML_KINDS.get(type(exc).__name__, "nvml-error")
        return GpuReport(error=f"NVML: {exc}", error_kind=kind)


SMI_FIELDS = "index,name,memory.total,memory.free,compute_cap,driver_version"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def smi_report(machine: Machine) -> GpuReport:
    """GPU facts from `nvidia-smi --query-gpu` (CSV, MiB) on the machine's PATH."""
    exe = machine.which("nvidia-smi")
    if not exe:
        return GpuReport(error="nvidia-smi is not on PATH", error_kind="library-not-found")
    run = machine.run([exe, f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader,nounits"])
    if not run.ok:
        text = run.output.strip() or run.describe()
        kind = "nvidia-smi-error"
        if "version mismatch" in text.lower():
            kind = "version-mismatch"
        elif "communicate with the nvidia driver" in text.lower():
            kind = "driver-not-loaded"
        elif run.timed_out:
            kind = "timeout"
        return GpuReport(error=f"nvidia-smi: {text.splitlines()[-1] if text else ''}",
                         error_kind=kind)
    rep = GpuReport(source="nvidia-smi")
    for line in run.stdout.splitlines():
        cols = [c.strip() for c in line.split(",")]
        if len(cols) != 6 or not cols[0].isdigit():
            continue
        idx, name, total, free, cc, driver = cols
        gpu = Gpu(index=int(idx), name=name)
        mib = 1 << 20
        if (t := _number(total)) is not None:
            gpu.memory_total = int(t * mib)
        if (f := _number(free)) is not None:
            gpu.memory_free = int(f * mib)
        if "." in cc and all(p.isdigit() for p in cc.split(".", 1)):
            gpu.cc = tuple(int(p) for p in cc.split(".", 1))
        rep.driver_version = rep.driver_version or driver
        rep.gpus.append(gpu)
    if not rep.gpus:
        rep.error, rep.error_kind = "nvidia-smi printed no GPU", "no-gpu"
    return rep


NVML_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/aarch64-linux-gnu",
             "/usr/lib/wsl/lib", "/usr/lib", "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib")


def nvml_present(machine: Machine) -> bool:
    """Whether libnvidia-ml.so.1 is where the loader looks (the driver's and the container
    toolkit's directories, LD_LIBRARY_PATH): importing pynvml costs ~0.1 s for nothing on a
    machine without it."""
    dirs = [*(machine.getenv("LD_LIBRARY_PATH") or "").split(":"), *NVML_DIRS]
    return any(machine.exists(f"{d}/libnvidia-ml.so.1", host=False) for d in dirs if d)


def gpu_report(machine: Machine) -> GpuReport:
    """NVML where it describes this machine, else nvidia-smi; the first answer that worked."""
    nvml = None
    if machine.real_root and not nvml_present(machine):
        nvml = GpuReport(error="NVML: libnvidia-ml.so.1 not found", error_kind="library-not-found")
    elif machine.real_root:
        nvml = nvml_report(machine.timeout)
        if nvml.source == "nvml" or nvml.error_kind not in ("library-not-found", "no-pynvml"):
            return nvml
    smi = smi_report(machine)
    if nvml and not smi.gpus:
        smi.error = f"{nvml.error}; {smi.error}"
    return smi
