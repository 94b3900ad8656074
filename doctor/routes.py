"""Fix routes for what lies outside the environment (drivers, toolkits, apt, containers): the
machine (distro, release, its apt sources, container, VM, WSL, conda, the toolkits already
installed) x torch's CUDA -> the commands that work THERE. `doctor fix` prints these, never runs
them.

Every route checks its own preconditions before it prints a command:
- apt components are enabled by editing the sources file in the format this machine uses
  (deb822 `.sources` or one-line `.list`), and only where a component is missing: Debian has no
  `add-apt-repository` by default, and where it exists it exits 0 without touching deb822 files;
- NVIDIA's repository for this distro release must hold this CUDA release
  (doctor/data/cuda_repos.json); where it does not, the nearest route that exists is printed,
  said plainly: a toolkit of the same major that torch and DeepSpeed accept, or a torch build of
  a CUDA that is packaged;
- a toolkit already installed is pointed at (CUDA_HOME, the /usr/local/cuda link), never
  installed again;
- inside a container the GPU driver lives on the host: the fix is `--gpus all` and the NVIDIA
  Container Toolkit there, never a driver install or a reboot inside; inside WSL2 it is the
  Windows driver.
Package names are versioned (`cuda-toolkit-12-6`): the unversioned `cuda-toolkit` installs the
newest CUDA, and `cuda` / `cuda-drivers` pull a driver.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from . import versions as V
from .actions import use_toolkit
from .facts.cuda import Toolkit
from .facts.packages import ds_minor_ok
from .facts.system import Platform
from .findings import Fix

KEYRING = "cuda-keyring_1.1-1_all.deb"
REPO_URL = "https://developer.download.nvidia.com/compute/cuda/repos/{repo}/{arch}/" + KEYRING
TORCH_INDEX = "https://download.pytorch.org/whl/{tag}"
CUDA_REPOS = Path(__file__).resolve().parent / "data" / "cuda_repos.json"
TORCH_TAGS = ("cu126", "cu128", "cu130")  # the CUDA builds of torch 2.13 on PyTorch's index

# The distros' own `nvidia-cuda-toolkit` package and the CUDA it is: Ubuntu 20.04 10.1.243,
# 22.04 11.5.1, 24.04 12.0.140, Debian 12 11.8.89 (non-free), as `apt-cache policy` shows them.
DISTRO_TOOLKIT = {
    ("ubuntu", "20.04"): "10.1",
    ("ubuntu", "22.04"): "11.5",
    ("ubuntu", "24.04"): "12.0",
    ("debian", "12"): "11.8",
}

# NVIDIA's container toolkit on a Debian/Ubuntu host (its install guide, "Installing with Apt").
CONTAINER_TOOLKIT = [
    "curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | sudo gpg --dearmor -o "
    "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg",
    "curl -s -L https://nvidia.github.io/libnvidia-container/stable/deb/"
    "nvidia-container-toolkit.list | sed 's#deb https://#deb [signed-by=/usr/share/keyrings/"
    "nvidia-container-toolkit-keyring.gpg] https://#g' | sudo tee "
    "/etc/apt/sources.list.d/nvidia-container-toolkit.list",
    "sudo apt-get update",
    "sudo apt-get install -y nvidia-container-toolkit",
]


# -- NVIDIA's repositories, release by release ---------------------------------------------------
@functools.cache
def cuda_repos() -> dict:
    return json.loads(CUDA_REPOS.read_text())


def nvidia_repo(p: Platform) -> str | None:
    """Directory name of NVIDIA's apt repository for this machine, or None."""
    if p.wsl:
        return "wsl-ubuntu" if p.distro == "ubuntu" else None
    for name, r in cuda_repos()["repos"].items():
        if (r["distro"], r["release"]) == (p.distro, p.release):
            return name
    return None


