"""A fake GPU: a config's CUDA training step run at full size on a machine without one.

The accelerator is played by torch's `meta` device under FakeTensorMode (tensors with shapes,
dtypes and devices but no data), the host by `cpu` (fake too: nothing is allocated). Fake `cuda`
tensors cannot run backward on a CPU build of torch (the autograd engine asks for a CUDA device
guard), meta tensors can; so every "GPU" tensor of the run is a meta tensor and the host side of
each host/device copy a cpu one.

What a CUDA run has and a meta tensor does not, this module supplies, each in one place:

- `DeviceChecker` fails where CUDA would: an op whose tensor operands span host and device (0-dim
  host scalars aside, as CUDA allows; advanced indexing with host indices aside), a host tensor
  read while a non-blocking device-to-host copy into it may still be in flight, pinning anything
  but dense host memory. FakeTensorMode's own device propagation lets some mixes pass (an
  embedding of device ids into a host table returns a host tensor).
- `CudaOps` applies CUDA autocast's casts to device tensors, by the op lists torch's own
  header declares (ATen/autocast_mode.h, read from the installed wheel), including its cache of
  16-bit copies of fp32 leaf weights (cleared when the outermost autocast region exits).
  `cuda_amp()` lets torch.autocast("cuda"), mmengine's AmpOptimWrapper and its GradScaler run:
  they keep their state in torch's CUDA autocast flags, and torch.utils.checkpoint restores those
  flags for the recompute of a checkpointed layer.
- Dropout: CUDA runs the fused native_dropout kernel (a bool mask kept for backward), the CPU
  and meta tensors a float noise tensor; `CudaOps` routes device tensors to the former.
- Attention: torch's SDPA on a meta tensor runs the math backend (a score matrix per head); a
  CUDA GPU runs the first of FlashAttention-2, the memory-efficient kernel and the math kernel
  that takes the call, by its compute capability, the dtype, the head size, the mask and GQA
  (torch's select_sdp_backend, written out in doctor/sdpa.py). `CudaOps` routes SDPA the same way
  for the GPU's `CAPABILITY`, so the saved tensors are the kernel's, and `patches.sdpa_gqa` sees
  the fake device as a CUDA device of that capability.
- Data-dependent values (`.item()`, `bool(t)`) have no answer without data: `DataDependent` answers
  each call site it knows, with what a real batch of the run gives (a packed batch has no padding,
  a finite loss has no inf gradients), and fails naming any other call site.
- bitsandbytes' `Params4bit` cannot wrap a fake tensor (it is a tensor subclass made with
  `_make_subclass`); `fake_params4bit()` makes it a FakeTensor that is also a Params4bit.
"""

from __future__ import annotations

import contextlib
import re
import traceback
import weakref
from pathlib import Path

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode, unset_fake_temporarily
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map_only

ACCELERATOR = torch.device("meta")
HOST = torch.device("cpu")
# The compute capability the fake GPU answers to, by default Ampere (RTX 3060 Ti / 3070, 8 GiB),
# where SDPA takes FlashAttention-2; FakeGPU(capability=(7, 5)) is a Turing card (RTX 20xx), where
# it takes the memory-efficient kernel, or the math kernel for what that refuses (GQA, bf16).
CAPABILITY = (8, 6)

aten = torch.ops.aten


class DeviceError(RuntimeError):
    """What a CUDA run would fail with, raised where the fake run gets there."""


# Frames of the dispatch machinery between the code that reads a value and this mode.
_MACHINERY = ("torch/_subclasses/", "torch/utils/_python_dispatch.py", "torch/_ops.py",
              "torch/_compile.py", "torch/_dynamo/", "torch/distributed/_tools/",
              "torch/utils/_stats.py", "torch/_tensor.py", "bench/fakedevice.py",
              "bench/memtrack.py")


def _user_frame() -> str:
    """`file:line in function` of the code that called the operator (the innermost frame outside
    torch's dispatch machinery and these tools)."""
    for frame in reversed(traceback.extract_stack()):
        if "/torch/" in frame.filename or any(m in frame.filename for m in _MACHINERY):
            continue
        return f"{frame.filename}:{frame.lineno} in {frame.name}"
    return "?"


def _tensors(args, kwargs) -> list[torch.Tensor]:
    return [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]


# ---- device placement --------------------------------------------------------------------------

