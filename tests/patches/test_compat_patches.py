"""Each startup patch: the failure it fixes, reproduced without it, gone with it.

These run in subprocesses because the patches take effect at interpreter start-up; the
environment variable XTUNER_PACK_PATCHES turns one off (see patches/__init__.py).
"""

import sys

import pytest

from tests.helpers import python, xtuner

BUILD_MODEL = """
from mmengine.config import ConfigDict
from transformers import AutoModelForCausalLM
from xtuner.model import SupervisedFinetune
m = SupervisedFinetune(llm=ConfigDict(type=AutoModelForCausalLM.from_pretrained,
                                      pretrained_model_name_or_path={path!r}))
print("built", type(m.llm).__name__)
"""


def test_cpu_bf16_without_the_patch_xtuner_cannot_build_a_model_on_cpu(tiny_model):
    code = BUILD_MODEL.format(path=str(tiny_model))
    broken = python(code, XTUNER_PACK_PATCHES="-cpu_bf16")
    assert broken.returncode != 0
    assert "module 'torch.cpu' has no attribute 'is_bf16_supported'" in broken.stdout
    fixed = python(code)
    assert fixed.returncode == 0, fixed.stdout
    assert "built LlamaForCausalLM" in fixed.stdout


def test_cpu_bf16_answers_false_so_xtuner_never_picks_bf16_on_cpu():
    out = python("import xtuner.utils.device as d; print(d.get_torch_device().is_bf16_supported())")
    assert out.stdout.strip().endswith("False")


def test_torchvision_optional_without_the_patch_xtuner_dataset_does_not_import():
    code = "import xtuner.dataset; print('imported')"
    if python("import torchvision").returncode == 0:
        pytest.skip("torchvision is installed here: the patch stands aside, nothing to reproduce")
    broken = python(code, XTUNER_PACK_PATCHES="-torchvision_optional")
    assert broken.returncode != 0 and "No module named 'torchvision'" in broken.stdout
    fixed = python(code)
    assert fixed.returncode == 0 and "imported" in fixed.stdout


def test_torchvision_optional_stand_in_says_why_internvl_is_unavailable():
    if python("import torchvision").returncode == 0:
        pytest.skip("torchvision is installed here: the real InternVL dataset is used")
    out = python("from xtuner.dataset import InternVL_V1_5_Dataset as D\n"
                 "try:\n D()\nexcept ImportError as e:\n print('ImportError:', e)")
    assert "ImportError: InternVL_V1_5_Dataset needs torchvision" in out.stdout


def test_cli_exit_status_reaches_the_shell():
    broken = xtuner("train", "/nonexistent/config.py", XTUNER_PACK_PATCHES="-xtuner_cli_exit")
    assert broken.returncode == 0  # xtuner 0.2.0 as released: the failure is lost
    assert "Cannot find /nonexistent/config.py" in broken.stdout
    fixed = xtuner("train", "/nonexistent/config.py")
    assert fixed.returncode == 1
    assert "Cannot find /nonexistent/config.py" in fixed.stdout


def test_cli_runs_the_tool_with_its_own_interpreter_not_python_on_path(tmp_path):
    # A `python` first on PATH that is not this environment's must not be used.
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho WRONG-PYTHON; exit 3\n")
    fake.chmod(0o755)
    path = f"{tmp_path}:{sys.prefix}/bin:/usr/bin:/bin"
    out = xtuner("list-cfg", "-p", "internlm_7b_qlora_oasst1_e3", PATH=path)
    assert "WRONG-PYTHON" not in out.stdout and out.returncode == 0
    assert "internlm_7b_qlora_oasst1_e3" in out.stdout


TOOL_FILES = """
import sys
from xtuner import entry_point as e
files = [e.modes["train"](), e.modes["convert"]["pth_to_hf"](), e.modes["convert"]["merge"]()]
print([f.split("site-packages/")[-1] for f in files])
print("torch" in sys.modules, any(m.startswith("xtuner.tools") for m in sys.modules))
"""


def test_cli_finds_its_tool_without_importing_it():
    broken = python(TOOL_FILES, XTUNER_PACK_PATCHES="-xtuner_cli_tool_path")
    fixed = python(TOOL_FILES)
    assert broken.returncode == 0 and fixed.returncode == 0, broken.stdout + fixed.stdout
    files = ("['xtuner/tools/train.py', 'xtuner/tools/model_converters/pth_to_hf.py', "
             "'xtuner/tools/model_converters/merge.py']")
    # as released: the CLI process imports torch and every tool only to name its file
    assert broken.stdout.strip().splitlines()[-2:] == [files, "True True"]
    assert fixed.stdout.strip().splitlines()[-2:] == [files, "False False"]
    # and the child still runs the real tool
    out = xtuner("convert", "merge", "--help")
    assert out.returncode == 0 and "--max-shard-size" in out.stdout
