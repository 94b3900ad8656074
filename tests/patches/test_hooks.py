"""The post-import hook mechanism every patch relies on."""

import sys

from patches import _hooks


def _write_module(tmp_path, name, body):
    (tmp_path / f"{name}.py").write_text(body)
    sys.path.insert(0, str(tmp_path))


def test_after_import_runs_once_after_the_module_body(tmp_path):
    _write_module(tmp_path, "pk_target_a", "VALUE = 1\n")
    seen = []
    _hooks.after_import("pk_target_a", lambda m: seen.append(m.VALUE))
    assert seen == []  # nothing imported yet
    import pk_target_a  # noqa: F401

    assert seen == [1]
    del sys.modules["pk_target_a"]
    import pk_target_a  # noqa: F401,F811  (a re-import does not run it twice)

    assert seen == [1]


def test_after_import_of_an_imported_module_runs_now(tmp_path):
    _write_module(tmp_path, "pk_target_b", "VALUE = 2\n")
    import pk_target_b  # noqa: F401

    seen = []
    _hooks.after_import("pk_target_b", lambda m: seen.append(m.VALUE))
    assert seen == [2]


def test_instead_of_import_uses_the_factory_module_or_falls_back(tmp_path):
    import types

    _write_module(tmp_path, "pk_target_c", "REAL = True\n")
    _write_module(tmp_path, "pk_target_d", "REAL = True\n")
    stand_in = types.ModuleType("pk_target_c")
    stand_in.REAL = False
    _hooks.instead_of_import("pk_target_c", lambda: stand_in)
    _hooks.instead_of_import("pk_target_d", lambda: None)
    import pk_target_c
    import pk_target_d

    assert pk_target_c.REAL is False
    assert pk_target_d.REAL is True
