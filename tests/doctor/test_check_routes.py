"""Fix routes that check their own preconditions, on fake machines of the kinds people run: the
apt sources' format (deb822 or one-line), whether NVIDIA packages torch's CUDA for this distro
release, containers, VMs, the toolkits already installed, and what an environment variable does
in the installed version of the library that reads it. Each test asserts the exact fix lines;
`no_reinstall` asserts on every finding that nothing installed is installed again."""

import re
import subprocess

import pytest

from doctor import routes
from doctor.facts import Platform, Toolkit
from doctor.routes import CONTAINER_TOOLKIT, cuda_toolkit, nvidia_repo

KEYRING = "https://developer.download.nvidia.com/compute/cuda/repos/{}/x86_64/cuda-keyring_1.1-1_all.deb"
EXPORTS = 'export PATH="$CUDA_HOME/bin:$PATH"'
SED_DEB822 = ("sudo sed -i -E {} /etc/apt/sources.list.d/debian.sources")
SED_LIST = ("sudo sed -i -E {} /etc/apt/sources.list")


def edit(c, lines="^Components:"):
    return f"-e '/{lines}/{{/[[:space:]]{c}([[:space:]]|$)/!s/[[:space:]]*$/ {c}/}}'"


def no_reinstall(r, fake):
    """No fix of any finding installs a toolkit that is in /usr/local/cuda-X.Y already."""
    here = {p.name.removeprefix("cuda-").replace(".", "-")
            for p in (fake.root / "usr/local").glob("cuda-*") if (p / "bin/nvcc").exists()}
    for f in r.data["findings"]:
        for c in f["fix"]["commands"]:
            m = re.search(r"install (?:-y )?cuda-toolkit-(\d+-\d+)", c)
            assert not (m and m.group(1) in here), (f["id"], c)


def apply_sed(fake, command):
    """Run a printed `sudo sed -i ...` for real (without sudo) on the fake root's file."""
    argv = command.split(" ", 1)[1]
    path = argv.rsplit(" ", 1)[1]
    local = str(fake.root / path.lstrip("/"))
    subprocess.run(["sh", "-c", argv.rsplit(" ", 1)[0] + f" '{local}'"], check=True)


# -- Debian's sources: deb822 or one-line --------------------------------------------------------
DRIVER_TAIL = ["sudo apt-get update",
               'sudo apt-get -y install linux-headers-"$(uname -r)" nvidia-driver',
               "sudo reboot"]
ALL = ("contrib", "non-free", "non-free-firmware")


