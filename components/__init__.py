"""The pack's own XTuner components, types a config builds (configs are read in lazy-import
mode, so a config names them as `type`s rather than calling code): the model wrapper with the
memory knobs (finetune.PatchedFinetune), paged 8-bit AdamW, the memory watch hook, the dashboards
and the preference tokenizer. What they change in XTuner itself lives in patches/."""
