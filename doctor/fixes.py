"""The fix-command catalogue: (distro, release, WSL, conda) x torch's CUDA -> commands.

Sources for every rule are in shared/research/doctor.md, section 3 (toolkit routes) and A/I
(drivers, WSL). The commands are what a user pastes: versioned packages only (the unversioned
`cuda-toolkit` installs the newest CUDA, not torch's), and never a GPU driver inside WSL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .findings import Fix

KEYRING = "cuda-keyring_1.1-1_all.deb"
REPO_URL = "https://developer.download.nvidia.com/compute/cuda/repos/{repo}/{arch}/" + KEYRING
TORCH_INDEX = "https://download.pytorch.org/whl/{tag}"

# The distros' own `nvidia-cuda-toolkit` package: which CUDA it is (research 3.2).
DISTRO_TOOLKIT = {
    ("ubuntu", "20.04"): "10.1",
    ("ubuntu", "22.04"): "11.5",
    ("ubuntu", "24.04"): "12.0",
    ("debian", "12"): "11.8",
}

# NVIDIA's network repositories for the pack's supported distros.
NVIDIA_REPOS = {
    ("ubuntu", "20.04"): "ubuntu2004",
    ("ubuntu", "22.04"): "ubuntu2204",
    ("ubuntu", "24.04"): "ubuntu2404",
    ("debian", "12"): "debian12",
}


@dataclass(frozen=True)
class Platform:
    distro: str = ""  # os-release ID, lower case: "ubuntu", "debian"
    release: str = ""  # os-release VERSION_ID: "24.04", "12"
    pretty: str = ""
    wsl: bool = False
    conda_prefix: str | None = None
    arch: str = "x86_64"
    python: str = "python"  # the environment's interpreter, used in pip commands

    @property
    def nvidia_repo(self) -> str | None:
        """Directory name of NVIDIA's apt repository for this machine, or None."""
        if self.wsl:
            return "wsl-ubuntu" if self.distro == "ubuntu" else None
        return NVIDIA_REPOS.get((self.distro, self.release))

    @property
    def repo_arch(self) -> str:
        return {"aarch64": "sbsa", "arm64": "sbsa"}.get(self.arch, self.arch)

    @property
    def name(self) -> str:
        base = self.pretty or f"{self.distro} {self.release}".strip() or "this Linux"
        return f"{base} (WSL2)" if self.wsl else base

    def pip(self, *args: str) -> str:
        return " ".join([self.python, "-m", "pip", "install", *args])


def major_minor(version: str | None) -> tuple[int, int] | None:
    """"12.6" / "12.6.85" / "12" -> (12, 6) / (12, 6) / (12, 0); None when unreadable."""
    if not version:
        return None
    parts = str(version).split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return None


def dashed(cuda: str) -> str:
    m = major_minor(cuda)
    return f"{m[0]}-{m[1]}" if m else cuda


def dotted(cuda: str) -> str:
    m = major_minor(cuda)
    return f"{m[0]}.{m[1]}" if m else cuda


def cuda_toolkit(p: Platform, cuda: str) -> Fix:
    """Install the CUDA toolkit whose major.minor is torch's, and point CUDA_HOME at it."""
    ver, pkg = dotted(cuda), f"cuda-toolkit-{dashed(cuda)}"
    if p.conda_prefix:
        return Fix(
            [f"conda install -y -c conda-forge cuda-toolkit={ver}",
             'export CUDA_HOME="$CONDA_PREFIX"'],
            f"conda environment active ({p.conda_prefix}): the toolkit goes into it. "
            "DeepSpeed links -lcurand/-lcudart from $CUDA_HOME/lib, which the full "
            "cuda-toolkit package provides (cuda-nvcc alone does not).",
        ) + distro_toolkit_note(p, cuda)
    home = f"/usr/local/cuda-{ver}"
    exports = [f"export CUDA_HOME={home}", 'export PATH="$CUDA_HOME/bin:$PATH"']
    repo = p.nvidia_repo
    if repo is None:
        return Fix(exports, (
            f"Install the CUDA {ver} toolkit ({pkg}) for {p.name} from NVIDIA's downloads "
            "(https://developer.nvidia.com/cuda-downloads), not the newest CUDA, then set:"))
    cmds = [f"wget {REPO_URL.format(repo=repo, arch=p.repo_arch)}", f"sudo dpkg -i {KEYRING}"]
    if p.distro == "debian" and not p.wsl:
        cmds.append("sudo add-apt-repository -y contrib")
    cmds += ["sudo apt-get update", f"sudo apt-get -y install {pkg}", *exports]
    text = (f"{pkg} matches torch's CUDA {ver}; the unversioned `cuda-toolkit` would install "
            "the newest CUDA instead.")
    if p.wsl:
        text += (" Inside WSL install only cuda-toolkit-* packages, never `cuda` or "
                 "`cuda-drivers`: they bring a Linux GPU driver, and WSL uses the Windows one.")
    if major_minor(cuda) and major_minor(cuda)[0] >= 13 and repo == "ubuntu2004":
        text += " CUDA 13 has no Ubuntu 20.04 packages: use a CUDA 12 torch there."
    return Fix(cmds, text) + distro_toolkit_note(p, cuda)


