"""--deep probes: imports of torch, deepspeed and flash_attn, each in a subprocess of the
environment's python with a timeout (what they raised, their signal, or that they hung)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .. import probe
from ._base import keyed


@dataclass
class Deep:
    """What a subprocess import said."""

    ok: bool
    summary: str
    data: dict = field(default_factory=dict)
    run: probe.Run | None = None


class DeepProbes:
    @keyed("deep", record=lambda d: {"ok": d.ok, "summary": d.summary, "data": d.data})
    def deep_import(self, name: str, code: str) -> Deep:
        """Run `code` (which prints one JSON line last) in the environment's python."""
        run = self.m.python_run(code, timeout=self.deep_timeout)
        data = {}
        if run.ok:
            lines = run.stdout.strip().splitlines()
            try:
                data = json.loads(lines[-1]) if lines else {}
            except ValueError:
                data = {}
        if run.ok:
            return Deep(True, f"`import {name}` worked", data, run)
        why = run.describe()
        last = run.last_line()
        return Deep(False, f"`import {name}` failed: {why}" + (f": {last[:300]}" if last else ""),
                    data, run)