# Ops that move data between host and device: their operands may span both.
COPIES = {aten._to_copy.default, aten.copy_.default, aten._copy_from.default,
          aten._copy_from_and_resize.default, aten.copy.default, aten.lift_fresh.default,
          aten.set_.source_Storage_storage_offset, aten.set_.source_Tensor}
# CUDA's advanced indexing takes host index tensors (it moves them): self on the device, indices
# anywhere.
HOST_INDICES = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default,
                aten._index_put_impl_.default}
# Ops that read no data of their operands (metadata only).
METADATA = {torch.ops.prim.device.default, aten.is_pinned.default, aten.detach.default,
            aten.alias.default, aten.view.default, aten._unsafe_view.default}


class DeviceChecker(TorchDispatchMode):
    """Fails the run where a CUDA GPU would (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.pinned: dict[int, weakref.ref] = {}  # host storages in page-locked memory
        # host storages a non-blocking device-to-host copy may still be writing: where it began
        self.in_flight: dict[int, tuple[weakref.ref, str]] = {}
        self.pageable_async = 0  # non_blocking copies from pageable memory (synchronous on CUDA)
        self.syncs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = _tensors(args, kwargs)
        if func not in METADATA:
            self._check_mix(func, args, tensors)
            self._check_in_flight(func, args, kwargs, tensors)
        pin = kwargs.get("pin_memory")
        if pin:
            device = kwargs.get("device")
            if device is not None and torch.device(device).type != "cpu":
                raise DeviceError(f"{func}: pin_memory=True for a {device} tensor: only dense "
                                  f"host memory can be pinned ({_user_frame()})")
            kwargs = {**kwargs, "pin_memory": False}
        if func is aten._pin_memory.default:
            t = args[0]
            if t.device.type != "cpu":
                raise DeviceError(f"pin_memory() of a {t.device} tensor ({_user_frame()})")
            out = aten.clone.default(t)
            self._pin(out)
            return out
        if func is aten.is_pinned.default:
            return self._is_pinned(args[0])
        out = func(*args, **kwargs)
        if pin:
            self._pin(out)
        self._track_copies(func, args, kwargs, out)
        return out

    def _check_mix(self, func, args, tensors):
        if func in COPIES:
            return
        considered = tensors
        if func in HOST_INDICES:
            considered = [args[0]] + ([t for t in tensors[1:] if t.device.type != "cpu"])
        devices = {t.device.type for t in considered
                   if not (t.device.type == "cpu" and t.dim() == 0)}
        if len(devices) > 1:
            shapes = ", ".join(f"{t.device.type} {tuple(t.shape)}" for t in considered)
            raise DeviceError(
                f"{func} mixes host and device tensors ({shapes}): CUDA fails with 'Expected all "
                f"tensors to be on the same device'; at {_user_frame()}")

    def _check_in_flight(self, func, args, kwargs, tensors):
        if not self.in_flight:
            return
        for t in tensors:
            if t.device.type != "cpu":
                continue
            storage = t.untyped_storage()
            pending = self.in_flight.get(id(storage))
            if pending is None or pending[0]() is not storage:
                continue
            if func in (aten._to_copy.default, aten.copy_.default) and self._h2d(func, args,
                                                                                  kwargs):
                continue  # a copy back to the device is ordered after it on the same stream
            began = pending[1]
            raise DeviceError(
                f"{func} reads a host tensor that a non-blocking device-to-host copy ({began}) "
                f"may still be writing: synchronize first; at {_user_frame()}")

    @staticmethod
    def _h2d(func, args, kwargs) -> bool:
        if func is aten._to_copy.default:
            device = kwargs.get("device")
            return device is not None and torch.device(device).type != "cpu"
        return args[0].device.type != "cpu"  # copy_(dst, src): into the device

    def _track_copies(self, func, args, kwargs, out):
        if func is aten._local_scalar_dense.default:
            self.syncs += 1
            self.in_flight.clear()  # .item() synchronizes the stream
            return
        if func not in (aten._to_copy.default, aten.copy_.default):
            return
        non_blocking = kwargs.get("non_blocking", args[2] if func is aten.copy_.default
                                  and len(args) > 2 else False)
        src = args[1] if func is aten.copy_.default else args[0]
        dst = args[0] if func is aten.copy_.default else out
        if src.device.type == dst.device.type:
            return
        if dst.device.type == "cpu":  # device to host
            if non_blocking:
                if self._is_pinned(dst):
                    storage = dst.untyped_storage()
                    self.in_flight[id(storage)] = (weakref.ref(storage), _user_frame())
                else:
                    self.pageable_async += 1
            else:
                self.syncs += 1
                self.in_flight.clear()  # a blocking copy synchronizes the stream
        elif non_blocking and not self._is_pinned(src):
            self.pageable_async += 1

    def _pin(self, t) -> None:
        storage = t.untyped_storage()
        self.pinned[id(storage)] = weakref.ref(storage)

    def _is_pinned(self, t) -> bool:
        storage = t.untyped_storage()
        ref = self.pinned.get(id(storage))
        return ref is not None and ref() is storage


# ---- data-dependent values ---------------------------------------------------------------------

# (path suffix, function) of a call that reads a value from a tensor -> what a real batch of the
# run gives there, and why.
ANSWERS: dict[tuple[str, str], tuple[object, str]] = {
    ("transformers/masking_utils.py", "_ignore_causal_mask_sdpa"):
        (True, "a packed batch has no padding: the attention mask is all ones"),
    ("transformers/masking_utils.py", "padding_mask_function"):
        (True, "a packed batch has no padding"),
    ("patches/sdpa_attention.py", "_causal_only"):
        (True, "a packed batch has no padding: the remote code's mask is purely causal"),
    ("torch/amp/grad_scaler.py", "_maybe_opt_step"):
        (0.0, "a finite loss: no inf/nan gradients, the optimizer steps"),
    ("mmengine/optim/optimizer/optimizer_wrapper.py", "_clip_grad"):
        (1.0, "the gradient norm, logged only"),
    ("mmengine/model/base_model/base_model.py", "parse_losses"):
        (1.0, "the loss, logged only"),
    ("torch/optim/optimizer.py", "_get_value"):
        (1.0, "torch's AdamW step count (any positive count: memory does not depend on it)"),
}


class DataDependent(TorchDispatchMode):
    """Answers `.item()` / `bool(t)` on fake tensors by the call site that asks (ANSWERS)."""

    def __init__(self):
        super().__init__()
        self.asked: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is not aten._local_scalar_dense.default:
            return func(*args, **(kwargs or {}))
        # the function that reads it (a generator expression's: the function around it)
        frame = next((f for f in reversed(traceback.extract_stack())
                      if not any(m in f.filename for m in _MACHINERY)
                      and not f.name.startswith("<")), None)
        for (suffix, function), (value, _why) in ANSWERS.items():
            if frame is not None and frame.filename.endswith(suffix) and frame.name == function:
                key = f"{suffix}:{function}"
                self.asked[key] = self.asked.get(key, 0) + 1
                t = args[0]
                return bool(value) if t.dtype == torch.bool else (
                    int(value) if not t.is_floating_point() else float(value))
        where = f"{frame.filename}:{frame.lineno} in {frame.name}" if frame else "?"
        raise DeviceError(
            f"a value read from a tensor at {where} has no answer without data; say what a real "
            "batch gives there in bench/fakedevice.py ANSWERS")


# ---- bitsandbytes' Params4bit on fake tensors ---------------------------------------------------


PARAMS4BIT_ATTRS = ("blocksize", "compress_statistics", "quant_type", "quant_state",
                    "quant_storage", "bnb_quantized", "module")


@contextlib.contextmanager
def fake_params4bit():
    """bitsandbytes.nn.Params4bit(fake) returns a FakeTensor that is a Params4bit too."""
    from bitsandbytes.nn import Params4bit

    original_new = Params4bit.__new__
    hybrid = _fake_params4bit_class(Params4bit)

    def __new__(cls, data=None, requires_grad=False, quant_state=None, blocksize=None,  # noqa: N807
                compress_statistics=True, quant_type="fp4", quant_storage=torch.uint8,
                module=None, bnb_quantized=False, **kwargs):
        if not isinstance(data, FakeTensor):
            return original_new(cls, data, requires_grad, quant_state, blocksize,
                                compress_statistics, quant_type, quant_storage, module,
                                bnb_quantized, **kwargs)
        return _wrap_params4bit(hybrid, data, requires_grad, dict(
            blocksize=64 if blocksize is None else blocksize,
            compress_statistics=compress_statistics, quant_type=quant_type,
            quant_state=quant_state, quant_storage=quant_storage, bnb_quantized=bnb_quantized,
            module=module))

    Params4bit.__new__ = __new__
    try:
        yield
    finally:
        Params4bit.__new__ = original_new


def _wrap_params4bit(hybrid: type, data: FakeTensor, requires_grad: bool, attrs: dict):
    """A `hybrid` instance sharing `data`'s storage, with Params4bit's attributes."""
    with unset_fake_temporarily():  # a meta tensor on the same storage
        elem = torch.empty(0, dtype=data.dtype, device="meta")
        elem.set_(data.untyped_storage(), data.storage_offset(), data.shape, data.stride())
    self = FakeTensor.__new__(hybrid, data.fake_mode, elem, data.fake_device,
                              requires_grad=requires_grad)
    for name, value in attrs.items():
        setattr(self, name, value)
    return self


_HYBRIDS: dict[type, type] = {}


def _fake_params4bit_class(params4bit: type) -> type:
    if params4bit not in _HYBRIDS:
        def detach(self):
            # nn.Module._apply re-wraps a moved fake parameter with nn.Parameter(), which wants
            # detach() to keep the type (and swap_tensors then keeps the quantization state)
            out = torch.Tensor.detach(self)
            return _wrap_params4bit(type(self), out, False,
                                    {k: getattr(self, k, None) for k in PARAMS4BIT_ATTRS})

        # named as bitsandbytes' class: PEFT and accelerate test `__class__.__name__`
        _HYBRIDS[params4bit] = type("Params4bit", (FakeTensor, params4bit), {
            "__module__": __name__,
            "__init__": lambda self, *a, **k: None,
            "detach": detach,
        })
    return _HYBRIDS[params4bit]


@contextlib.contextmanager
def bnb_constants():
    """bitsandbytes builds its 8-bit code books with `.tolist()` (quantization constants, the
    8-bit optimizers' maps): build them from real numbers, as constants of the fake run."""
    import bitsandbytes.functional as bnbf

    original = bnbf.create_dynamic_map
    cached = dict(bnbf.name2qmap)  # its module-level cache keeps what the fake run puts there

    def create_dynamic_map(*args, **kwargs):
        with unset_fake_temporarily():
            return original(*args, **kwargs)

    bnbf.create_dynamic_map = create_dynamic_map
    try:
        yield
    finally:
        bnbf.create_dynamic_map = original
        bnbf.name2qmap.clear()
        bnbf.name2qmap.update(cached)


# ---- CUDA autocast ------------------------------------------------------------------------------


def autocast_policies() -> dict[str, str]:
    """ATen op name -> CUDA autocast policy, from the installed torch's ATen/autocast_mode.h."""
    header = Path(torch.__file__).parent / "include" / "ATen" / "autocast_mode.h"
    text = header.read_text()
    policies = {}
    for macro, policy in (("AT_FORALL_LOWER_PRECISION_FP", "lower"), ("AT_FORALL_FP32", "fp32"),
                          ("AT_FORALL_FP32_SET_OPT_DTYPE", "fp32_set_opt_dtype"),
                          ("AT_FORALL_DIFFERENT_REDISPATCH_SIGNATURE", "fp32_append_dtype"),
                          ("AT_FORALL_PROMOTE", "promote")):
        start = text.index(f"#define {macro}(")
        body = text[start:text.index("\n\n", start)]
        for name in re.findall(r"_\(\s*(?:ADD_NS\()?(\w+)", body):
            policies.setdefault(name, policy)
    if not policies.get("mm") == "lower" or policies.get("softmax") != "fp32_set_opt_dtype":
        raise RuntimeError(f"cannot read CUDA autocast's op lists from {header}")
    return policies


def _aten_name(func) -> str:
    name = getattr(func, "__name__", "")
    return {"__matmul__": "matmul", "__rmatmul__": "matmul", "__pow__": "pow",
            "__rpow__": "pow"}.get(name, name)


class CudaOps(TorchFunctionMode):
    """Torch functions on device tensors as CUDA runs them: autocast's casts while torch's CUDA
    autocast flag is on (its cache included), SDPA's and dropout's CUDA kernels, softmax's
    half_to_float, bitsandbytes' gemm_4bit fallback, cuBLAS's workspace."""

    def __init__(self):
        super().__init__()
        self.policies = autocast_policies()
        self.cache: dict[int, tuple[weakref.ref, torch.Tensor]] = {}
        self.casts = 0

    def clear_cache(self):
        self.cache.clear()

    def _eligible(self, t) -> bool:
        return (isinstance(t, torch.Tensor) and t.device == ACCELERATOR and t.is_floating_point()
                and t.dtype != torch.float64)

    def _cast(self, t, dtype):
        if not self._eligible(t) or t.dtype == dtype:
            return t
        lower = torch.get_autocast_dtype("cuda")
        cacheable = (dtype == lower and t.dtype == torch.float32 and t.requires_grad
                     and t.is_leaf and not t._is_view() and torch.is_autocast_cache_enabled())
        if cacheable:
            hit = self.cache.get(id(t))
            if hit is not None and hit[0]() is t:
                return hit[1]
        self.casts += 1
        out = t.to(dtype)
        if cacheable:
            self.cache[id(t)] = (weakref.ref(t), out)
        return out

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _aten_name(func) in MATMULS and not WORKSPACES.kept and any(
                t.device == ACCELERATOR for t in _tensors(args, kwargs)):
            WORKSPACES.cublas(ACCELERATOR)
        if torch.is_autocast_enabled("cuda"):
            policy = self.policies.get(_aten_name(func))
            if policy is not None:
                args, kwargs = self._apply(policy, func, args, kwargs)
        if _aten_name(func) == "scaled_dot_product_attention":
            return cuda_sdpa(*args, **kwargs)
        if _aten_name(func) == "dropout":
            return cuda_dropout(*args, **kwargs)
        if func is _bnb_gemm_4bit() and args[0].device == ACCELERATOR:
            return cuda_gemm_4bit(*args, **kwargs)
        if _aten_name(func) in ("softmax", "log_softmax"):
            return cuda_softmax(func, *args, **kwargs)
        # (while this runs the mode is off: a torch function written in Python that calls a
        # listed op inside is cast by its own name only, and the ops a C++ composite calls
        # (cross_entropy's log_softmax and nll_loss) are not seen; the models here call the
        # listed ops directly and compute their losses in fp32)
        return func(*args, **kwargs)

    def _apply(self, policy, func, args, kwargs):
        lower = torch.get_autocast_dtype("cuda")
        if policy == "lower":
            return tree_map_only(torch.Tensor, lambda t: self._cast(t, lower), (args, kwargs))
        if policy in ("fp32", "fp32_append_dtype"):
            return tree_map_only(torch.Tensor, lambda t: self._cast(t, torch.float32),
                                 (args, kwargs))
        if policy == "fp32_set_opt_dtype":
            first = next((a for a in tree_flatten(args)[0] if isinstance(a, torch.Tensor)), None)
            if first is not None and self._eligible(first) and kwargs.get("dtype") is None:
                kwargs = {**kwargs, "dtype": torch.float32}
            return args, kwargs
        if policy == "promote":
            floats = [t for t in _tensors(args, kwargs) if self._eligible(t)]
            widest = lower
            for t in floats:
                widest = torch.promote_types(widest, t.dtype)
            return tree_map_only(torch.Tensor, lambda t: self._cast(t, widest), (args, kwargs))
        return args, kwargs


def cuda_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
              enable_gqa=False):
    """F.scaled_dot_product_attention as a CUDA GPU of CAPABILITY runs it: the kernel torch's
    select_sdp_backend picks (doctor/sdpa.py), among those torch.backends.cuda leaves enabled.
    FlashAttention-2 keeps GQA heads as they are; the memory-efficient kernel takes none (with
    fewer key heads the call goes to the math kernel, as on a GPU)."""
    import torch.nn.functional as F

    from doctor import sdpa

    if query.device == ACCELERATOR:
        enabled = tuple(name for name, on in (
            ("flash", torch.backends.cuda.flash_sdp_enabled()),
            ("efficient", torch.backends.cuda.mem_efficient_sdp_enabled()),
            ("math", torch.backends.cuda.math_sdp_enabled())) if on)
        kernel = sdpa.kernel(
            CAPABILITY, str(query.dtype).removeprefix("torch."), query.shape[-1],
            gqa=enable_gqa and query.shape[-3] != key.shape[-3], mask=attn_mask is not None,
            grad=torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value)),
            dropout=dropout_p > 0, square=not is_causal or query.shape[-2] == key.shape[-2],
            value_head_dim=value.shape[-1], enabled=enabled)
        if kernel == "none":
            raise DeviceError(f"scaled_dot_product_attention: no available kernel on sm"
                              f"{CAPABILITY[0]}{CAPABILITY[1]} with {sorted(enabled)} enabled "
                              f"({_user_frame()})")
        if kernel == "flash":
            return FlashAttention.apply(query, key, value, dropout_p, is_causal, scale)
        if kernel == "efficient":
            if attn_mask is not None and attn_mask.dtype == torch.bool:
                attn_mask = torch.zeros_like(attn_mask, dtype=query.dtype).masked_fill(
                    ~attn_mask, float("-inf"))
            out = aten._scaled_dot_product_efficient_attention(
                query, key, value, attn_mask, True, dropout_p, is_causal, scale=scale)
            return out[0]
    return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask,
                                          dropout_p=dropout_p, is_causal=is_causal, scale=scale,
                                          enable_gqa=enable_gqa)


