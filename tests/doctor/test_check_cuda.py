"""CUDA toolkit checks: fake nvcc executables printing the real `nvcc -V` of several releases,
one that hangs and one that prints garbage; CUDA_HOME with `:`; a runtime-only CUDA tree; the
per-distro fix commands."""

import pytest

from doctor.facts import Platform
from doctor.routes import cuda_toolkit

KEYRING = "https://developer.download.nvidia.com/compute/cuda/repos/{}/x86_64/cuda-keyring_1.1-1_all.deb"


def test_matching_toolkit_passes(fake):
    r = fake.gpu_box(cuda="12.1").run("cuda")
    assert r.status("cuda.home") == "pass"
    assert r.status("cuda.nvcc") == "pass"
    assert r.find("cuda.nvcc")["summary"] == "nvcc 12.1 matches torch's CUDA 12.1"
    assert r.status("cuda.gcc") == "pass"


@pytest.mark.parametrize("nvcc, deepspeed, status", [
    ("12.1", None, "pass"),
    ("12.6", None, "warn"),       # torch warns about a minor mismatch
    ("12.6", "0.16.2", "warn"),   # both in DeepSpeed's minor-mismatch list
    ("12.8", "0.16.2", "fail"),   # 12.8 joined that list in 0.17
    ("12.8", "0.17.0", "warn"),
    ("11.8", None, "warn"),       # major mismatch, but nothing compiles without DeepSpeed
    ("11.5", "0.19.8", "fail"),   # major mismatch with DeepSpeed installed
    ("13.0", "0.19.8", "fail"),
])
def test_nvcc_release_against_torch_cuda(fake, nvcc, deepspeed, status):
    fake.gpu_box(cuda="12.1")
    home = fake.toolkit(nvcc, fake.tmp / f"cuda-{nvcc}")
    fake.env["CUDA_HOME"] = str(home)
    if deepspeed:
        fake.dist("deepspeed", deepspeed, package="deepspeed")
    r = fake.run("cuda.nvcc")
    f = r.find("cuda.nvcc")
    assert f["status"] == status, f
    if status != "pass":
        assert "sudo apt-get -y install cuda-toolkit-12-1" in f["fix"]["commands"]
        assert "export CUDA_HOME=/usr/local/cuda-12.1" in f["fix"]["commands"]
        assert not any(c.endswith("install cuda-toolkit") for c in f["fix"]["commands"])
        assert "Ubuntu 22.04's own package is CUDA 11.5" in f["fix"]["text"]
    if nvcc == "12.8" and status == "fail":
        assert "CUDAMismatchException" in f["summary"]


def test_nvcc_that_hangs_is_killed(fake):
    fake.gpu_box()
    home = fake.tmp / "cuda-hang"
    fake.toolkit("12.1", home)
    fake.exe("nvcc", "sleep 600\n", where=home / "bin")
    fake.env["CUDA_HOME"] = str(home)
    r = fake.run("cuda.nvcc", "--timeout", "1", timeout=30)
    f = r.find("cuda.nvcc")
    assert f["status"] == "warn" and "no answer in 1 s (killed)" in f["summary"]
    assert "sudo apt-get -y install cuda-toolkit-12-1" in f["fix"]["commands"]
    assert r.data["seconds"] < 10


def test_nvcc_that_prints_garbage(fake):
    fake.gpu_box()
    home = fake.tmp / "cuda-garbage"
    fake.toolkit("12.1", home)
    garbage = fake.tmp / "garbage.bin"
    garbage.write_bytes(b"\x7fELF\xff\xfe segmentation \x00 fault\n")
    fake.exe("nvcc", f"cat '{garbage}'\n", where=home / "bin")
    fake.env["CUDA_HOME"] = str(home)
    r = fake.run("cuda.nvcc")
    f = r.find("cuda.nvcc")
    assert f["status"] == "warn" and "printed no `release X.Y`" in f["summary"]
    assert f["fix"]["commands"]


def test_cuda_home_with_colon(fake):
    fake.gpu_box()
    home = fake.env["CUDA_HOME"]
    fake.env["CUDA_HOME"] = f"{home}:/usr/local/cuda"
    r = fake.run("cuda.home")
    f = r.find("cuda.home")
    assert f["status"] == "fail" and "contains ':'" in f["summary"]
    assert f["fix"]["commands"] == [f"export CUDA_HOME={home}",
                                    'export PATH="$CUDA_HOME/bin:$PATH"']


