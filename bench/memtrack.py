"""Live tensor memory per device over a training step, on real and on fake tensors.

`StepMemory` is torch's own `torch.distributed._tools.mem_tracker.MemTracker` (a dispatch mode that
sorts every storage it sees by kind: parameter, buffer, gradient, activation, backward temporary,
optimizer state, with gradient and optimizer hooks), extended where a CUDA run's number needs it:

- every storage on a device of `rounded` (the fake GPU) is counted as CUDA's caching allocator
  counts it: its request rounded up to a multiple of 512 bytes, the smallest block
  (c10/cuda/CUDACachingAllocator.cpp `round_size`: kMinBlockSize = 512, and no power-of-two
  divisions unless PYTORCH_CUDA_ALLOC_CONF sets roundup_power2_divisions); a zero-byte request
  takes no block. This is torch.cuda.max_memory_allocated's unit. (A block the allocator does not
  split is counted whole by that statistic: a large-pool request leaves at most 1 MiB of its
  block unsplit; that and the cache itself are the allocator's own, and not traced.)
- the peak is kept per device without MemTracker's per-module snapshots at every operator (too
  slow for a 7B step), and an event log lets `at_peak()` say what was live at the peak, by kind
  and by the module that created it.
- tensors that exist before the step and are no parameter or buffer (bitsandbytes' quantization
  state, a table a patch moved off the parameters) are registered with a label of their own.

`LiveBytes` (the first version: total live storage bytes through the dispatcher) stays for the
CPU path of bench/vram.py.
"""

from __future__ import annotations

import math
import weakref
from collections import defaultdict

import torch
from torch.distributed._tools import mem_tracker as _mt
from torch.distributed._tools.mem_tracker import MemTracker
from torch.distributed._tools.mod_tracker import ModTracker
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

MIN_BLOCK = 512  # CUDACachingAllocator.cpp kMinBlockSize: every block is a multiple of it


def cuda_block_bytes(nbytes: int) -> int:
    """The bytes the caching allocator hands out for a request of `nbytes`."""
    return 0 if nbytes == 0 else math.ceil(nbytes / MIN_BLOCK) * MIN_BLOCK


class _Rounded(_mt._WeakRefInfo):
    """MemTracker's storage record, with the caching allocator's rounding on the rounded devices
    (MemTracker itself rounds storages of `cuda` devices only)."""

    rounded: frozenset = frozenset()

    def _calculate_mem_consumed(self) -> int:
        mem = self.size * self.element_size
        return cuda_block_bytes(mem) if self.device.type in self.rounded else mem


class _LeaflessModTracker(ModTracker):
    """ModTracker registers a multi-grad hook on each module's inputs to see its backward end;
    for a leaf input (the embedding output that `enable_input_require_grads` makes require
    grad) the hook's closure holds the leaf's AccumulateGrad node, which holds the leaf: a cycle
    through C++ that is never collected, so each step's embedding output outlived its step.
    Leaf inputs take the path of modules without grad inputs (their backward ends with the
    whole backward pass)."""

    def _fw_pre_hook(self, mod, input):
        from torch.autograd.graph import register_multi_grad_hook

        if torch._dynamo.eval_frame._is_in_optimized_module():
            return
        name = self._get_mod_name(mod)
        w_mod = weakref.ref(mod)
        self._get_append_fn(w_mod, name, False)()
        if self._user_pre_fw_hook is not None:
            self._user_pre_fw_hook(mod, input)
        args, _ = tree_flatten(input)
        tensors = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad
                   and a.grad_fn is not None]
        if not self.is_bw:
            if tensors:
                register_multi_grad_hook(tensors, self._get_pop_fn(w_mod, name, True))
            else:
                self._post_bw_callbacks_to_enqueue.append(self._get_pop_fn(w_mod, name, True))


