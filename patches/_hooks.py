"""Run code when a module is first imported, without importing it ourselves.

Every patch of this pack targets a module of XTuner, mmengine or torch and must take effect in
whatever process imports it (`xtuner train` runs its tool in a child `python`). So the patches are
registered at interpreter start-up (see `patches._startup`) as post-import hooks: nothing heavy is
imported until the target module is. wrapt has the same feature, but importing wrapt costs about
90 ms at every interpreter start; this is the 40 lines we need, on the standard library's
cheapest modules.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable
from types import ModuleType

_lock = threading.RLock()
_after: dict[str, list[Callable[[ModuleType], None]]] = {}
_instead: dict[str, Callable[[], ModuleType | None]] = {}
_before: dict[str, list[Callable[[], None]]] = {}


def after_import(module_name: str, hook: Callable[[ModuleType], None]) -> None:
    """Call `hook(module)` once `module_name` has been imported (now, if it already is)."""
    with _lock:
        module = sys.modules.get(module_name)
        if module is None:
            _after.setdefault(module_name, []).append(hook)
            _install()
            return
    hook(module)


def before_import(module_name: str, hook: Callable[[], None]) -> None:
    """Call `hook()` just before `module_name` is first imported (now, if it already is: a late
    hook still runs rather than silently not)."""
    with _lock:
        if module_name not in sys.modules:
            _before.setdefault(module_name, []).append(hook)
            _install()
            return
    hook()


def instead_of_import(module_name: str, factory: Callable[[], ModuleType | None]) -> None:
    """When `module_name` is imported, use `factory()`'s module if it returns one."""
    with _lock:
        _instead[module_name] = factory
        _install()


class _Finder:  # a meta path finder (importlib.abc would cost ~10 ms of start-up)
    def find_spec(self, name, path, target=None):
        if name not in _after and name not in _instead and name not in _before:
            return None
        factory = _instead.get(name)
        if factory is not None:
            with _lock:
                early = _before.pop(name, [])
            for hook in early:
                hook()
            _instead.pop(name, None)
            module = factory()
            if module is not None:
                return importlib.util.spec_from_loader(name, _Ready(module))
        spec = _find_elsewhere(self, name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            with _lock:
                early = _before.pop(name, [])
            for hook in early:  # no loader to wrap: run them now rather than never
                hook()
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module):
            # Hooks run when the module executes, not when it is found: importlib.util.find_spec
            # (the doctor locates packages with it) imports nothing and must trigger nothing.
            with _lock:
                early = _before.pop(name, [])
            for hook in early:
                hook()
            real_exec(module)
            with _lock:
                hooks = _after.pop(name, [])
            for hook in hooks:
                hook(module)

        # Per-instance override: the loader keeps its class (inspect, pkgutil rely on it).
        spec.loader.exec_module = exec_module
        return spec


def _find_elsewhere(me, name, path, target):
    for finder in sys.meta_path:
        if finder is not me and hasattr(finder, "find_spec"):
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                return spec
    return None


class _Ready:
    """Loader for a module object that was built by a replacement factory."""

    def __init__(self, module: ModuleType):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        pass


_finder = _Finder()


def _install() -> None:
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
