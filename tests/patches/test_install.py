"""`python -m patches install` puts the startup hook in place, idempotently, and it takes effect."""

import sys

from patches.__main__ import PTH_LINE, pth_path
from tests.helpers import python, run


def test_install_is_idempotent_and_status_reports_it():
    first = run([sys.executable, "-m", "patches", "install"])
    second = run([sys.executable, "-m", "patches", "install"])
    assert first.returncode == second.returncode == 0
    assert "already installed" in second.stdout
    assert pth_path().read_text() == PTH_LINE
    assert run([sys.executable, "-m", "patches", "status"]).returncode == 0


def test_startup_registers_the_selected_patches_only():
    code = "import xtuner.entry_point, patches; print(sorted(patches.applied))"
    assert "'xtuner_cli_exit'" in python(code).stdout
    assert "[]" in python(code, XTUNER_PACK_PATCHES="none").stdout
    assert "'xtuner_cli_exit'" not in python(code, XTUNER_PACK_PATCHES="-xtuner_cli_exit").stdout


def test_a_misspelt_selection_is_reported_not_fatal():
    out = python("print('alive')", XTUNER_PACK_PATCHES="cpu_bf61")
    assert out.returncode == 0 and "alive" in out.stdout
    assert "unknown patches: ['cpu_bf61']" in out.stdout
