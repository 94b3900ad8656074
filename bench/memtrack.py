"""Peak of live tensor memory on any device, the CPU included, tracked through torch's dispatcher.

torch.cuda.max_memory_allocated has no CPU counterpart. `LiveBytes` sees every tensor an operator
returns (autograd's backward included), counts each storage once, and subtracts it when the
storage is freed (storage objects outlive their Python tensors while autograd holds them, so a
weakref finalizer fires exactly at the free). Tensors that existed before the tracker started are
not counted.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveBytes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def reset_peak(self) -> None:
        self.peak = self.current

    def _free(self, key: int, nbytes: int) -> None:
        if self.live.pop(key, None) is not None:
            self.current -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self.live:
                    nbytes = storage.nbytes()
                    self.live[key] = nbytes
                    self.current += nbytes
                    weakref.finalize(storage, self._free, key, nbytes)
        self.peak = max(self.peak, self.current)
        return out
