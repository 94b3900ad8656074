# A toy model in the shape of 2023-era remote code (trust_remote_code), written for the tests.
from transformers import PretrainedConfig


class ToyConfig(PretrainedConfig):
    model_type = "toy_remote"

    def __init__(self, vocab_size=64, hidden_size=16, num_hidden_layers=1, cache_style="tuples",
                 **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.cache_style = cache_style  # "tuples" (InternLM-7B) or "early_cache_api" (InternLM2)
        super().__init__(**kwargs)
