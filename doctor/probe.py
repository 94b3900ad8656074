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
import re
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

    def write_access(self, path) -> dict | None:
        """Whether this process may create `path` (or files in it): the nearest existing
        directory of it, whether that is writable and searchable for this user (access(2),
        which also says EROFS for a read-only mount), its owner and mode; `blocker` a file
        that stands where a directory is needed. None when the filesystem does not answer."""

        def probe():
            q, blocker = Path(path), None
            while not q.exists() and q != q.parent:
                q = q.parent
            if not q.is_dir():
                blocker, q = str(q), q.parent
            st = q.stat()
            return {"nearest": str(q), "exists": Path(path).is_dir(), "blocker": blocker,
                    "writable": os.access(q, os.W_OK | os.X_OK), "uid": st.st_uid,
                    "mode": st.st_mode & 0o7777, "euid": os.geteuid()}

        return self._fs(probe, None)

    def age(self, path) -> float | None:
        """Seconds since `path` was last modified; None when it cannot be read."""
        return self._fs(lambda: max(0.0, time.time() - os.stat(path).st_mtime), None)

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
    uuid: str | None = None  # "GPU-8f6b3e1c-..." (CUDA_VISIBLE_DEVICES may name it)
    bus: str | None = None  # PCI bus id "00000000:01:00.0" (CUDA_DEVICE_ORDER=PCI_BUS_ID)

    @property
    def cc_text(self) -> str:
        return f"{self.cc[0]}.{self.cc[1]}" if self.cc else "unknown"


@dataclass
class GpuReport:
    source: str = "none"  # "nvml", "nvidia-smi", "/proc/driver/nvidia" or "none"
    driver_version: str | None = None
    cuda_driver: str | None = None  # the newest CUDA the driver supports, "13.0"
    gpus: list[Gpu] = field(default_factory=list)
    error: str | None = None  # what went wrong asking
    error_kind: str | None = None  # library-not-found | driver-not-loaded | version-mismatch | ...
    notes: list[str] = field(default_factory=list)  # fields a tool could not give, and why


# NVML error class names -> our kinds (pynvml generates NVMLError_<Name> classes).
NVML_KINDS = {
    "NVMLError_LibraryNotFound": "library-not-found",
    "NVMLError_DriverNotLoaded": "driver-not-loaded",
    "NVMLError_LibRmVersionMismatch": "version-mismatch",
    "NVMLError_NoPermission": "no-permission",
    "NVMLError_GpuIsLost": "gpu-lost",
}


def nvml_report(timeout: float = DEFAULT_TIMEOUT) -> GpuReport:
    """GPU facts from NVML (nvidia-ml-py's pynvml), in a bounded thread: a sick GPU can hang it.
    Each field is asked on its own: an older driver lacks some functions (FunctionNotFound),
    WSL some answers (NotSupported); a field that fails is unknown, not the GPU down."""
    try:
        import pynvml
    except ImportError as exc:
        return GpuReport(error=f"pynvml is not importable: {exc}", error_kind="no-pynvml")

    def ask() -> GpuReport:
        def text(value):
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

        pynvml.nvmlInit()
        try:
            rep = GpuReport(source="nvml")

            def field_(what: str, fn, *args):
                try:
                    return fn(*args)
                except pynvml.NVMLError as exc:
                    rep.notes.append(f"NVML {what}: {exc}")
                    return None

            driver = field_("driver version", pynvml.nvmlSystemGetDriverVersion)
            rep.driver_version = text(driver) if driver is not None else None
            v = field_("CUDA driver version", pynvml.nvmlSystemGetCudaDriverVersion)
            rep.cuda_driver = f"{v // 1000}.{v % 1000 // 10}" if v else None
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                name = field_(f"GPU {i} name", pynvml.nvmlDeviceGetName, h)
                gpu = Gpu(index=i, name=text(name) if name is not None else f"GPU {i}")
                mem = field_(f"GPU {i} memory", pynvml.nvmlDeviceGetMemoryInfo, h)
                if mem is not None:
                    gpu.memory_total, gpu.memory_free = int(mem.total), int(mem.free)
                cc = field_(f"GPU {i} compute capability",
                            pynvml.nvmlDeviceGetCudaComputeCapability, h)
                gpu.cc = tuple(cc) if cc else None
                uuid = field_(f"GPU {i} UUID", pynvml.nvmlDeviceGetUUID, h)
                gpu.uuid = text(uuid) if uuid is not None else None
                pci = field_(f"GPU {i} PCI", pynvml.nvmlDeviceGetPciInfo, h)
                gpu.bus = text(pci.busId) if pci is not None else None
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


# Asked of `nvidia-smi --query-gpu`; index and name are what a GPU needs to be listed at all.
SMI_FIELDS = ("index", "name", "memory.total", "memory.free", "compute_cap", "driver_version",
              "uuid", "pci.bus_id")
