"""Each `xtuner <cmd>` spends 15 s (on 2 cores) importing its tool twice.

xtuner 0.2.0's `cli()` (xtuner/entry_point.py) finds the script of a command by importing it:
`from xtuner.tools.model_converters import pth_to_hf; return pth_to_hf.__file__`, which runs
the tool's imports (torch, transformers, peft, bitsandbytes, xtuner.model) in the CLI process,
only to hand the file name to `python FILE` in a child process that imports them all again.
The patch gives each of those functions (entry_point.MAP_FILE_FUNCS) the same file name, found
the way the import would find it, with the tool's package and module created but not run.
"""

from __future__ import annotations

import sys

TARGET = "xtuner.entry_point"
TOOLS = "xtuner.tools"


class _Inert:
    """Loader of a module that is located, given its __file__, and not executed."""

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        pass


class _Locate:
    """Meta path finder for xtuner.tools.*: the real spec's location, the inert loader."""

    def find_spec(self, name, path, target=None):
        if name != TOOLS and not name.startswith(TOOLS + "."):
            return None
        from importlib.machinery import PathFinder
        from importlib.util import spec_from_file_location

        real = PathFinder.find_spec(name, path)
        if real is None or not real.origin:
            return None
        return spec_from_file_location(name, real.origin, loader=_Inert(),
                                       submodule_search_locations=real.submodule_search_locations)


def tool_file(fn) -> str:
    """fn()'s file name, without running the tool module or its package."""
    finder, before = _Locate(), set(sys.modules)
    sys.meta_path.insert(0, finder)
    try:
        return fn()
    finally:
        sys.meta_path.remove(finder)
        for name in set(sys.modules) - before:  # the child imports them for real
            if name == TOOLS or name.startswith(TOOLS + "."):
                del sys.modules[name]
        import xtuner

        if getattr(xtuner, "tools", None) is not None and TOOLS not in sys.modules:
            del xtuner.tools


def apply(entry_point) -> None:
    targets = set(getattr(entry_point, "MAP_FILE_FUNCS", ()))

    def located(fn):
        def file_name():
            return tool_file(fn)

        file_name.__wrapped__ = fn
        return file_name

    for table in (entry_point.modes, *(v for v in entry_point.modes.values()
                                       if isinstance(v, dict))):
        for key, fn in list(table.items()):
            if callable(fn) and fn in targets:
                table[key] = located(fn)
