"""The system: the distro and its apt sources, dpkg, kernel modules, and where this runs
(container, VM, WSL2), which decides where a driver fix goes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ._base import fact


@dataclass(frozen=True)
class AptSource:
    """One sources file's entries for the distro's own archive (suites of its codename)."""

    path: str  # as on the machine: /etc/apt/sources.list.d/debian.sources
    format: str  # "deb822" | "one-line"
    components: tuple[str, ...]  # enabled on every such entry of the file


@dataclass(frozen=True)
class Platform:
    distro: str = ""  # os-release ID, lower case: "ubuntu", "debian"
    release: str = ""  # os-release VERSION_ID: "24.04", "12"
    pretty: str = ""
    wsl: bool = False
    conda_prefix: str | None = None
    arch: str = "x86_64"
    python: str = "python"  # the environment's interpreter, used in pip commands
    container: str | None = None  # docker | podman | kubernetes | lxc | container
    vm: str | None = None  # kvm | qemu | vmware | virtualbox | hyper-v | xen | ...
    apt_sources: tuple[AptSource, ...] | None = None  # None: not readable here

    @property
    def repo_arch(self) -> str:
        return {"aarch64": "sbsa", "arm64": "sbsa"}.get(self.arch, self.arch)

    @property
    def name(self) -> str:
        base = self.pretty or f"{self.distro} {self.release}".strip() or "this Linux"
        return f"{base} (WSL2)" if self.wsl else base

    def pip(self, *args: str) -> str:
        """Every pip line the doctor prints: this environment's interpreter, `-m pip`."""
        return " ".join([self.python, "-m", "pip", *args])