def cuda_softmax(func, *args, **kwargs):
    """(log_)softmax of a 16-bit device tensor into fp32 (what autocast asks for): CUDA's kernel
    reads the 16-bit input directly (half_to_float, aten/src/ATen/native/SoftMax.cpp); elsewhere
    torch first makes an fp32 copy of the input."""
    input = args[0]
    dim = args[1] if len(args) > 1 and isinstance(args[1], int) else kwargs.get("dim")
    dtype = kwargs.get("dtype")
    if dtype is None:  # torch.softmax(input, dim, dtype) takes it positionally
        dtype = next((a for a in args[2:] if isinstance(a, torch.dtype)), None)
    if (input.device == ACCELERATOR and dtype == torch.float32 and dim is not None
            and input.dtype in (torch.float16, torch.bfloat16)):
        op = aten._log_softmax if _aten_name(func) == "log_softmax" else aten._softmax
        return op(input, dim, True)
    return func(*args, **kwargs)


def _bnb_gemm_4bit():
    try:
        return torch.ops.bitsandbytes.gemm_4bit.default
    except (AttributeError, RuntimeError):
        return None


# bitsandbytes' CUDA gemm_4bit (backends/cuda/ops.py) runs its fused kernel for at most this many
# rows of A and otherwise `_dequant_linear_fallback`: the weight dequantized to A's dtype, then
# F.linear. The fake kernel gives the output only; the fallback's buffers are allocated here.
BNB_GEMM_CUSTOM_MAX_M = 1536