@pytest.mark.parametrize("fmt, sed, lines", [
    ("deb822", SED_DEB822, "^Components:"),
    ("one-line", SED_LIST, "^deb(-src)?[[:space:]]"),
])
def test_debian_driver_edits_the_sources_in_their_own_format(fake, fmt, sed, lines):
    fake.distro("debian-12").pci_gpu().torch()
    path = fake.apt(fmt, "main")
    fake.smi_failing("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                     "driver. Make sure that the latest NVIDIA driver is installed and running.")
    r = fake.run("gpu.driver")
    cmds = r.commands("gpu.driver")
    enable = sed.format(" ".join(edit(c, lines) for c in ALL))
    assert cmds[-4:] == [enable, *DRIVER_TAIL]
    assert not any("add-apt-repository" in c for c in cmds)
    # The printed edit does what it says, on the file as the distro ships it...
    apply_sed(fake, enable)
    text = path.read_text()
    if fmt == "deb822":
        assert text.count("Components: main contrib non-free non-free-firmware\n") == 2
    else:
        entries = [ln for ln in text.splitlines() if ln.startswith("deb")]
        assert len(entries) == 5
        assert all(ln.endswith(" main contrib non-free non-free-firmware") for ln in entries)
        assert text.startswith("#deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 "
                               "DVD]/ bookworm main\n")  # comments untouched
    # ...and once done, the doctor no longer proposes it.
    again = fake.run("gpu.driver").commands("gpu.driver")
    assert again[-3:] == DRIVER_TAIL and not any("sed" in c for c in again)


def test_debian_components_already_enabled_are_not_edited(fake):
    fake.distro("debian-12").pci_gpu().torch()
    fake.apt("deb822", "main contrib non-free non-free-firmware")
    fake.smi_failing("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                     "driver.")
    cmds = fake.run("gpu.driver").commands("gpu.driver")
    assert not any("sed" in c for c in cmds)
    assert cmds[-3:] == DRIVER_TAIL


def test_debian_without_readable_sources_says_what_to_edit(fake):
    fake.distro("debian-12").pci_gpu().torch()
    fake.smi_failing("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                     "driver.")
    f = fake.run("gpu.driver").find("gpu.driver")
    assert not any("sed" in c or "add-apt-repository" in c for c in f["fix"]["commands"])
    assert ("Enable the `contrib non-free non-free-firmware` component(s) of Debian GNU/Linux 12 "
            "(bookworm)'s archive: add them to the `Components:` lines of "
            "/etc/apt/sources.list.d/debian.sources (deb822)") in f["fix"]["text"]


def test_debian_toolkit_route_enables_contrib_in_deb822(fake):
    fake.gpu_box(distro="debian-12", cuda="12.6").env.pop("CUDA_HOME")
    fake.apt("deb822", "main")
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    r = fake.run("cuda.home")
    assert r.commands("cuda.home") == [
        "wget " + KEYRING.format("debian12"), "sudo dpkg -i cuda-keyring_1.1-1_all.deb",
        SED_DEB822.format(edit("contrib")), "sudo apt-get update",
        "sudo apt-get -y install cuda-toolkit-12-6", "export CUDA_HOME=/usr/local/cuda-12.6",
        EXPORTS]
    no_reinstall(r, fake)


# -- containers and VMs: where the driver lives --------------------------------------------------
@pytest.mark.parametrize("kind, tail", [
    ("docker", ["sudo nvidia-ctk runtime configure --runtime=docker",
                "sudo systemctl restart docker"]),
    ("podman", ["sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"]),
])
def test_container_without_gpu_access_is_fixed_on_the_host(fake, kind, tail):
    """`docker run` without --gpus: the host's module shows in /proc, the GPU on the PCI bus,
    but there is no nvidia-smi and no /dev/nvidia*."""
    fake.distro("ubuntu-22.04").driver("550.90.07").pci_gpu().container(kind)
    fake.torch("2.13.0+cu126", "12.6")
    r = fake.run("gpu", "torch")
    f = r.find("gpu.driver")
    assert f["status"] == "fail"
    assert f["summary"].startswith(f"{kind} container without GPU access: the host's NVIDIA "
                                   "driver 550.90.07 is loaded")
    assert f["fix"]["commands"] == CONTAINER_TOOLKIT + tail
    assert "Never install a driver or reboot inside the container" in f["fix"]["text"]
    for finding in r.data["findings"]:
        for c in finding["fix"]["commands"]:
            assert not re.search(r"reboot|ubuntu-drivers|dkms|nvidia-driver", c), (finding, c)


def test_kubernetes_pod_without_gpu_asks_for_the_resource(fake):
    fake.distro("ubuntu-22.04").driver("550.90.07").pci_gpu().container("kubernetes")
    fake.torch("2.13.0+cu126", "12.6")
    f = fake.run("gpu.driver").find("gpu.driver")
    assert f["status"] == "fail" and f["fix"]["commands"] == []
    assert "nvidia.com/gpu: 1" in f["fix"]["text"]


def test_driver_library_mismatch_in_a_container_is_the_hosts_reboot(fake):
    fake.distro("ubuntu-22.04").driver("550.90.07").pci_gpu().container("docker").torch()
    fake.file("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.120", "")
    fake.smi_failing("Failed to initialize NVML: Driver/library version mismatch", rc=18)
    f = fake.run("gpu.driver_mismatch").find("gpu.driver_mismatch")
    assert f["status"] == "fail" and f["fix"]["commands"] == []
    assert "reboot the host, not this container" in f["fix"]["text"]


def test_vm_without_a_gpu_says_passthrough_not_driver(fake):
    fake.distro("ubuntu-24.04").vm().torch("2.13.0+cpu", None)
    f = fake.run("gpu.driver").find("gpu.driver")
    assert f["status"] == "warn" and f["fix"]["commands"] == []
    assert f["summary"].startswith("no NVIDIA GPU in this qemu virtual machine")
    assert "passed through to it (PCI passthrough or vGPU" in f["fix"]["text"]


# -- NVIDIA packages this CUDA for this distro release? ------------------------------------------
def test_ubuntu_2404_cu124_gets_the_nearest_packaged_toolkit(fake):
    fake.gpu_box(distro="ubuntu-24.04", cuda="12.4").env.pop("CUDA_HOME")
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    r = fake.run("cuda.home")
    f = r.find("cuda.home")
    assert f["fix"]["commands"] == [
        "wget " + KEYRING.format("ubuntu2404"), "sudo dpkg -i cuda-keyring_1.1-1_all.deb",
        "sudo apt-get update", "sudo apt-get -y install cuda-toolkit-12-5",
        "export CUDA_HOME=/usr/local/cuda-12.5", EXPORTS]
    assert ("NVIDIA's ubuntu2404 repository has no CUDA 12.4 packages (it holds CUDA 12.5 to "
            "13.2), so cuda-toolkit-12-4 cannot be installed") in f["fix"]["text"]
    assert ("The nearest packaged toolkit is CUDA 12.5, the same major: torch accepts it (a minor "
            "mismatch is only a warning) and so does deepspeed 0.19.8") in f["fix"]["text"]
    # The driver (550) runs torch's cu126 build, which ubuntu2404 packages: said as the other way.
    assert "make env TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126" in f["fix"]["text"]


def test_ubuntu_2004_cu130_moves_torch_to_a_packaged_cuda(fake):
    """CUDA 13 has no Ubuntu 20.04 packages, and DeepSpeed accepts no CUDA 13 minor mismatch:
    the route that exists is torch's cu126 build (what driver 550 runs) and toolkit 12.6."""
    fake.gpu_box(distro="ubuntu-20.04", cuda="13.0").env.pop("CUDA_HOME")
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    f = fake.run("cuda.home").find("cuda.home")
    assert f["fix"]["commands"] == [
        f"{fake.python} -m pip uninstall -y torch",
        "make env TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126",
        "wget " + KEYRING.format("ubuntu2004"), "sudo dpkg -i cuda-keyring_1.1-1_all.deb",
        "sudo apt-get update", "sudo apt-get -y install cuda-toolkit-12-6",
        "export CUDA_HOME=/usr/local/cuda-12.6", EXPORTS]
    assert "NVIDIA's ubuntu2004 repository has no CUDA 13.0 packages (it holds CUDA 11.0 to " \
           "12.9)" in f["fix"]["text"]


def test_debian_12_cu118_uses_debians_own_matching_package(fake):
    fake.gpu_box(distro="debian-12", cuda="11.8").env.pop("CUDA_HOME")
    fake.apt("one-line", "main")
    f = fake.run("cuda.home").find("cuda.home")
    assert f["fix"]["commands"] == [
        SED_LIST.format(" ".join(edit(c, "^deb(-src)?[[:space:]]")
                                 for c in ("contrib", "non-free"))),
        "sudo apt-get update", "sudo apt-get -y install nvidia-cuda-toolkit",
        "export CUDA_HOME=/usr"]


REPOS = list(routes.cuda_repos()["repos"])
PLATFORMS = {"ubuntu2004": Platform("ubuntu", "20.04"), "ubuntu2204": Platform("ubuntu", "22.04"),
             "ubuntu2404": Platform("ubuntu", "24.04"),
             "debian12": Platform("debian", "12", apt_sources=()),
             "wsl-ubuntu": Platform("ubuntu", "22.04", wsl=True)}


def test_the_repo_table_is_data_with_a_source_for_every_repository():
    table = routes.cuda_repos()
    assert set(PLATFORMS) == set(table["repos"])
    releases = table["releases"]
    assert releases == sorted(releases, key=lambda r: tuple(map(int, r.split("."))))
    for name, repo in table["repos"].items():
        assert repo["source"] and len(repo["source"]) > 40, name
        for bound in (repo["first"], repo["last"]):
            assert bound is None or bound in releases
        assert nvidia_repo(PLATFORMS[name]) == name


@pytest.mark.parametrize("repo", REPOS)
@pytest.mark.parametrize("cuda", ["11.8", "12.1", "12.4", "12.6", "12.8", "12.9", "13.0"])
@pytest.mark.parametrize("ds", [None, "0.16.2", "0.19.8"])
def test_every_install_the_builder_prints_is_in_the_table(repo, cuda, ds):
    """Against the data: an apt install of cuda-toolkit-X-Y only where `repo` packages X.Y, the
    same major as torch's CUDA, and accepted by the DeepSpeed installed."""
    fix = cuda_toolkit(PLATFORMS[repo], cuda, ds, torch_tag="cu126")
    for c in fix.commands:
        if m := re.search(r"install cuda-toolkit-(\d+)-(\d+)$", c):
            got = f"{m.group(1)}.{m.group(2)}"
            assert routes.packaged(repo, got), (repo, cuda, c)
            if got != cuda and "make env TORCH_INDEX_URL" not in " ".join(fix.commands):
                assert routes.toolkit_accepted(got, cuda, ds), (repo, cuda, ds, c)
        if c.startswith("wget "):
            assert f"/repos/{repo}/" in c
    if routes.packaged(repo, cuda):
        assert f"sudo apt-get -y install cuda-toolkit-{cuda.replace('.', '-')}" in fix.commands


def test_installed_toolkit_is_pointed_at_never_installed():
    tk = Toolkit("/usr/local/cuda-12.6", "12.6")
    fix = cuda_toolkit(Platform("ubuntu", "24.04"), "12.6", None, (tk,), "/usr/local/cuda-13.0")
    assert fix.commands == ["export CUDA_HOME=/usr/local/cuda-12.6", EXPORTS]
    assert "`sudo ln -sfn /usr/local/cuda-12.6 /usr/local/cuda`" in fix.text


# -- the right toolkit installed, the wrong one linked -------------------------------------------
@pytest.mark.parametrize("alternatives, relink", [
    (False, "sudo ln -sfn /usr/local/cuda-12.6 /usr/local/cuda"),
    (True, "sudo update-alternatives --set cuda /usr/local/cuda-12.6"),
])
def test_right_toolkit_installed_wrong_one_linked(fake, alternatives, relink):
    fake.gpu_box(distro="ubuntu-22.04", cuda="12.6").env.pop("CUDA_HOME")
    fake.local_toolkit("12.6", "12.6.85")
    fake.local_toolkit("13.0", "13.0.88")
    fake.cuda_link("13.0", alternatives=alternatives)
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    r = fake.run("cuda", "deepspeed")
    f = r.find("cuda.nvcc")
    assert f["status"] == "fail" and f["summary"].startswith("nvcc 13.0 but torch was built "
                                                             "with CUDA 12.6")
    assert f["fix"]["commands"] == ["export CUDA_HOME=/usr/local/cuda-12.6", EXPORTS]
    assert ("The CUDA 12.6 toolkit is already installed at /usr/local/cuda-12.6: use it "
            "(/usr/local/cuda points at /usr/local/cuda-13.0; to make /usr/local/cuda-12.6 the "
            f"default for every shell: `{relink}`).") in f["fix"]["text"]
    no_reinstall(r, fake)


def test_installed_toolkit_found_when_cuda_home_is_unset(fake):
    fake.gpu_box(distro="ubuntu-24.04", cuda="12.6").env.pop("CUDA_HOME")
    fake.local_toolkit("12.6")
    r = fake.run("cuda")
    # torch does not look in /usr/local/cuda-X.Y (only /usr/local/cuda): point it there.
    assert r.status("cuda.home") == "info"
    assert r.commands("cuda.home") == ["export CUDA_HOME=/usr/local/cuda-12.6", EXPORTS]
    no_reinstall(r, fake)


# -- environment variables, as the installed library reads them ----------------------------------
@pytest.mark.parametrize("value, status, summary, commands", [
    ("124", "fail", "BNB_CUDA_VERSION=124: bitsandbytes 0.50.2 loads libbitsandbytes_cuda124.so, "
     "which is not installed", ["unset BNB_CUDA_VERSION"]),
    ("126", "warn", "BNB_CUDA_VERSION=126 makes bitsandbytes 0.50.2 load "
     "libbitsandbytes_cuda126.so beside torch's CUDA 12.8", ["unset BNB_CUDA_VERSION"]),
    ("128", "pass", "libbitsandbytes_cuda128.so for torch's CUDA 12.8 (BNB_CUDA_VERSION names it)",
     []),
    ("12.6", "fail", "BNB_CUDA_VERSION='12.6': bitsandbytes 0.50.2 raises RuntimeError",
     ["unset BNB_CUDA_VERSION"]),
])
def test_bnb_cuda_version_bypasses_selection_as_its_source_says(fake, value, status, summary,
                                                                 commands):
    """With the installed bitsandbytes' own cextension.py: an override loads exactly the library
    it names (no same-major fallback: 124 is not 'served' by 121 or 126)."""
    fake.gpu_box(cuda="12.8")
    fake.bnb("0.50.2", ["cuda121", "cuda126", "cuda128", "cpu"], cextension="installed")
    fake.env["BNB_CUDA_VERSION"] = value
    f = fake.run("bnb.cuda_lib").find("bnb.cuda_lib")
    assert f["status"] == status, f
    assert f["summary"].startswith(summary)
    assert f["fix"]["commands"] == commands


def test_bnb_that_does_not_read_the_override_ignores_it(fake):
    fake.gpu_box(cuda="12.8")
    fake.bnb("0.50.2", ["cuda126", "cuda128", "cpu"], cextension="# no override here\n")
    fake.env["BNB_CUDA_VERSION"] = "126"
    f = fake.run("bnb.cuda_lib").find("bnb.cuda_lib")
    assert f["status"] == "pass" and "libbitsandbytes_cuda128.so" in f["summary"]
    assert "does not read BNB_CUDA_VERSION (bitsandbytes/cextension.py): ignored" in " ".join(
        f["details"])


@pytest.mark.parametrize("reads, status", [(True, "warn"), (False, "fail")])
def test_ds_skip_cuda_check_counts_only_where_deepspeed_reads_it(fake, reads, status):
    fake.gpu_box(cuda="12.1")
    home = fake.toolkit("12.8", fake.tmp / "cuda-12.8")
    fake.env["CUDA_HOME"] = str(home)
    fake.dist("deepspeed", "0.16.2", package="deepspeed")
    builder = fake.site / "deepspeed/ops/op_builder/builder.py"
    builder.parent.mkdir(parents=True)
    builder.write_text("if sys_cuda_version != torch_cuda_version:\n"
                       + ("    if os.getenv('DS_SKIP_CUDA_CHECK', '0') == '1':\n" if reads else "")
                       + "        raise CUDAMismatchException(...)\n")
    fake.env["DS_SKIP_CUDA_CHECK"] = "1"
    f = fake.run("cuda.nvcc").find("cuda.nvcc")
    assert f["status"] == status, f


# -- info that needs a fix later carries it now --------------------------------------------------
def test_cuda_home_with_colon_beside_cpu_torch_carries_the_fix(fake):
    fake.distro("ubuntu-22.04").torch("2.13.0+cpu", None)
    home = fake.toolkit("12.6", fake.tmp / "cuda-12.6")
    fake.env["CUDA_HOME"] = f"{home}:/usr/local/cuda"
    f = fake.run("cuda.home").find("cuda.home")
    assert f["status"] == "info"
    assert f["fix"]["commands"] == [f"export CUDA_HOME={home}", EXPORTS]
    assert "before a CUDA torch uses it" in f["fix"]["text"]


RAGGED = '''        cuda_okay = True
        if not os.environ.get("DS_IGNORE_CUDA_DETECTION"):
            if not self.is_rocm_pytorch() and torch.cuda.is_available():  #ignore-cuda
                sys_cuda_major, _ = installed_cuda_version()
'''


@pytest.mark.parametrize("value, source, ignored", [
    ("0", RAGGED, True),    # 0.19.8's builders test truthiness: "0" skips the probe too
    ("1", "# reads nothing\n", False),  # a DeepSpeed whose builders do not read it
])
def test_ds_ignore_cuda_detection_as_the_installed_builders_read_it(fake, value, source,
                                                                     ignored):
    fake.gpu_box(cuda="12.6").env.pop("CUDA_HOME")
    fake.dist("deepspeed", "0.19.0", package="deepspeed")
    (fake.site / "deepspeed/ops/op_builder").mkdir(parents=True)
    (fake.site / "deepspeed/ops/op_builder/ragged_utils.py").write_text(source)
    fake.env["DS_IGNORE_CUDA_DETECTION"] = value
    f = fake.run("deepspeed.import_probe").find("deepspeed.import_probe")
    assert (f["status"] == "pass") == ignored, f


def test_deepspeeds_minor_table_is_read_from_its_builder(fake):
    """A DeepSpeed whose builder.py lists 12.8 accepts nvcc 12.8 beside torch 12.1, whatever
    its version number says."""
    fake.gpu_box(cuda="12.1")
    fake.env["CUDA_HOME"] = str(fake.toolkit("12.8", fake.tmp / "cuda-12.8"))
    fake.dist("deepspeed", "0.16.2", package="deepspeed")
    builder = fake.site / "deepspeed/ops/op_builder/builder.py"
    builder.parent.mkdir(parents=True)
    builder.write_text('cuda_minor_mismatch_ok = {\n    10: ["10.0", "10.1", "10.2"],\n'
                       '    12: ["12.0", "12.1", "12.2", "12.3", "12.4", "12.5", "12.6", "12.8"],'
                       '\n}\n')
    assert fake.run("cuda.nvcc").status("cuda.nvcc") == "warn"  # 0.16.2's own table: fail


# -- nothing installed twice, beyond the toolkit -------------------------------------------------
def test_gcc_that_nvcc_accepts_already_installed_is_used_not_installed(fake):
    fake.gpu_box()
    fake.env["CUDA_HOME"] = str(fake.toolkit("12.1", fake.tmp / "cuda-gcc10", gcc_max=10))
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    fake.gcc("14.2.0")
    fake.printing("gcc-10", "10.5.0\n")
    fake.printing("g++-10", "10.5.0\n")
    f = fake.run("cuda.gcc").find("cuda.gcc")
    assert f["status"] == "warn"
    assert f["fix"]["commands"] == ["export CC=gcc-10 CXX=g++-10"]


def test_pinned_bitsandbytes_is_not_reinstalled_for_a_missing_library(fake):
    """bitsandbytes 0.50.2 is the pin already: reinstalling it adds no library; the route is
    torch's build of a CUDA it has."""
    fake.gpu_box(cuda="12.8")
    stack = fake.tmp / "box-stack.txt"
    stack.write_text("torch==2.13.0\nbitsandbytes==0.50.2\n")
    fake.bnb("0.50.2", ["cuda126", "cuda130", "cpu"])
    f = fake.run("bnb.cuda_lib").find("bnb.cuda_lib")
    assert f["status"] == "warn"
    assert f["fix"]["commands"] == [f"{fake.python} -m pip uninstall -y torch",
                                    "make env TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130"]
    assert not any("bitsandbytes==" in c for c in f["fix"]["commands"])


DPKG = ("Package: libc6\nStatus: install ok installed\nVersion: 2.35-0ubuntu3.8\n\n"
        "Package: {}\nStatus: install ok installed\nVersion: 550.120-0ubuntu0.22.04.1\n")


@pytest.mark.parametrize("package, commands", [
    ("nvidia-driver-550", ['sudo apt-get install --reinstall dkms linux-headers-"$(uname -r)"',
                           "sudo dkms autoinstall", "sudo reboot"]),
    ("htop", ["sudo ubuntu-drivers install", "sudo reboot"]),
])
def test_driver_not_loaded_rebuilds_what_is_installed_or_installs_what_is_not(fake, package,
                                                                            commands):
    fake.distro("ubuntu-22.04").pci_gpu().torch()
    fake.file("/var/lib/dpkg/status", DPKG.format(package))
    fake.smi_failing("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                     "driver.")
    assert fake.run("gpu.driver").commands("gpu.driver") == commands