def distro_toolkit_note(p: Platform, cuda: str) -> Fix:
    """Say when the distro's own `nvidia-cuda-toolkit` is the wrong CUDA for torch."""
    theirs = DISTRO_TOOLKIT.get((p.distro, p.release))
    if theirs is None or p.wsl and p.distro != "ubuntu":
        return Fix()
    ours = dotted(cuda)
    label = f"{p.distro.capitalize()} {p.release}"
    if theirs == ours:
        return Fix(text=f"{label}'s own `nvidia-cuda-toolkit` (CUDA {theirs}) also matches.")
    return Fix(text=(
        f"Not `sudo apt install nvidia-cuda-toolkit`: {label}'s own package is CUDA {theirs}, "
        f"and torch was built with CUDA {ours}."))


def nvidia_driver(p: Platform) -> Fix:
    """Install (or repair) the NVIDIA driver; a reboot loads it."""
    if p.wsl:
        return Fix(
            ["wsl --update"],
            "WSL2 uses the Windows NVIDIA driver: install or update it on Windows "
            "(https://www.nvidia.com/Download/index.aspx), run `wsl --update` in Windows "
            "PowerShell, and install no Linux driver inside WSL.")
    if p.distro == "ubuntu":
        return Fix(["sudo ubuntu-drivers install", "sudo reboot"],
                   "Installs the recommended driver for this GPU.")
    if p.distro == "debian":
        return Fix(
            ["sudo add-apt-repository -y contrib non-free non-free-firmware",
             "sudo apt-get update",
             'sudo apt-get -y install linux-headers-"$(uname -r)" nvidia-driver',
             "sudo reboot"],
            "Debian's driver is in non-free; with Secure Boot on, enroll the DKMS key "
            "(`sudo mokutil --import /var/lib/dkms/mok.pub`) before rebooting.")
    return Fix(text=f"Install the NVIDIA driver with {p.name}'s package manager, then reboot.")


def dkms_rebuild() -> Fix:
    return Fix(['sudo apt-get install --reinstall dkms linux-headers-"$(uname -r)"',
                "sudo dkms autoinstall", "sudo reboot"],
               "The driver package is installed but its kernel module is not loaded (a kernel "
               "update without a module rebuild, nouveau holding the GPU, or Secure Boot "
               "refusing an unsigned module: `mokutil --sb-state`).")


def torch_wheel(p: Platform, tag: str, repo_hint: str = "make env") -> Fix:
    """Replace torch with the build from PyTorch's index `tag` (cu126, cu128, cu130)."""
    url = TORCH_INDEX.format(tag=tag)
    return Fix([f"{p.python} -m pip uninstall -y torch",
                f"make env TORCH_INDEX_URL={url}"],
               f"Reinstalls the pinned torch as its {tag} build ({repo_hint} keeps the rest of "
               "env/stack.txt).")


def torch_tag_for_driver(driver: str | None, cc: tuple[int, int] | None) -> str | None:
    """The torch 2.13 CUDA build to use with this driver and GPU; None when no build runs on
    the driver (older than CUDA 12's minor-version floor, 525.60.13)."""
    old_gpu = cc is not None and cc < (7, 5)  # Maxwell/Pascal/Volta: only cu126 builds
    have = tuple(int(x) for x in re.findall(r"\d+", driver or ""))
    if not have:
        return "cu126"
    if have < (525, 60, 13):
        return None
    if old_gpu or have < (570,):
        return "cu126"
    if have < (580,):
        return "cu128"
    return "cu130"