def packaged(repo: str, cuda: str) -> bool | None:
    """Whether NVIDIA's `repo` holds cuda-toolkit for this CUDA release; None when unknown (a
    release newer than the table, or a repository it does not describe)."""
    table = cuda_repos()
    rel, releases = V.dotted(cuda), table["releases"]
    r = table["repos"].get(repo)
    if r is None:
        return None
    if rel not in releases:
        newer = V.release(rel) > V.release(table["checked_through"])
        return None if newer else False  # 12.7 was never released
    i = releases.index(rel)
    lo = releases.index(r["first"]) if r["first"] else 0
    hi = releases.index(r["last"]) if r["last"] else len(releases) - 1
    return lo <= i <= hi


def packaged_releases(repo: str) -> list[str]:
    return [r for r in cuda_repos()["releases"] if packaged(repo, r)]


def repo_span(repo: str) -> str:
    r = cuda_repos()["repos"][repo]
    have = packaged_releases(repo)
    if not have:
        return "no CUDA release"
    return f"CUDA {have[0]} to {have[-1]}" if r["last"] or r["first"] else "every CUDA release"


# -- what torch's and DeepSpeed's mismatch rules accept -----------------------------------------
def toolkit_accepted(nvcc: str, torch_cuda: str, ds_version: str | None,
                     ds_table: dict | None = None) -> bool:
    """torch's extension builder raises only on a different CUDA major (a minor mismatch is a
    warning); DeepSpeed raises on a minor mismatch unless both are in its table."""
    mine, theirs = V.major_minor(nvcc), V.major_minor(torch_cuda)
    if not mine or not theirs or mine[0] != theirs[0]:
        return False
    if mine == theirs or not ds_version:
        return True
    table = (ds_table or ds_minor_ok(ds_version)).get(mine[0], [])
    return V.dotted(nvcc) in table and V.dotted(torch_cuda) in table


def nearest_toolkit(repo: str, torch_cuda: str, ds_version: str | None,
                    ds_table: dict | None = None) -> str | None:
    """The packaged release closest to torch's CUDA that torch (and DeepSpeed) accept."""
    want = V.major_minor(torch_cuda)
    ok = [r for r in packaged_releases(repo)
          if toolkit_accepted(r, torch_cuda, ds_version, ds_table)]
    # Closest minor first; on a tie the newer one (newer toolkits know newer GPUs).
    ok.sort(key=lambda r: (abs(V.major_minor(r)[1] - want[1]), -V.major_minor(r)[1]))
    return ok[0] if ok else None


# -- apt sources --------------------------------------------------------------------------------
def enable_components(p: Platform, wanted: tuple[str, ...]) -> Fix:
    """Commands that enable `wanted` components of the distro's archive, in the format of the
    machine's own sources files; nothing where they are enabled already."""
    if p.apt_sources is None or not p.apt_sources:
        comps = " ".join(wanted)
        return Fix(text=(f"Enable the `{comps}` component(s) of {p.name}'s archive: add them to "
                         "the `Components:` lines of /etc/apt/sources.list.d/debian.sources "
                         "(deb822), or to the `deb` lines of /etc/apt/sources.list, then "
                         "`sudo apt-get update`."))
    cmds = []
    for src in p.apt_sources:
        missing = [c for c in wanted if c not in src.components]
        if not missing:
            continue
        lines = "^Components:" if src.format == "deb822" else "^deb(-src)?[[:space:]]"
        edits = " ".join(
            f"-e '/{lines}/{{/[[:space:]]{c}([[:space:]]|$)/!s/[[:space:]]*$/ {c}/}}'"
            for c in missing)
        cmds.append(f"sudo sed -i -E {edits} {src.path}")
    if not cmds:
        return Fix()
    return Fix(cmds, f"Enables {', '.join(wanted)} in {', '.join(s.path for s in p.apt_sources)}"
                     " (edited in place: `add-apt-repository` does not change deb822 files).")