def cuda_gemm_4bit(A, B, shapeB, absmax, blocksize, quant_type, bias=None, absmax_8bit=None,
                   absmax_code=None, absmax_offset=None):
    import torch.nn.functional as F

    if A.numel() // A.shape[-1] <= BNB_GEMM_CUSTOM_MAX_M:
        return _bnb_gemm_4bit()(A, B, shapeB, absmax, blocksize, quant_type, bias=bias,
                                absmax_8bit=absmax_8bit, absmax_code=absmax_code,
                                absmax_offset=absmax_offset)
    if absmax_8bit is not None:
        absmax_dq = torch.ops.bitsandbytes.dequantize_blockwise.default(
            absmax_8bit, absmax, absmax_code, 256, torch.float32)
        absmax = absmax_dq + absmax_offset
    weight = torch.ops.bitsandbytes.dequantize_4bit.default(B, absmax, blocksize, quant_type,
                                                            list(shapeB), A.dtype)
    return F.linear(A, weight, bias)


def cuda_dropout(input, p=0.5, training=True, inplace=False):
    """F.dropout as CUDA runs it on a device tensor: the fused native_dropout kernel, whose
    backward keeps a bool mask (the CPU's dropout, which meta tensors take, keeps a float noise
    tensor of the input's dtype)."""
    import torch.nn.functional as F

    if input.device == ACCELERATOR and training and 0 < p < 1 and input.numel():
        out = torch.native_dropout(input, p, True)[0]
        return input.copy_(out) if inplace else out
    return F.dropout(input, p, training, inplace)


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