def test_cuda_home_pointing_at_bin(fake):
    fake.gpu_box()
    home = fake.env["CUDA_HOME"]
    fake.env["CUDA_HOME"] = f"{home}/bin"
    f = fake.run("cuda.home").find("cuda.home")
    assert f["status"] == "fail" and "ends in /bin" in f["summary"]
    assert f["fix"]["commands"][0] == f"export CUDA_HOME={home}"


def test_runtime_only_cuda_tree(fake):
    fake.gpu_box()
    runtime = fake.toolkit("12.1", fake.tmp / "cuda-runtime", nvcc=False, headers=False)
    fake.env["CUDA_HOME"] = str(runtime)
    r = fake.run("cuda.home", "cuda.nvcc")
    f = r.find("cuda.home")
    assert f["status"] == "fail" and "has no bin/nvcc" in f["summary"]
    assert "sudo apt-get -y install cuda-toolkit-12-1" in f["fix"]["commands"]
    assert r.status("cuda.nvcc") == "skip"


def test_cuda_home_that_does_not_exist(fake):
    fake.gpu_box().env["CUDA_HOME"] = str(fake.tmp / "nowhere")
    r = fake.run("cuda.home")
    assert r.status("cuda.home") == "fail"
    assert "does not exist" in r.find("cuda.home")["summary"]


def test_cuda_home_found_from_nvcc_on_path_like_torch(fake):
    fake.gpu_box()
    home = fake.env.pop("CUDA_HOME")
    fake.env["PATH"] = f"{home}/bin:" + fake.env["PATH"]
    r = fake.run("cuda.home")
    assert r.status("cuda.home") == "pass"
    assert r.data["facts"]["cuda_home"]["source"] == f"nvcc on PATH ({home}/bin/nvcc)"


def test_nvcc_wrapper_outside_its_toolkit(fake):
    """/usr/local/bin/nvcc = `exec /usr/local/cuda-X/bin/nvcc`: torch takes CUDA_HOME=/usr/local,
    which has no CUDA headers."""
    fake.gpu_box()
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    real = fake.env.pop("CUDA_HOME")
    wrapper_dir = fake.tmp / "usr-local"
    fake.exe("nvcc", f'exec {real}/bin/nvcc "$@"\n', where=wrapper_dir / "bin")
    fake.env["PATH"] = f"{wrapper_dir}/bin:" + fake.env["PATH"]
    r = fake.run("cuda.home")
    f = r.find("cuda.home")
    assert f["status"] == "warn" and "no include/cuda_runtime.h" in f["summary"]
    assert f["fix"]["commands"][0] == f"export CUDA_HOME={real}"


def test_no_toolkit_is_information_without_deepspeed(fake):
    fake.gpu_box().env.pop("CUDA_HOME")
    r = fake.run("cuda.home")
    f = r.find("cuda.home")
    assert f["status"] == "info"
    assert "sudo apt-get -y install cuda-toolkit-12-1" in f["fix"]["commands"]


def test_gcc_newer_than_nvcc_accepts(fake):
    """(A host_config.h limit of 9: no gcc-9 on the machines that run these tests, so the fix
    installs it; a gcc nvcc accepts that is installed is used instead, see test_check_routes.)"""
    fake.gpu_box()
    fake.env["CUDA_HOME"] = str(fake.toolkit("12.1", fake.tmp / "cuda-gcc9", gcc_max=9))
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    fake.gcc("14.2.0")
    r = fake.run("cuda.gcc")
    f = r.find("cuda.gcc")
    assert f["status"] == "warn" and "newer than nvcc 12.1 accepts (<= 9)" in f["summary"]
    assert f["fix"]["commands"] == ["sudo apt-get -y install gcc-9 g++-9",
                                    "export CC=gcc-9 CXX=g++-9"]


def test_pip_nvcc_wheel_is_not_a_toolkit(fake):
    fake.gpu_box().env.pop("CUDA_HOME")
    fake.dist("nvidia-cuda-nvcc-cu12", "12.6.85", files=[
        "nvidia/cuda_nvcc/bin/ptxas", "nvidia/cuda_nvcc/nvvm/lib64/libnvvm.so"])
    r = fake.run("cuda.pip_nvcc")
    f = r.find("cuda.pip_nvcc")
    assert f["status"] == "warn" and "has no nvcc binary" in f["summary"]
    assert "sudo apt-get -y install cuda-toolkit-12-1" in f["fix"]["commands"]