# -- drivers: where they live -------------------------------------------------------------------
def container_gpu(p: Platform, host_driver: bool) -> Fix:
    """A container without the GPU: everything happens on the host, nothing in here."""
    run = {"podman": "podman run --device nvidia.com/gpu=all ...",
           "kubernetes": "resources: {limits: {nvidia.com/gpu: 1}} in the pod spec (with "
                         "NVIDIA's device plugin on the node)"}.get(
        p.container or "", "docker run --gpus all ...")
    kind = f"{p.container} container" if p.container else "container"
    text = (f"This is a {kind}: the GPU driver belongs to the host, and "
            "the container sees the GPU only when started with it. Never install a driver or "
            "reboot inside the container. On the host"
            + ("" if host_driver else " (install its NVIDIA driver first, then)")
            + ": install the NVIDIA Container Toolkit, register it with the container runtime, "
            f"and start the container with the GPU: {run}")
    if p.container == "podman":
        tail = ["sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"]
    elif p.container == "kubernetes":
        tail = []
    else:
        tail = ["sudo nvidia-ctk runtime configure --runtime=docker",
                "sudo systemctl restart docker"]
    return Fix(CONTAINER_TOOLKIT + tail if p.container != "kubernetes" else [], text)


def reboot(p: Platform, why: str) -> Fix:
    if p.container:
        return Fix(text=f"{why} It is the host's driver: reboot the host, not this container.")
    if p.wsl:
        return Fix(["wsl --shutdown"], f"{why} Restart WSL from Windows PowerShell.")
    return Fix(["sudo reboot"], why)


def nvidia_driver(p: Platform) -> Fix:
    """Install (or repair) the NVIDIA driver where it lives; a reboot loads it."""
    if p.container:
        return Fix(text=(f"Inside a {p.container} the driver is the host's: update or install "
                         "it on the host (and reboot the host), never in the container."))
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
        comps = enable_components(p, ("contrib", "non-free", "non-free-firmware"))
        return comps + Fix(
            ["sudo apt-get update",
             'sudo apt-get -y install linux-headers-"$(uname -r)" nvidia-driver',
             "sudo reboot"],
            "Debian's driver is in non-free; with Secure Boot on, enroll the DKMS key "
            "(`sudo mokutil --import /var/lib/dkms/mok.pub`) before rebooting.")
    return Fix(text=f"Install the NVIDIA driver with {p.name}'s package manager, then reboot.")


def dkms_rebuild(p: Platform) -> Fix:
    if p.container:
        return Fix()
    return Fix(['sudo apt-get install --reinstall dkms linux-headers-"$(uname -r)"',
                "sudo dkms autoinstall", "sudo reboot"],
               "The driver package is installed but its kernel module is not loaded (a kernel "
               "update without a module rebuild, nouveau holding the GPU, or Secure Boot "
               "refusing an unsigned module: `mokutil --sb-state`).")


# -- the CUDA toolkit ---------------------------------------------------------------------------
def point_at(tk: Toolkit, link_target: str | None, alternatives: bool) -> Fix:
    """Use a toolkit that is already installed: CUDA_HOME, and say how to relink."""
    text = f"The CUDA {tk.version} toolkit is already installed at {tk.path}: use it"
    if link_target and link_target != tk.path:
        relink = (f"sudo update-alternatives --set cuda {tk.path}" if alternatives
                  else f"sudo ln -sfn {tk.path} /usr/local/cuda")
        text += (f" (/usr/local/cuda points at {link_target}; to make {tk.path} the default "
                 f"for every shell: `{relink}`)")
    return use_toolkit(tk.path, text + ".")


def apt_toolkit(p: Platform, repo: str, cuda: str, torch_cuda: str | None = None) -> Fix:
    ver, pkg = V.dotted(cuda), f"cuda-toolkit-{V.dashed(cuda)}"
    cmds = [f"wget {REPO_URL.format(repo=repo, arch=p.repo_arch)}", f"sudo dpkg -i {KEYRING}"]
    fix = Fix(cmds)
    if p.distro == "debian" and not p.wsl:  # NVIDIA's Debian packages depend on contrib
        fix += enable_components(p, ("contrib",))
    fix += Fix(["sudo apt-get update", f"sudo apt-get -y install {pkg}",
                f"export CUDA_HOME=/usr/local/cuda-{ver}", 'export PATH="$CUDA_HOME/bin:$PATH"'])
    text = (f"{pkg} matches torch's CUDA {ver}" if torch_cuda in (None, cuda) else
            f"{pkg}, versioned") + ("; the unversioned `cuda-toolkit` would install the newest "
                                    "CUDA instead.")
    if p.wsl:
        text += (" Inside WSL install only cuda-toolkit-* packages, never `cuda` or "
                 "`cuda-drivers`: they bring a Linux GPU driver, and WSL uses the Windows one.")
    return Fix(text=text) + fix


