"""Dataset tooling: converters from each dataset's public schema to XTuner's conversation format,
`prepare`, `dedup` and `decontaminate` (python -m curation)."""
