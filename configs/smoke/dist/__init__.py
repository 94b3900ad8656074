"""`make smoke-dist` (run.py): the smoke model trained by 2 processes against 1."""

from .run import RankLossHook

__all__ = ["RankLossHook"]