def cuda_toolkit(p: Platform, cuda: str, ds_version: str | None = None,
                 installed: tuple[Toolkit, ...] = (), link_target: str | None = None,
                 alternatives: bool = False, torch_tag: str | None = None,
                 ds_table: dict | None = None) -> Fix:
    """torch's CUDA toolkit: the one installed, else the packaged route, else the nearest one.

    `torch_tag` is the torch build this driver runs (for the route that moves torch instead)."""
    ver = V.dotted(cuda)
    have = {V.dotted(t.version): t for t in installed if t.nvcc}
    if ver in have:
        return point_at(have[ver], link_target, alternatives)
    if p.conda_prefix:
        return Fix(
            [f"conda install -y -c conda-forge cuda-toolkit={ver}",
             'export CUDA_HOME="$CONDA_PREFIX"'],
            f"conda environment active ({p.conda_prefix}): the toolkit goes into it. "
            "DeepSpeed links -lcurand/-lcudart from $CUDA_HOME/lib, which the full "
            "cuda-toolkit package provides (cuda-nvcc alone does not).",
        ) + distro_toolkit_note(p, cuda)
    repo = nvidia_repo(p)
    if repo is None:
        return Fix([f"export CUDA_HOME=/usr/local/cuda-{ver}",
                    'export PATH="$CUDA_HOME/bin:$PATH"'],
                   f"Install the CUDA {ver} toolkit (cuda-toolkit-{V.dashed(cuda)}) for {p.name} "
                   "from NVIDIA's downloads (https://developer.nvidia.com/cuda-downloads), not "
                   "the newest CUDA, then set:")
    there = packaged(repo, cuda)
    if there is not False:
        fix = apt_toolkit(p, repo, cuda)
        if there is None:
            fix += Fix(text=f"(CUDA {ver} is newer than the doctor's table of NVIDIA's {repo} "
                            "repository: check that it lists the package.)")
        return fix + distro_toolkit_note(p, cuda)
    # No NVIDIA package of torch's CUDA for this distro release: the nearest route that exists.
    if DISTRO_TOOLKIT.get((p.distro, p.release)) == ver and not p.wsl:
        own = (enable_components(p, ("contrib", "non-free")) if p.distro == "debian" else Fix())
        return (Fix(text=f"NVIDIA's {repo} repository has no CUDA {ver}, but {p.name}'s own "
                         f"`nvidia-cuda-toolkit` is CUDA {ver}: its nvcc is /usr/bin/nvcc, so "
                         "torch and DeepSpeed find CUDA_HOME=/usr.")
                + own + Fix(["sudo apt-get update", "sudo apt-get -y install nvidia-cuda-toolkit",
                             "export CUDA_HOME=/usr"]))
    why = (f"NVIDIA's {repo} repository has no CUDA {ver} packages (it holds "
           f"{repo_span(repo)}), so cuda-toolkit-{V.dashed(cuda)} cannot be installed on "
           f"{p.name}.")
    near = nearest_toolkit(repo, cuda, ds_version, ds_table)
    move_to = V.from_digits(torch_tag[2:]) if torch_tag else None
    if not (move_to and packaged(repo, move_to) and move_to != ver):
        move_to = None
    if near:
        accepted = ("torch accepts it (a minor mismatch is only a warning)" + (
            f" and so does deepspeed {ds_version} (both in its minor-mismatch list)"
            if ds_version else ""))
        near_tk = have.get(near)
        route = (point_at(near_tk, link_target, alternatives) if near_tk
                 else apt_toolkit(p, repo, near, cuda))
        text = f"{why} The nearest packaged toolkit is CUDA {near}, the same major: {accepted}."
        if move_to:
            text += (f" (Or move torch to its {torch_tag} build, whose CUDA {repo} packages: "
                     f"`make env TORCH_INDEX_URL={TORCH_INDEX.format(tag=torch_tag)}`.)")
        return Fix(text=text) + route
    major = V.major_minor(cuda)[0]
    rules = (f"deepspeed {ds_version} accepts no other minor of CUDA {major}" if ds_version
             else f"no CUDA {major} release is packaged there")
    if move_to:
        return (Fix(text=f"{why} No packaged toolkit of the same major will do ({rules}): move "
                         f"torch to its {torch_tag} build, whose CUDA {move_to} {repo} packages, "
                         "then install that toolkit.")
                + torch_wheel(p, torch_tag)
                + printed(cuda_toolkit(p, move_to, ds_version, installed, link_target,
                                       alternatives)))
    return Fix(text=f"{why} No packaged toolkit of the same major will do ({rules}), and no "
                    "torch build this driver runs is packaged there: install the toolkit from "
                    "NVIDIA's runfile (https://developer.nvidia.com/cuda-toolkit-archive, "
                    f"CUDA {ver}, toolkit only).")