class FlashAttention(torch.autograd.Function):
    """aten's FlashAttention-2 op with the autograd formula torch gives it (the same tensors
    saved: q, k, v, output, log-sum-exp, RNG state), whose backward also allocates what the
    CUDA kernel allocates for itself (flash_api.cpp mha_bwd): an fp32 dq accumulator and
    softmax row sums over the sequence rounded to 128 and the head size to 32, and with GQA
    k and v gradients expanded to every query head before they are summed."""

    @staticmethod
    def forward(ctx, q, k, v, dropout_p, is_causal, scale):
        out, lse, cum_q, cum_k, max_q, max_k, seed, offset, _ = \
            aten._scaled_dot_product_flash_attention(q, k, v, dropout_p, is_causal, False,
                                                     scale=scale)
        ctx.save_for_backward(q, k, v, out, lse, cum_q, cum_k, seed, offset)
        ctx.args = (max_q, max_k, dropout_p, is_causal, scale)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse, cum_q, cum_k, seed, offset = ctx.saved_tensors
        max_q, max_k, dropout_p, is_causal, scale = ctx.args
        batch, heads, seq, head_dim = q.shape
        seq_r, dim_r = _round_up(seq, 128), _round_up(head_dim, 32) if head_dim <= 192 else 256
        workspace = [torch.empty(batch, seq_r, heads, dim_r, dtype=torch.float32,
                                 device=q.device),  # dq_accum
                     torch.empty(batch, heads, seq_r, dtype=torch.float32, device=q.device)]
        if k.shape[1] != heads:  # dk_expanded, dv_expanded
            workspace += [torch.empty(batch, k.shape[2], heads, head_dim, dtype=q.dtype,
                                      device=q.device) for _ in range(2)]
        WORKSPACES.note(workspace)
        dq, dk, dv = aten._scaled_dot_product_flash_attention_backward(
            grad_out, q, k, v, out, lse, cum_q, cum_k, max_q, max_k, dropout_p, is_causal,
            seed, offset, scale=scale)
        del workspace
        return dq, dk, dv, None, None, None


