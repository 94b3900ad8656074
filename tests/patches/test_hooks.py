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


def test_before_import_runs_when_the_module_executes_not_when_it_is_found(tmp_path):
    import importlib.util

    _write_module(tmp_path, "pk_target_e", "import builtins\nSEEN_BEFORE = builtins._pk_seen[:]\n")
    import builtins

    builtins._pk_seen = []
    _hooks.before_import("pk_target_e", lambda: builtins._pk_seen.append("hook"))
    # the doctor locates packages with find_spec: that imports nothing, so it runs no hook
    assert importlib.util.find_spec("pk_target_e") is not None
    assert builtins._pk_seen == []
    import pk_target_e

    assert pk_target_e.SEEN_BEFORE == ["hook"] and builtins._pk_seen == ["hook"]
    del builtins._pk_seen
