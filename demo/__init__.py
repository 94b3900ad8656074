"""The pack's end-to-end runs on this machine, each through the real commands: `make demo`
(real.py: SmolLM2-135M-Instruct, installed by `make env` through smollm2.py, through the whole
loop), `make smoke` (smoke.py: the tiny random model of components/tiny.py) and `make smoke-dist`
(smoke_dist.py: the tiny model by 2 CPU processes against 1)."""
