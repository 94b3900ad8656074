"""The library search order against the wheels' own CUDA libraries. torch's CUDA wheels bring
cuBLAS, cuDNN, nvJitLink... as nvidia-* wheels (site-packages/nvidia/<lib>/lib); the dynamic
loader searches LD_LIBRARY_PATH before them, so an older CUDA 12 install there shadows them
(undefined symbols, version errors at `import torch`). Each machine: torch cu124 with its
nvidia-* wheels (METADATA, RECORD, the .so files), and a toolkit or conda lib directory laid
out as NVIDIA ships it (libcublas.so.12 -> libcublas.so.12.1.3.1)."""

import json

WHEELS = {  # dist, version, files (as torch 2.x cu124's pins)
    "nvidia-cublas-cu12": ("12.4.5.8", ["nvidia/cublas/lib/libcublas.so.12",
                                        "nvidia/cublas/lib/libcublasLt.so.12"]),
    "nvidia-cudnn-cu12": ("9.1.0.70", ["nvidia/cudnn/lib/libcudnn.so.9"]),
    "nvidia-nvjitlink-cu12": ("12.4.127", ["nvidia/nvjitlink/lib/libnvJitLink.so.12"]),
    "nvidia-cusparse-cu12": ("12.3.1.170", ["nvidia/cusparse/lib/libcusparse.so.12"]),
}


def box(fake):
    fake.gpu_box(cuda="12.4")
    for name, (version, files) in WHEELS.items():
        fake.dist(name, version, files)
    return fake


def libdir(fake, where: str, libs: dict[str, str | None], cuda: str | None = None):
    """A lib directory: soname -> the versioned file it links to (None: a plain file)."""
    d = fake.tmp / where
    d.mkdir(parents=True)
    for soname, real in libs.items():
        if real:
            (d / real).write_text("")
            (d / soname).symlink_to(real)
        else:
            (d / soname).write_text("")
    if cuda:
        (d.parent / "version.json").write_text(json.dumps({"cuda": {"version": cuda}}))
    return d


def runtimes(fake, **env):
    fake.env.update(env)
    return fake.run("cuda.runtimes").find("cuda.runtimes")


def test_an_older_toolkit_on_ld_library_path_shadows_cublas(fake):
    d = libdir(box(fake), "cuda-12.1/lib64", {"libcublas.so.12": "libcublas.so.12.1.3.1",
                                              "libcudart.so.12": "libcudart.so.12.1.105"})
    f = runtimes(fake, LD_LIBRARY_PATH=f"{d}:/opt/other/lib")
    assert f["status"] == "fail", f
    assert f"{d}/libcublas.so.12 (12.1.3.1) is loaded before torch's own libcublas.so.12 " \
           "(nvidia-cublas-cu12 12.4.5.8)" in f["summary"]
    assert f["fix"]["local"] == ["export LD_LIBRARY_PATH=/opt/other/lib"]
    assert runtimes(fake, LD_LIBRARY_PATH="/opt/other/lib")["status"] == "pass"


def test_the_nvjitlink_of_an_older_cuda(fake):
    """The classic: cusparse from the wheel needs nvJitLink 12.4's symbols; CUDA 12.1's
    libnvJitLink.so.12 found first (here a plain file, its version from the toolkit's
    version.json)."""
    d = libdir(box(fake), "cuda-12.1/lib64", {"libnvJitLink.so.12": None}, cuda="12.1.1")
    f = runtimes(fake, LD_LIBRARY_PATH=str(d))
    assert f["status"] == "fail" and "libnvJitLink.so.12" in f["summary"]
    assert f["fix"]["local"] == ["unset LD_LIBRARY_PATH"]


def test_another_soname_is_no_shadow(fake):
    """cuDNN 8 on LD_LIBRARY_PATH (libcudnn.so.8) beside the wheel's cuDNN 9: torch asks for
    libcudnn.so.9, so they do not meet."""
    d = libdir(box(fake), "cudnn8/lib", {"libcudnn.so.8": "libcudnn.so.8.9.7"})
    assert runtimes(fake, LD_LIBRARY_PATH=str(d))["status"] == "pass"


def test_a_newer_library_of_the_same_major_is_information(fake):
    d = libdir(box(fake), "cuda-12.8/lib64", {"libcublas.so.12": "libcublas.so.12.8.4.1"})
    f = runtimes(fake, LD_LIBRARY_PATH=str(d))
    assert f["status"] == "info" and not f["fix"]["local"]


def test_a_library_of_unknown_version_warns(fake):
    d = libdir(box(fake), "vendor/lib", {"libcudnn.so.9": None})
    f = runtimes(fake, LD_LIBRARY_PATH=str(d))
    assert f["status"] == "warn" and "its version is unknown" in f["summary"]


def test_the_wheels_own_directory_is_no_shadow(fake):
    box(fake)
    own = fake.site / "nvidia" / "cublas" / "lib"
    assert runtimes(fake, LD_LIBRARY_PATH=str(own))["status"] == "pass"


def test_a_cpu_torch_has_nothing_to_shadow(fake):
    box(fake).torch("2.13.0+cpu", None)
    d = libdir(fake, "cuda-12.1/lib64", {"libcublas.so.12": "libcublas.so.12.1.3.1"})
    assert runtimes(fake, LD_LIBRARY_PATH=str(d))["status"] == "pass"
