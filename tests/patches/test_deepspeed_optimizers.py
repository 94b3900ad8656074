"""patches/deepspeed_optimizers.py: mmengine's DeepSpeed strategy against DeepSpeed 0.19."""

import importlib.util

import pytest

from tests.helpers import python

pytestmark = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                                reason="DeepSpeed is not installed (make env DEEPSPEED=1)")

REGISTER = """
from mmengine._strategy.deepspeed import register_deepspeed_optimizers
from mmengine.registry import OPTIMIZERS
names = register_deepspeed_optimizers()
register_deepspeed_optimizers()  # a second strategy in the same process
print("registered", sorted(names), OPTIMIZERS.get("DeepSpeedCPUAdam").__name__)
"""


def test_without_the_patch_every_deepspeed_run_fails_at_the_strategy():
    onebit = python("import deepspeed.runtime.fp16.onebit")
    if onebit.returncode == 0:
        pytest.skip("this DeepSpeed still has the 1-bit optimizers: nothing to reproduce")
    broken = python(REGISTER, XTUNER_PACK_PATCHES="-deepspeed_optimizers")
    assert broken.returncode != 0
    assert "No module named 'deepspeed.runtime.fp16.onebit'" in broken.stdout
    fixed = python(REGISTER)
    assert fixed.returncode == 0, fixed.stdout
    assert "registered ['DeepSpeedCPUAdam', 'FusedAdam', 'FusedLamb'] DeepSpeedCPUAdam" in (
        fixed.stdout)
