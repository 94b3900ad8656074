"""Start-up patches of the run time that act before their module loads: the allocator setting
(patches/cuda_alloc_conf.py) and bitsandbytes' kernels-community warning (patches/bnb_quiet.py).
Each runs a fresh interpreter of this environment, where the .pth registers the patches."""

from __future__ import annotations

import pytest

from tests.helpers import python

SHOW = ("import os\nbefore = os.environ.get('PYTORCH_CUDA_ALLOC_CONF')\nimport torch\n"
        "print(before, '|', os.environ.get('PYTORCH_CUDA_ALLOC_CONF'), '|', "
        "os.environ.get('PYTORCH_ALLOC_CONF'))")


@pytest.fixture(autouse=True)
def _unset(monkeypatch):
    for var in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF"):
        monkeypatch.delenv(var, raising=False)


def test_expandable_segments_are_set_before_torch_loads():
    out = python(SHOW)
    assert out.stdout.split("\n")[0].strip() == "None | expandable_segments:True | None"


@pytest.mark.parametrize("var", ["PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF"])
def test_the_user_s_setting_wins(var):
    out = python(SHOW, **{var: "max_split_size_mb:128"})
    first = out.stdout.split("\n")[0]
    assert "expandable_segments" not in first
    assert "max_split_size_mb:128" in first


def test_without_the_patch_nothing_is_set():
    out = python(SHOW, XTUNER_PACK_PATCHES="-cuda_alloc_conf")
    assert out.stdout.split("\n")[0].strip() == "None | None | None"


# What a CPU with AVX512-BF16 (the branch bitsandbytes takes there) and no `kernels` package
# logs while bitsandbytes is imported; this machine's CPU may lack the flag, so the flag is
# reported as set, as the native library reports it there.
IMPORT_BNB = """
from patches._hooks import after_import
after_import("bitsandbytes.functional", lambda m: setattr(m, "has_avx512bf16", lambda: True))
import logging
logging.basicConfig()
import bitsandbytes
logging.getLogger("bitsandbytes.backends.cpu.ops").warning("another bitsandbytes warning")
"""


def test_bitsandbytes_kernels_community_warning_is_dropped():
    noisy = python(IMPORT_BNB, XTUNER_PACK_PATCHES="-bnb_quiet")
    assert "Failed to load CPU gemm_4bit_forward from kernels-community" in noisy.stdout
    quiet = python(IMPORT_BNB)
    assert quiet.returncode == 0, quiet.stdout
    assert "kernels-community" not in quiet.stdout
    assert "another bitsandbytes warning" in quiet.stdout  # only that record is dropped


FILE_CLIENT = """
from mmengine.fileio import FileClient
from mmengine.logging import print_log
FileClient.infer_client(None, "/tmp")
print_log("another mmengine warning", logger="current", level=30)
"""


def test_mmengine_s_own_deprecation_notices_are_dropped():
    noisy = python(FILE_CLIENT, XTUNER_PACK_PATCHES="-mmengine_quiet")
    assert '"FileClient" will be deprecated in future' in noisy.stdout
    assert '"HardDiskBackend" is the alias of "LocalBackend"' in noisy.stdout
    quiet = python(FILE_CLIENT)
    assert quiet.returncode == 0, quiet.stdout
    assert "deprecated" not in quiet.stdout and "alias" not in quiet.stdout
    assert "another mmengine warning" in quiet.stdout


SKLEARN = """
import sys
from transformers.generation import candidate_generator as cg
from transformers.utils import is_sklearn_available
loaded = 'sklearn' in sys.modules
fpr, tpr, thresholds = cg.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
print(loaded, is_sklearn_available(), [round(float(x), 2) for x in tpr], 'sklearn' in sys.modules)
"""


def test_scikit_learn_is_imported_when_transformers_uses_it_not_when_it_loads():
    eager, lazy = python(SKLEARN, XTUNER_PACK_PATCHES="-sklearn_lazy"), python(SKLEARN)
    assert eager.returncode == 0 and lazy.returncode == 0, eager.stdout + lazy.stdout
    # transformers as shipped loads it at import; patched, on the first call, with the same
    # availability flag and scikit-learn's own roc_curve answering the same
    assert eager.stdout.strip().splitlines()[-1] == "True True [0.0, 0.5, 0.5, 1.0, 1.0] True"
    assert lazy.stdout.strip().splitlines()[-1] == "False True [0.0, 0.5, 0.5, 1.0, 1.0] True"


BNB_COMPILE = """
import sys, torch
import bitsandbytes.functional as F
set_up = 'torch._inductor.compile_fx' in sys.modules
torch.manual_seed(0)
w = torch.randn(64, 64)
q, state = F.quantize_4bit(w, quant_type='nf4')
back = F.dequantize_4bit(q, state)
print(set_up, torch.compile.__module__, round(float((back - w).abs().mean()), 6))
"""


def test_bitsandbytes_sets_up_torch_compile_when_a_kernel_needs_it_not_at_import():
    eager = python(BNB_COMPILE, XTUNER_PACK_PATCHES="-bnb_lazy_compile")
    lazy = python(BNB_COMPILE)
    assert eager.returncode == 0 and lazy.returncode == 0, eager.stdout + lazy.stdout
    e, z = (out.stdout.strip().splitlines()[-1].split() for out in (eager, lazy))
    assert e[:2] == ["True", "torch"]  # as shipped: Inductor loaded by `import bitsandbytes`
    assert z[:2] == ["False", "torch"]  # patched: not yet, and torch.compile is torch's again
    assert z[2] == e[2]  # the same nf4 round trip
