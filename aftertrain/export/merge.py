"""The adapter merged into its base model as the training config loads it.

`xtuner convert merge BASE ADAPTER OUT` loads BASE with `trust_remote_code=True` and the hub's
newest commit, whatever the adapter was trained on: a Qwen or Llama base would run any
modeling_*.py its repository has added since, and a base that moved on would take an adapter
trained on other weights. The export merges with the config's own `model.llm` instead (its
path, `revision` and `trust_remote_code`), 16-bit on the CPU as XTuner's tool does, and keeps
the adapter's provenance.json beside the merged weights.
"""

from __future__ import annotations

import copy
import gc
import shutil
from pathlib import Path


def merge_as_trained(spec, adapter: Path, out: Path) -> Path:
    import torch
    from peft import PeftModel
    from xtuner.model.utils import traverse_dict
    from xtuner.registry import BUILDER

    from doctor.provenance import FILE

    llm = copy.deepcopy(spec.cfg.model.llm)
    llm.pop("quantization_config", None)  # merged into 16-bit weights, as XTuner's merge does
    llm.update(torch_dtype=torch.float16, low_cpu_mem_usage=True, device_map="cpu")
    traverse_dict(llm)
    model = BUILDER.build(llm)
    tokenizer = BUILDER.build(copy.deepcopy(spec.cfg.tokenizer))
    merged = PeftModel.from_pretrained(model, str(adapter), is_trainable=False).merge_and_unload()
    if out.exists():
        shutil.rmtree(out)
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if (adapter / FILE).is_file():
        shutil.copyfile(adapter / FILE, out / FILE)
    del model, merged
    gc.collect()  # the converter reads the saved files next, in this process
    return out
