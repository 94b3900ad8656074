"""The environment doctor: `python -m doctor check` (what breaks a run, and the fix) and
`python -m doctor fit CONFIG` (peak GPU memory of a config, before anything is downloaded).

The doctor never imports torch, deepspeed, bitsandbytes or flash_attn in its own process: it reads
files and metadata, and runs risky probes in subprocesses with timeouts.
"""