def test_foreign_cuda_runtime_on_ld_library_path(fake):
    fake.gpu_box(cuda="12.1")
    old = fake.toolkit("11.8", fake.tmp / "cuda-11.8")
    fake.env["LD_LIBRARY_PATH"] = f"{old}/lib64:/opt/other"
    r = fake.run("cuda.runtimes")
    f = r.find("cuda.runtimes")
    assert f["status"] == "warn"
    assert f["fix"]["commands"] == ["export LD_LIBRARY_PATH=/opt/other"]


@pytest.mark.parametrize("distro, wsl, repo", [
    ("ubuntu-20.04", False, "ubuntu2004"), ("ubuntu-22.04", False, "ubuntu2204"),
    ("ubuntu-24.04", False, "ubuntu2404"), ("debian-12", False, "debian12"),
    ("ubuntu-22.04", True, "wsl-ubuntu"),
])
def test_toolkit_fix_per_distro_from_os_release(fake, distro, wsl, repo):
    fake.gpu_box(distro=distro, cuda="12.6")
    if wsl:
        fake.wsl()
    fake.env.pop("CUDA_HOME")
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    r = fake.run("cuda.home")
    cmds = r.commands("cuda.home")
    assert cmds[0] == "wget " + KEYRING.format(repo)
    assert cmds[1] == "sudo dpkg -i cuda-keyring_1.1-1_all.deb"
    assert not any("add-apt-repository" in c for c in cmds)  # a no-op on deb822 sources
    assert cmds[-3:] == ["sudo apt-get -y install cuda-toolkit-12-6",
                         "export CUDA_HOME=/usr/local/cuda-12.6",
                         'export PATH="$CUDA_HOME/bin:$PATH"']
    text = r.find("cuda.home")["fix"]["text"]
    if wsl:
        assert "never `cuda` or `cuda-drivers`" in text
    own = {"ubuntu2004": "10.1", "ubuntu2204": "11.5", "ubuntu2404": "12.0", "debian12": "11.8"}
    if repo in own:
        assert f"own package is CUDA {own[repo]}, and torch was built with CUDA 12.6" in text


def test_conda_route_when_conda_prefix_is_set(fake):
    fake.gpu_box(cuda="12.6").env.pop("CUDA_HOME")
    fake.env["CONDA_PREFIX"] = str(fake.tmp / "conda-env")
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    r = fake.run("cuda.home")
    assert r.commands("cuda.home") == ["conda install -y -c conda-forge cuda-toolkit=12.6",
                                       'export CUDA_HOME="$CONDA_PREFIX"']


def test_distro_toolkit_that_matches_is_the_route_where_nvidia_has_none():
    """NVIDIA's debian12 repository starts after 11.8; Debian's own package is 11.8."""
    fix = cuda_toolkit(Platform("debian", "12", python="python", apt_sources=()), "11.8")
    assert fix.commands == ["sudo apt-get update", "sudo apt-get -y install nvidia-cuda-toolkit",
                            "export CUDA_HOME=/usr"]
    assert "Debian GNU/Linux 12" not in fix.text and "debian 12's own" in fix.text


def test_ubuntu_2404_cuda_12_0_is_ubuntus_own_package():
    fix = cuda_toolkit(Platform("ubuntu", "24.04", python="python"), "12.0")
    assert fix.commands == ["sudo apt-get update", "sudo apt-get -y install nvidia-cuda-toolkit",
                            "export CUDA_HOME=/usr"]
    assert "NVIDIA's ubuntu2404 repository has no CUDA 12.0" in fix.text


@pytest.mark.parametrize("layout", ["develop", "egg"])
def test_an_egg_info_install_is_seen_with_its_version(fake, layout):
    """`pip install -e` with an old setuptools (or `setup.py develop`) leaves `name.egg-info`,
    whose version is only in PKG-INFO; an egg leaves it in the directory's name."""
    fake.gpu_box().env.pop("CUDA_HOME")
    name = "deepspeed.egg-info" if layout == "develop" else "deepspeed-0.14.0-py3.11.egg-info"
    (fake.site / name).mkdir()
    (fake.site / name / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: deepspeed\n"
                                               "Version: 0.14.0\n")
    r = fake.run("cuda.home")
    f = r.find("cuda.home")
    assert "deepspeed 0.14.0" in " ".join(f["details"]), f
