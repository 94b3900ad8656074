"""`xtuner convert pth_to_hf` writes an adapter that does not say what it was made from.

A training run of the pack writes work_dirs/<name>/provenance.json beside its checkpoints
(components/provenance.py: the base model's commit, the data, the remote code, the stack).
XTuner's tool copies only the config file into the adapter directory, so an adapter found months
later cannot be matched to its base weights or its data, and `python -m aftertrain export` has
nothing to write into the GGUF. The patch notes the checkpoint XTuner's tool loads
(`guess_load_checkpoint`) and, when the model saves the adapter (`to_hf`), writes the
provenance.json found beside that checkpoint into the adapter directory, with the checkpoint's
name and sha256 added. A checkpoint without one is converted as before, with a warning.
"""

from __future__ import annotations

TARGET = ("xtuner.model.utils", "xtuner.model.sft")

_loaded: list[str] = []  # the checkpoints guess_load_checkpoint read in this process


def carry(checkpoint: str, save_dir: str) -> str | None:
    """Write the provenance beside `checkpoint` into `save_dir`; its path, or None."""
    from pathlib import Path

    from doctor.atomic import write_json
    from doctor.provenance import FILE, read, sha256_file

    ckpt = Path(checkpoint)
    prov = read(ckpt.parent / FILE)
    if prov is None:
        return None
    prov["checkpoint"] = {"file": ckpt.name,
                          "sha256": sha256_file(ckpt) if ckpt.is_file() else None}
    return str(write_json(Path(save_dir) / FILE, prov))


def apply(module) -> None:
    if module.__name__ == "xtuner.model.utils":
        original_load = module.guess_load_checkpoint

        def guess_load_checkpoint(pth_model):
            _loaded.append(str(pth_model))
            return original_load(pth_model)

        module.guess_load_checkpoint = guess_load_checkpoint
        return

    cls = module.SupervisedFinetune  # DPO and ORPO inherit its to_hf
    original_to_hf = cls.to_hf

    def to_hf(self, cfg, save_dir, *args, **kwargs):
        result = original_to_hf(self, cfg, save_dir, *args, **kwargs)
        if _loaded:
            from mmengine.logging import print_log

            written = carry(_loaded[-1], save_dir)
            print_log(f"Provenance of {_loaded[-1]} -> {written}" if written else
                      f"no provenance.json beside {_loaded[-1]}: the adapter does not say what "
                      "it was made from", "current", level=20 if written else 30)
        return result

    cls.to_hf = to_hf
