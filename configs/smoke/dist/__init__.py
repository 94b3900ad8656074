"""`make smoke-dist` (run.py): the smoke model trained by 2 processes against 1."""