class Workspaces:
    """Memory CUDA kernels allocate through the caching allocator for themselves: `note()`
    passes each to whoever listens (the memory trace labels it)."""

    # cuBLAS's workspace, allocated at the first matmul and kept (the estimator's term)
    from doctor.fit.estimate import CUBLAS_WORKSPACE as CUBLAS

    def __init__(self):
        self.listeners = []
        self.kept: list[torch.Tensor] = []

    def note(self, tensors) -> None:
        for listener in self.listeners:
            listener(tensors)

    def cublas(self, device) -> None:
        if not self.kept:
            self.kept.append(torch.empty(self.CUBLAS, dtype=torch.uint8, device=device))
            self.note(self.kept)


WORKSPACES = Workspaces()
MATMULS = {"linear", "matmul", "mm", "bmm", "addmm", "baddbmm", "addbmm", "addmv", "mv"}


@contextlib.contextmanager
def cuda_amp(autocast: CudaOps):
    """torch.autocast("cuda"), torch.amp.GradScaler("cuda") and mmengine's AmpOptimWrapper work
    without CUDA, on device tensors; checkpointing saves and restores CUDA's autocast state for
    them (they hold no CUDA resource: flags, a scale tensor on the tensors' device)."""
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp_wrapper
    import mmengine.runner.amp as mm_amp
    import torch.amp.autocast_mode as autocast_mode
    import torch.cuda.amp.common as amp_common
    import torch.utils.checkpoint as checkpoint

    saved = [(amp_common, "amp_definitely_not_available"), (amp_wrapper, "is_cuda_available"),
             (mm_amp, "get_device"), (checkpoint, "_infer_device_type"),
             (torch, "clear_autocast_cache"), (autocast_mode.autocast, "__init__")]
    originals = [getattr(obj, name) for obj, name in saved]
    init = autocast_mode.autocast.__init__
    infer = checkpoint._infer_device_type
    clear = torch.clear_autocast_cache

    def infer_device_type(*args):
        kind = infer(*args)
        return "cuda" if kind == ACCELERATOR.type else kind

    def clear_autocast_cache():
        autocast.clear_cache()
        clear()

    def autocast_init(self, device_type, *args, **kwargs):
        # code that asks its tensors' device (transformers' rotary embedding turns autocast off
        # for its fp32 product) gets the device the fake GPU stands for
        if device_type == ACCELERATOR.type:
            device_type = "cuda"
        init(self, device_type, *args, **kwargs)

    autocast_mode.autocast.__init__ = autocast_init
    amp_common.amp_definitely_not_available = lambda: False
    amp_wrapper.is_cuda_available = lambda: True
    mm_amp.get_device = lambda: "cuda"
    checkpoint._infer_device_type = infer_device_type
    torch.clear_autocast_cache = clear_autocast_cache
    try:
        yield
    finally:
        for (obj, name), value in zip(saved, originals, strict=True):
            setattr(obj, name, value)