class SystemFacts:
    @fact
    def os_release(self) -> dict:
        text = self.m.read("/etc/os-release") or self.m.read("/usr/lib/os-release") or ""
        out = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip().isidentifier():
                out[key.strip()] = value.strip().strip("'\"")
        return out

    @fact
    def kernel_release(self) -> str | None:
        """The running kernel's release ("6.8.0-45-generic"): what it accepts of a `#!` line."""
        text = (self.m.read("/proc/sys/kernel/osrelease") or "").strip()
        if text:
            return text
        return os.uname().release if self.m.real_root else None

    @fact
    def wsl(self) -> bool:
        kernel = (self.m.read("/proc/sys/kernel/osrelease") or "") + (
            self.m.read("/proc/version") or "")
        return ("microsoft" in kernel.lower() or "wsl" in kernel.lower()
                or bool(self.m.getenv("WSL_DISTRO_NAME")))

    @fact
    def platform(self) -> Platform:
        osr = self.os_release
        virt = self.virtualization
        return Platform(
            distro=osr.get("ID", "").lower(), release=osr.get("VERSION_ID", ""),
            pretty=osr.get("PRETTY_NAME", ""), wsl=self.wsl,
            conda_prefix=self.m.getenv("CONDA_PREFIX") or None,
            arch=os.uname().machine or "x86_64", python=self.m.python,
            container=virt["container"], vm=virt["vm"], apt_sources=self.apt_sources)

    @fact
    def virtualization(self) -> dict:
        """Container (and which) and VM (and which), with what said so: the GPU's driver lives
        on a container's host, and a VM sees a GPU only when one is passed through."""
        env, evidence = self.m.getenv, []
        cgroup = self.m.read("/proc/1/cgroup") or ""
        container = None
        if env("KUBERNETES_SERVICE_HOST") or "kubepods" in cgroup:
            container = "kubernetes"
            evidence.append("KUBERNETES_SERVICE_HOST" if env("KUBERNETES_SERVICE_HOST")
                            else "/proc/1/cgroup: kubepods")
        elif self.m.exists("/.dockerenv"):
            container, _ = "docker", evidence.append("/.dockerenv")
        elif self.m.exists("/run/.containerenv"):
            container, _ = "podman", evidence.append("/run/.containerenv")
        else:
            for word, name in (("docker", "docker"), ("libpod", "podman"), ("lxc", "lxc"),
                               ("containerd", "container")):
                if word in cgroup:
                    container, _ = name, evidence.append(f"/proc/1/cgroup: {word}")
                    break
            else:
                if env("container"):  # systemd-nspawn, lxc and podman set it for PID 1
                    container, _ = env("container"), evidence.append("$container")
        vm = None
        if not self.wsl:
            dmi = " ".join((self.m.read(f"/sys/class/dmi/id/{n}") or "").strip()
                           for n in ("sys_vendor", "product_name")).lower()
            for word, name in (("qemu", "qemu"), ("kvm", "kvm"), ("vmware", "vmware"),
                               ("virtualbox", "virtualbox"), ("innotek", "virtualbox"),
                               ("virtual machine", "hyper-v"), ("xen", "xen"),
                               ("amazon ec2", "amazon ec2"), ("google compute", "google cloud")):
                if word in dmi:
                    vm, _ = name, evidence.append(f"DMI: {dmi.strip()}")
                    break
            else:
                flags = re.search(r"^flags\s*:.*$", self.m.read("/proc/cpuinfo") or "", re.M)
                if flags and " hypervisor" in flags.group(0):
                    vm, _ = "hypervisor", evidence.append("/proc/cpuinfo: hypervisor flag")
        return {"container": container, "vm": vm, "evidence": evidence,
                "gpu_devices": self.m.glob("/dev/nvidia[0-9]*") != [] or self.m.exists(
                    "/dev/nvidiactl")}

    @fact
    def apt_sources(self) -> tuple[AptSource, ...] | None:
        """The distro archive's entries per sources file, deb822 or one-line (None: no apt)."""
        if not self.m.exists("/etc/apt", kind="dir"):
            return None
        codename = self.os_release.get("VERSION_CODENAME", "")
        distro = self.os_release.get("ID", "")

        def ours(suite: str, uri: str) -> bool:
            if codename:
                return suite.split("-")[0] == codename
            return distro and distro in uri

        files = ["/etc/apt/sources.list"] + [
            self.m.unhost(p) for p in self.m.glob("/etc/apt/sources.list.d/*")
            if p.endswith((".list", ".sources"))]
        out = []
        for path in files:
            text = self.m.read(path)
            if text is None:
                continue
            comps: list[set[str]] = []
            if path.endswith(".sources"):
                for stanza in re.split(r"\n\s*\n", text):
                    fields = {}
                    for line in stanza.splitlines():
                        key, sep, value = line.partition(":")
                        if sep and not line.startswith(("#", " ", "\t")):
                            fields[key.strip().lower()] = value.split("#")[0].strip()
                    if fields.get("enabled", "yes").lower() == "no":
                        continue
                    suites = fields.get("suites", "").split()
                    if any(ours(s, fields.get("uris", "")) for s in suites):
                        comps.append(set(fields.get("components", "").split()))
                fmt = "deb822"
            else:
                for line in text.splitlines():
                    m = re.match(r"^deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$",
                                 line.split("#")[0].strip())
                    if m and ours(m.group(2), m.group(1)):
                        comps.append(set(m.group(3).split()))
                fmt = "one-line"
            if comps:
                common = set.intersection(*comps)
                out.append(AptSource(path, fmt, tuple(sorted(common))))
        return tuple(out)
    @fact
    def kernel_modules(self) -> list[str]:
        text = self.m.read("/proc/modules") or ""
        return [line.split()[0] for line in text.splitlines() if line.split()]

    @fact
    def dpkg_installed(self) -> list[str] | None:
        """Packages dpkg has installed (/var/lib/dpkg/status); None without dpkg."""
        text = self.m.read("/var/lib/dpkg/status")
        if text is None:
            return None
        out = []
        for block in text.split("\n\n"):
            fields = dict(re.findall(r"^(Package|Status): (.*)$", block, re.M))
            if "installed" in fields.get("Status", "").split() and fields.get("Package"):
                out.append(fields["Package"])
        return out
