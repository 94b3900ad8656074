"""The pack's end-to-end runs on this machine, each through the real commands:
`make smoke` (smoke.py: a tiny random model, made on the spot by tiny.py) and `make smoke-dist`
(smoke_dist.py: the same model by 2 CPU processes against 1)."""