def printed(fix: Fix) -> Fix:
    """A fix that comes after a step the doctor does not take (a torch download): its lines are
    shown, none applied by `doctor fix`."""
    return Fix(fix.commands, fix.text)


def distro_toolkit_note(p: Platform, cuda: str) -> Fix:
    """Say when the distro's own `nvidia-cuda-toolkit` is the wrong CUDA for torch."""
    theirs = DISTRO_TOOLKIT.get((p.distro, p.release))
    if theirs is None or p.wsl and p.distro != "ubuntu":
        return Fix()
    ours = V.dotted(cuda)
    label = f"{p.distro.capitalize()} {p.release}"
    if theirs == ours:
        return Fix(text=f"{label}'s own `nvidia-cuda-toolkit` (CUDA {theirs}) also matches.")
    return Fix(text=(
        f"Not `sudo apt install nvidia-cuda-toolkit`: {label}'s own package is CUDA {theirs}, "
        f"and torch was built with CUDA {ours}."))


def toolkit_fix(f) -> Fix:
    """The toolkit fix for a Facts: torch's CUDA, the toolkits here, DeepSpeed, the driver."""
    cuda = f.torch.cuda
    if not cuda:
        return Fix(text="Nothing to do while torch is a CPU build.")
    link = f.cuda_link
    ds = f.deepspeed_version
    return cuda_toolkit(f.platform, cuda, ds, tuple(f.toolkits), link["target"],
                        link["alternatives"], torch_tag_for_driver(f.driver_version, f.min_cc),
                        f.ds_minor_table if ds else None)


# -- torch --------------------------------------------------------------------------------------
def torch_wheel(p: Platform, tag: str, repo_hint: str = "make env") -> Fix:
    """Replace torch with the build from PyTorch's index `tag` (cu126, cu128, cu130)."""
    url = TORCH_INDEX.format(tag=tag)
    return Fix([p.pip("uninstall", "-y", "torch"),
                f"make env TORCH_INDEX_URL={url}"],
               f"Reinstalls the pinned torch as its {tag} build ({repo_hint} keeps the rest of "
               "env/stack.txt).")


def torch_tag_for_driver(driver: str | None, cc: tuple[int, int] | None) -> str | None:
    """The torch 2.13 CUDA build to use with this driver and GPU; None when no build runs on
    the driver (older than CUDA 12's minor-version floor, 525.60.13)."""
    old_gpu = cc is not None and cc < (7, 5)  # Maxwell/Pascal/Volta: only cu126 builds
    have = V.release(re.sub(r"[^0-9.].*$", "", driver or ""))
    if not have:
        return "cu126"
    if have < (525, 60, 13):
        return None
    if old_gpu or have < (570,):
        return "cu126"
    if have < (580,):
        return "cu128"
    return "cu130"