class StepMemory(MemTracker):
    def __init__(self, rounded: tuple[str, ...] = ()):
        super().__init__()
        self._mod_tracker = _LeaflessModTracker()
        self.rounded = frozenset(rounded)
        self.events: list[tuple] = []
        self._ids: dict[int, int] = {}  # id(winfo) -> serial
        self._serial = 0
        self.peak_event: dict[torch.device, int] = {}
        self.labels: dict[int, str] = {}  # serial -> a label given at registration
        self.trainable: set[int] = set()  # serials of trainable parameters' storages
        self.phase = "setup"
        self.phase_peaks: dict[str, dict[torch.device, int]] = defaultdict(dict)
        self.timeline: list[tuple[int, str, dict]] = []

    # -- the record of each storage -----------------------------------------------------------
    def _serial_of(self, winfo) -> int:
        key = id(winfo)
        if key not in self._ids:
            self._serial += 1
            self._ids[key] = self._serial
        return self._ids[key]

    def _update_snap(self, u_type, winfo, old_mem_consumed=None, old_reftype=None):
        serial = self._serial_of(winfo)
        if u_type == _mt._UpdateType.ADD:
            self.events.append(("add", serial, winfo.device, winfo.mem_consumed,
                                winfo.reftype, self._module(), self._op))
        elif u_type == _mt._UpdateType.DEL:
            self.events.append(("del", serial, winfo.device, winfo.mem_consumed))
            self._ids.pop(id(winfo), None)
        elif u_type == _mt._UpdateType.REF:
            self.events.append(("ref", serial, winfo.device, winfo.reftype))
        elif u_type == _mt._UpdateType.SIZE:
            self.events.append(("size", serial, winfo.device,
                                winfo.mem_consumed - old_mem_consumed))
        super()._update_snap(u_type, winfo, old_mem_consumed, old_reftype)

    _op = "-"

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self._op = func.__name__  # the operator whose outputs are being tracked
        try:
            return super().__torch_dispatch__(func, types, args, kwargs)
        finally:
            self._op = "-"

    def _module(self) -> str:
        parents = [p for p in self._mod_tracker.parents if p != "Global"]
        return max(parents, key=lambda p: p.count(".")) if parents else "-"

    def _update_peak_stats(self, peak_state) -> None:
        # Global and per-phase peaks only (MemTracker also snapshots every active module here).
        for dev, snap in self._curr_mem_snap.items():
            total = snap[_mt._TOTAL_KEY]
            if total > self._peak_mem.get(dev, 0):
                self._peak_mem[dev] = total
                self._peak_mem_snap[dev] = dict(snap)
                self.peak_event[dev] = len(self.events)
            stage = ("optimizer" if self._in_opt else "backward" if self._mod_tracker.is_bw
                     else "forward")
            phase = self.phase_peaks[f"{self.phase} {stage}"]
            if total > phase.get(dev, 0):
                phase[dev] = total

    def _track_module_params_and_buffers(self, module, install_grad_hooks=True):
        # MemTracker hooks every parameter; a frozen one (the base model of LoRA) takes no hook
        sizes = super()._track_module_params_and_buffers(module, install_grad_hooks=False)
        if install_grad_hooks:
            for param in module.parameters():
                if param.requires_grad and self._param_to_grad_hook_handles.get(param) is None:
                    self._param_to_grad_hook_handles[param] = (
                        param.register_hook(self._grad),
                        param.register_post_accumulate_grad_hook(lambda p: self._grad(p.grad)))
        return sizes

    def _grad(self, grad) -> None:
        self._update_and_maybe_create_winfos(grad, _mt._MemRefType.GRAD)

    # -- registration -------------------------------------------------------------------------
    def track_model(self, model: torch.nn.Module) -> None:
        self.track_external(model)
        for p in model.parameters():
            if p.requires_grad:
                for winfo in self._winfos(p):
                    self.trainable.add(self._serial_of(winfo))

    def track_labelled(self, label: str, tensors) -> None:
        for t in tensors:
            if isinstance(t, torch.Tensor):
                winfos = self._update_and_maybe_create_winfos(t, _mt._MemRefType.OTH)
                for winfo in winfos:
                    self.labels[self._serial_of(winfo)] = label

    def _winfos(self, t):
        return [self._WINFO[st][0] for st in _mt.get_untyped_storages(t) if st in self._WINFO]

    def set_phase(self, name: str) -> None:
        self.phase = name
        self.timeline.append((len(self.events), name, self.current()))

    # -- results ------------------------------------------------------------------------------
    def current(self) -> dict[str, int]:
        return {str(d): s[_mt._TOTAL_KEY] for d, s in self._curr_mem_snap.items()}

    def peak(self, device: torch.device | str) -> int:
        return self._peak_mem.get(torch.device(device), 0)

    def at_peak(self, device: torch.device | str) -> dict:
        """What was live at `device`'s peak: {"by_kind": {kind: bytes}, "by_module": {(module,
        kind): bytes}} (modules: where a tensor was created; "-" outside any module)."""
        device = torch.device(device)
        end = self.peak_event.get(device, 0)
        live: dict[int, list] = {}
        for event in self.events[:end]:
            kind, serial, dev = event[0], event[1], event[2]
            if kind == "add":
                live[serial] = [dev, event[3], event[4], event[5], event[6]]
            elif kind == "del":
                live.pop(serial, None)
            elif kind == "ref" and serial in live:
                live[serial][2] = event[3]
            elif kind == "size" and serial in live:
                live[serial][1] += event[3]
        by_kind: dict[str, int] = defaultdict(int)
        by_module: dict[tuple[str, str], int] = defaultdict(int)
        by_op: dict[tuple[str, str, str], int] = defaultdict(int)
        for serial, (dev, nbytes, reftype, module, op) in live.items():
            if dev != device:
                continue
            kind = self._kind(serial, reftype)
            by_kind[kind] += nbytes
            by_module[(module, kind)] += nbytes
            by_op[(module, kind, op)] += nbytes
        return {"by_kind": dict(by_kind), "by_module": dict(by_module), "by_op": dict(by_op)}

    def _kind(self, serial: int, reftype) -> str:
        T = _mt._MemRefType
        if serial in self.labels:
            return self.labels[serial]
        if reftype == T.PARAM:
            return "LoRA adapters" if serial in self.trainable else "weights"
        return {T.BUFFER: "weights", T.GRAD: "gradients", T.OPT: "optimizer states",
                T.ACT: "saved activations", T.TEMP: "temporaries"}.get(reftype, "other")

    # -- the mode -----------------------------------------------------------------------------
    def __enter__(self):
        self._previous_winfo = _mt._WeakRefInfo
        rounded = type("_RoundedHere", (_Rounded,), {"rounded": self.rounded})
        _mt._WeakRefInfo = rounded
        return super().__enter__()

    def __exit__(self, *args):
        try:
            super().__exit__(*args)
        finally:
            _mt._WeakRefInfo = self._previous_winfo


class LiveBytes(TorchDispatchMode):
    """Peak of live tensor memory on any device but meta, the CPU included, through torch's
    dispatcher: every storage an operator returns counts once, until it is freed (a weakref
    finalizer on the storage fires at the free). Tensors that existed before it started are not
    counted."""

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
