"""A hook that makes a training step raise torch's CUDA OOM, for tests on the CPU.

It wraps the model's forward for the step `at_iter`, so the error comes from inside the training
step as a real one would, with the message torch prints on an 8 GB card.
"""

import torch
from mmengine.hooks import Hook

MESSAGE = ("CUDA out of memory. Tried to allocate 1.16 GiB. GPU 0 has a total capacity of 7.63 "
           "GiB of which 812.00 MiB is free. Including non-PyTorch memory, this process has "
           "6.83 GiB memory in use. Of the allocated memory 6.02 GiB is allocated by PyTorch, "
           "and 601.31 MiB is reserved by PyTorch but unallocated.")


class RaiseOOM(Hook):
    def __init__(self, at_iter: int = 3):
        self.at_iter = at_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter != self.at_iter:
            return
        model = runner.model
        forward = model.forward

        def oom(*args, **kwargs):
            model.forward = forward
            raise torch.cuda.OutOfMemoryError(MESSAGE)

        model.forward = oom