@contextlib.contextmanager
def compute_capability(cc: tuple[int, int]):
    """The fake GPU is a CUDA device of compute capability `cc`: for cuda_sdpa's kernel choice
    and for patches.sdpa_gqa, which asks the device of a key tensor."""
    global CAPABILITY
    from patches import sdpa_gqa

    previous, asked = CAPABILITY, sdpa_gqa.cuda_capability

    def cuda_capability(t):
        return CAPABILITY if t.device == ACCELERATOR else asked(t)

    CAPABILITY, sdpa_gqa.cuda_capability = tuple(cc), cuda_capability
    try:
        yield
    finally:
        CAPABILITY, sdpa_gqa.cuda_capability = previous, asked


@contextlib.contextmanager
def swappable_fakes(mode: FakeTensorMode):
    """nn.Module.to() swaps a fake parameter with its moved copy (torch.utils.swap_tensors),
    which refuses a tensor any weak reference points to; FakeTensorMode's converter memo keeps
    one to fake tensors it met as conversions. Drop those entries before a swap."""
    original = torch.utils.swap_tensors

    def swap_tensors(t1, t2):
        memo = mode.fake_tensor_converter.meta_converter.tensor_memo
        for key, value in list(memo.items()):
            if value is t1 or value is t2:
                del memo[key]
        return original(t1, t2)

    torch.utils.swap_tensors = swap_tensors
    try:
        yield
    finally:
        torch.utils.swap_tensors = original


