"""The recipe's learning-rate schedule, for a dataset of any size: linear warm-up over
`warmup_ratio` of the run, then cosine decay to 0.

The schedule is written in epochs and converted to iterations once the data is loaded
(`convert_to_iter_based`), and mmengine converts with int(). Two ways a small dataset breaks it:
- a warm-up shorter than one iteration becomes 0 iterations, and mmengine stops before training
  with "end should be larger than begin, but got begin=0, end=0" (40 GSM8K rows, 23 packed
  sequences of 256 tokens, warmup_ratio=0.03: int(0.69));
- a warm-up of exactly one iteration never warms up: LinearLR sets start_factor x lr at its first
  iteration and ramps on the following ones, so with one it stops there and the whole run trains
  at 1e-5 x lr, silently (warmup_ratio=0.03 on 34-66 iterations).
Here a nonzero warm-up lasts at least two iterations (start_factor, then the full rate), and the
decay begins where the warm-up ends (the same rounding), however short the epoch.
"""

from __future__ import annotations

from mmengine.optim import CosineAnnealingLR, LinearLR

INF = float("inf")


MIN_WARMUP = 2  # LinearLR's first iteration is at start_factor; the next at the full rate


def iterations(epochs: float, epoch_length: int) -> int:
    """A schedule boundary in epochs as iterations: int() as mmengine rounds, but a boundary
    after the start is at least MIN_WARMUP iterations in."""
    return 0 if epochs <= 0 else max(MIN_WARMUP, int(epochs * epoch_length))


class _SmallEpochs:
    """build_iter_from_epoch with `iterations`' rounding."""

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=0, end=INF, by_epoch=True, epoch_length=None,
                              **kwargs):
        if not by_epoch or not epoch_length or epoch_length <= 0:
            raise ValueError(f"{cls.__name__}: only an epoch-based schedule converts to "
                             f"iterations, with epoch_length > 0 (got {epoch_length})")
        begin = iterations(begin, epoch_length)
        if end != INF:
            end = max(iterations(end, epoch_length), begin + 1)
        if kwargs.get("T_max") is not None:
            kwargs["T_max"] = kwargs["T_max"] * epoch_length
        return cls(*args, begin=begin, end=end, by_epoch=False, **kwargs)


class WarmupLR(_SmallEpochs, LinearLR):
    """mmengine's LinearLR that ends its ramp at the full rate however short the epoch."""


class CosineLR(_SmallEpochs, CosineAnnealingLR):
    """mmengine's CosineAnnealingLR that begins where WarmupLR ends however short the epoch."""
