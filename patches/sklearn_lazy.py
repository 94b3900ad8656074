"""Every process that loads a model imports scikit-learn, 2–4 s on a 2-core CPU, and never uses it.

transformers 4.57 (generation/candidate_generator.py) runs `from sklearn.metrics import
roc_curve` while it is imported, whenever scikit-learn is installed (lm-eval, the pack's
evaluator, installs it), for one feature: assisted generation's dynamic confidence threshold.
`xtuner train` and each `xtuner convert` import it in every process (scikit-learn brings scipy
and pandas with it). The patch lets that module import without it and gives it a `roc_curve`
that imports scikit-learn's on its first call: the same function and the same availability
flag, imported when used instead of at start-up.
"""

from __future__ import annotations

TARGET = "transformers.generation.candidate_generator"
BEFORE = True  # the import is in the module's body


def _lazy_roc_curve(*args, **kwargs):
    from sklearn.metrics import roc_curve

    return roc_curve(*args, **kwargs)


def apply(_module=None) -> None:
    from transformers.utils import import_utils

    global _hidden
    _hidden = bool(getattr(import_utils, "_sklearn_available", False))
    if _hidden:
        import_utils._sklearn_available = False  # the body skips its import


_hidden = False


def after(module) -> None:
    """Once the body has run: the flag as transformers found it, and the deferred function."""
    if not _hidden:
        return
    from transformers.utils import import_utils

    import_utils._sklearn_available = True
    if not hasattr(module, "roc_curve"):
        module.roc_curve = _lazy_roc_curve