@contextlib.contextmanager
def mode_in_backward(mode: TorchFunctionMode):
    """The autograd engine runs backward without the torch function modes of the caller, but a
    checkpointed layer is recomputed there, under the autocast state checkpoint restores: `mode`
    is re-entered for the Python code the engine calls (custom Functions' backward, such as
    reentrant checkpointing's; saved-tensor unpack hooks, such as non-reentrant checkpointing's)."""
    from torch.autograd.function import BackwardCFunction
    from torch.autograd.graph import saved_tensors_hooks

    apply, init = BackwardCFunction.apply, saved_tensors_hooks.__init__

    def entered():
        active = torch.overrides._get_current_function_mode_stack()
        return contextlib.nullcontext() if any(m is mode for m in active) else mode

    def backward_apply(self, *args):
        with entered():
            return apply(self, *args)

    def hooks_init(self, pack_hook, unpack_hook):
        def unpack(packed):
            with entered():
                return unpack_hook(packed)

        init(self, pack_hook, unpack)

    BackwardCFunction.apply = backward_apply
    saved_tensors_hooks.__init__ = hooks_init
    try:
        yield
    finally:
        BackwardCFunction.apply, saved_tensors_hooks.__init__ = apply, init


# ---- all of it ----------------------------------------------------------------------------------


class FakeGPU:
    """The fake accelerator's modes and patches, entered together; `.checker`, `.autocast`,
    `.data` report what they saw."""

    def __init__(self, check_devices: bool = True, capability: tuple[int, int] | None = None):
        self.capability = tuple(capability) if capability else CAPABILITY
        self.mode = FakeTensorMode(allow_non_fake_inputs=True)
        self.checker = DeviceChecker() if check_devices else None
        self.data = DataDependent()
        self.ops = CudaOps()
        self.workspaces = Workspaces()
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        global WORKSPACES
        stack = self._stack
        previous, WORKSPACES = WORKSPACES, self.workspaces
        stack.callback(lambda: globals().__setitem__("WORKSPACES", previous))
        stack.enter_context(compute_capability(self.capability))
        stack.enter_context(bnb_constants())
        stack.enter_context(fake_params4bit())
        stack.enter_context(cuda_amp(self.ops))
        stack.enter_context(swappable_fakes(self.mode))
        stack.enter_context(mode_in_backward(self.ops))
        stack.enter_context(self.mode)
        stack.enter_context(self.data)
        if self.checker is not None:
            stack.enter_context(self.checker)
        stack.enter_context(self.ops)
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)


__all__ = ["ACCELERATOR", "CAPABILITY", "HOST", "FakeGPU", "DeviceError", "DeviceChecker",
           "CudaOps", "DataDependent", "compute_capability", "cuda_sdpa"]
