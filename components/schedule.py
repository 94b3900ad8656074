"""The recipe's learning-rate schedule, for a dataset of any size: linear warm-up over
`warmup_ratio` of the run, then cosine decay to 0.

The schedule is written in epochs and converted to iterations once the data is loaded
(`convert_to_iter_based`). mmengine converts with int(), so a warm-up shorter than one iteration
becomes 0 iterations, and mmengine stops before training with "end should be larger than begin,
but got begin=0, end=0": 40 GSM8K rows (23 packed sequences of 256 tokens) at the default
`warmup_ratio=0.03` end the warm-up at int(0.69). Here a nonzero fraction of the run lasts at
least one iteration, and the decay begins where the warm-up ends (the same rounding), however
short the epoch.
"""

from __future__ import annotations

from mmengine.optim import CosineAnnealingLR, LinearLR

INF = float("inf")


def iterations(epochs: float, epoch_length: int) -> int:
    """`epochs` as iterations: int() as mmengine rounds, but a nonzero span is at least one."""
    return 0 if epochs <= 0 else max(1, int(epochs * epoch_length))


class _AtLeastOneIteration:
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


class WarmupLR(_AtLeastOneIteration, LinearLR):
    """mmengine's LinearLR whose epoch span is at least one iteration."""


class CosineLR(_AtLeastOneIteration, CosineAnnealingLR):
    """mmengine's CosineAnnealingLR whose epoch span is at least one iteration."""