SMI_REQUIRED = ("index", "name")
# What nvidia-smi prints for a field it does not know (exit status 2): "compute_cap" arrived
# with driver 510; a 470 driver's nvidia-smi rejects the whole query for it.
INVALID_FIELD = re.compile(r'Field "([^"]+)" is not a valid field to query')
# Failures that are the driver's or the GPU's, not the query's: asking less does not help.
SMI_HARD = (("version mismatch", "version-mismatch"),
            ("communicate with the nvidia driver", "driver-not-loaded"),
            ("no devices were found", "no-gpu"),
            ("gpu is lost", "gpu-lost"),
            ("unable to determine the device handle", "gpu-lost"))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def _smi_query(machine: Machine, exe: str, fields) -> Run:
    return machine.run([exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"])


def _smi_rows(run: Run, fields) -> dict[int, dict[str, str]]:
    rows = {}
    for line in run.stdout.splitlines():
        cols = [c.strip() for c in line.split(",")]
        if len(cols) == len(fields) and cols[0].isdigit():
            rows[int(cols[0])] = dict(zip(fields, cols, strict=True))
    return rows


def smi_report(machine: Machine) -> GpuReport:
    """GPU facts from `nvidia-smi --query-gpu` (CSV, MiB) on the machine's PATH. A query that an
    older nvidia-smi rejects for one field is asked again without it, field by field when the
    answer does not say which, before the GPU is judged as not answering."""
    exe = machine.which("nvidia-smi")
    if not exe:
        return GpuReport(error="nvidia-smi is not on PATH", error_kind="library-not-found")
    fields = list(SMI_FIELDS)
    run = _smi_query(machine, exe, fields)
    notes = []
    while not run.ok and not run.timed_out:
        bad = [f for f in INVALID_FIELD.findall(run.output) if f in fields]
        if not bad or set(bad) & set(SMI_REQUIRED):
            break
        notes += [f"nvidia-smi does not know the field {f!r} (an older driver)" for f in bad]
        fields = [f for f in fields if f not in bad]
        run = _smi_query(machine, exe, fields)
    low = run.output.lower()
    hard = next((kind for text, kind in SMI_HARD if text in low), None)
    rows = _smi_rows(run, fields) if run.ok else {}
    if not run.ok and not run.timed_out and hard is None:
        # The answer names no field: ask for the least, then each other field on its own.
        least = _smi_query(machine, exe, SMI_REQUIRED)
        if least.ok and _smi_rows(least, SMI_REQUIRED):
            rows, fields = _smi_rows(least, SMI_REQUIRED), list(SMI_REQUIRED)
            for f in SMI_FIELDS[len(SMI_REQUIRED):]:
                one = _smi_query(machine, exe, ("index", f))
                answers = _smi_rows(one, ("index", f)) if one.ok else {}
                if not answers:
                    notes.append(f"nvidia-smi --query-gpu={f}: {one.describe()}")
                for i, row in answers.items():
                    rows.get(i, {})[f] = row[f]
            run = least
    if not rows:
        text = run.output.strip() or run.describe()
        kind = "timeout" if run.timed_out else hard or "nvidia-smi-error"
        return GpuReport(error=f"nvidia-smi: {text.splitlines()[-1] if text else ''}",
                         error_kind=kind, notes=notes)
    rep = GpuReport(source="nvidia-smi", notes=notes)
    mib = 1 << 20
    for i, row in sorted(rows.items()):
        gpu = Gpu(index=i, name=row.get("name", f"GPU {i}"))
        if (t := _number(row.get("memory.total", ""))) is not None:
            gpu.memory_total = int(t * mib)
        if (f := _number(row.get("memory.free", ""))) is not None:
            gpu.memory_free = int(f * mib)
        cc = row.get("compute_cap", "")
        if "." in cc and all(p.isdigit() for p in cc.split(".", 1)):
            gpu.cc = tuple(int(p) for p in cc.split(".", 1))
        gpu.uuid = row.get("uuid") if (row.get("uuid") or "").startswith("GPU-") else None
        gpu.bus = row.get("pci.bus_id") or None
        driver = row.get("driver_version")
        rep.driver_version = rep.driver_version or (driver if driver and driver[0].isdigit()
                                                    else None)
        rep.gpus.append(gpu)
    return rep


def proc_report(machine: Machine) -> GpuReport:
    """The GPUs the loaded driver lists in /proc/driver/nvidia/gpus/*/information (model, UUID,
    bus, minor): no memory and no compute capability, but proof that the driver has them when
    no tool answers (nvidia-smi absent from a container, NVML not mounted)."""
    rep = GpuReport(source="/proc/driver/nvidia")
    for bus in machine.listdir("/proc/driver/nvidia/gpus"):
        info = machine.read(f"/proc/driver/nvidia/gpus/{bus}/information") or ""
        fields = dict(re.findall(r"^([A-Za-z ]+):\s*(.*?)\s*$", info, re.M))
        minor = fields.get("Device Minor", "")
        rep.gpus.append(Gpu(index=int(minor) if minor.isdigit() else len(rep.gpus),
                            name=fields.get("Model") or "NVIDIA GPU",
                            uuid=fields.get("GPU UUID") or None,
                            bus=fields.get("Bus Location") or bus))
    rep.gpus.sort(key=lambda g: g.bus or "")
    for i, g in enumerate(rep.gpus):  # PCI order: what nvidia-smi and NVML number 0..N-1
        g.index = i
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
    """NVML where it describes this machine, else nvidia-smi, else the GPUs the driver lists
    in /proc when neither tool is there or either only rejected a question: the first answer
    that worked. A tool that is there and fails for the driver's or the GPU's sake (mismatch,
    driver not loaded, GPU lost, no answer) is the answer."""
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
    if smi.gpus or smi.error_kind not in ("library-not-found", "nvidia-smi-error"):
        return smi
    proc = proc_report(machine)
    if proc.gpus:
        proc.notes = smi.notes + [f"no tool answered ({smi.error}): the driver's own list"]
        return proc
    return smi
