"""Variables that steer builds, read as their readers read them: TORCH_CUDA_ARCH_LIST (torch's
extension builder, with the named architectures and accepted arches of the installed torch's
cpp_extension.py; DeepSpeed's builds at install time, and its JIT builds unless its builder.py
sets the list aside), FLASH_ATTN_CUDA_ARCHS (flash-attn's setup.py tokens), CUDAARCHS (CMake).
A list that leaves out the visible GPU's architecture makes kernels that cannot run on it
("no kernel image is available for execution on the device"); machine code of an older minor of
the same major and PTX of an older architecture do run, and are not reported."""

import pytest

RTX_3060 = ("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6")
RTX_4090 = ("NVIDIA GeForce RTX 4090", 24564, 24000, "8.9")
RTX_2070 = ("NVIDIA GeForce RTX 2070", 8192, 7900, "7.5")
# DeepSpeed's op_builder/builder.py jit_load as 0.19.8 has it (the list set aside for JIT), and
# one without that (an older or patched DeepSpeed whose JIT builds honour the list)
DS_JIT_STASH = ('        if "TORCH_CUDA_ARCH_LIST" in os.environ:\n'
                '            torch_arch_list = os.environ.get("TORCH_CUDA_ARCH_LIST")\n'
                '            os.environ["TORCH_CUDA_ARCH_LIST"] = ""\n')


def arch(fake, **env):
    fake.env.update(env)
    r = fake.run("cuda.arch_list")
    assert "Traceback" not in r.stderr, r.stderr
    return r.find("cuda.arch_list")


@pytest.mark.parametrize("value, covered", [
    ("7.0;7.5", False),       # Volta and Turing machine code: not Ampere
    ("9.0", False),           # Hopper code does not run on an older GPU
    ("Hopper", False),        # 9.0+PTX: PTX runs on newer GPUs only
    ("8.0", True),            # sm_80 machine code runs on sm_86
    ("Turing", True),         # 7.5+PTX: the driver JIT-compiles the PTX for sm_86
    ("6.1 7.5+PTX", True),    # spaces separate too
    ("8.6", True),
    ("", True),               # empty or native: the GPUs torch sees
    ("native", True),
])
def test_torch_cuda_arch_list_against_an_rtx_3060(fake, value, covered):
    f = arch(fake.gpu_box(), TORCH_CUDA_ARCH_LIST=value)
    assert f["status"] == ("pass" if covered else "warn"), f
    if not covered:
        assert "leaves out sm_86" in f["summary"] and "no kernel image" in f["summary"]
        assert len(f["fix"]["local"]) == 1
        name, _, new = f["fix"]["local"][0].removeprefix("export ").partition("=")
        assert arch(fake, **{name: new.strip('"')})["status"] == "pass"  # the fix works here


def test_an_entry_torch_does_not_know(fake):
    f = arch(fake.gpu_box(), TORCH_CUDA_ARCH_LIST="8.6;sm_86")
    assert f["status"] == "warn" and "sm_86 is no architecture" in f["summary"]
    assert "Unknown CUDA arch" in f["summary"]
    assert f["fix"]["local"] == ['export TORCH_CUDA_ARCH_LIST="8.6"']


def test_every_visible_gpu_counts_and_only_those(fake):
    fake.gpu_box(gpus=(RTX_3060, RTX_2070))
    f = arch(fake, TORCH_CUDA_ARCH_LIST="8.6")
    assert f["status"] == "warn" and "leaves out sm_75" in f["summary"]
    assert f["fix"]["local"] == ['export TORCH_CUDA_ARCH_LIST="8.6;7.5"']
    f = arch(fake, CUDA_VISIBLE_DEVICES="0", CUDA_DEVICE_ORDER="PCI_BUS_ID")
    assert f["status"] == "pass"  # the Turing card is hidden from the run


@pytest.mark.parametrize("stash, status", [(True, "warn"), (False, "fail")])
def test_deepspeed_jit_honours_the_list_or_sets_it_aside(fake, stash, status):
    fake.gpu_box()
    fake.dist("deepspeed", "0.19.8", package="deepspeed")
    builder = fake.site / "deepspeed" / "ops" / "op_builder" / "builder.py"
    builder.parent.mkdir(parents=True)
    builder.write_text("import os\n\n\ndef jit_load(self):\n"
                       + (DS_JIT_STASH if stash else "") + "        return None\n")
    f = arch(fake, TORCH_CUDA_ARCH_LIST="7.5")
    assert f["status"] == status, f
    assert ("its JIT builds" in f["summary"]) is (not stash)


@pytest.mark.parametrize("value, covered", [("90", False), ("80", True), ("80;90", True),
                                            ("86", False)])
def test_flash_attn_archs_are_its_own_tokens(fake, value, covered):
    """flash-attn builds a family only for its exact token: 86 is ignored (it builds nothing
    for it), 80 is machine code that runs on sm_86 and sm_89."""
    f = arch(fake.gpu_box(gpus=(RTX_4090,)), FLASH_ATTN_CUDA_ARCHS=value)
    assert f["status"] == ("pass" if covered else "info"), f
    if not covered:
        assert f["fix"]["local"] == [
            f'export FLASH_ATTN_CUDA_ARCHS="{"90;" if value == "90" else ""}80"']


def test_cmake_archs(fake):
    fake.gpu_box()
    assert arch(fake, CUDAARCHS="75-real;90")["status"] == "info"
    assert arch(fake, CUDAARCHS="80-real")["status"] == "pass"
    assert arch(fake, CUDAARCHS="native")["status"] == "pass"


def test_nothing_set(fake):
    assert arch(fake.gpu_box())["status"] == "pass"


def test_no_gpu_to_judge_against(fake):
    fake.distro("debian-12").torch("2.13.0+cpu", None)
    assert arch(fake, TORCH_CUDA_ARCH_LIST="8.6")["status"] == "info"
