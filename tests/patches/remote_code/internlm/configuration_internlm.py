# A small stand-in for InternLM-7B's remote configuration (trust_remote_code), written for the
# tests: the fields its modeling code reads. As in the hub's, no `rope_theta`: the 2023 code fixes
# the rotary base; the 2024 code reads `rotary={"base": ..., "type": "origin" | "dynamic"}`.
from transformers import PretrainedConfig


class InternLMConfig(PretrainedConfig):
    model_type = "internlm"

    def __init__(self, vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, max_position_embeddings=2048, rms_norm_eps=1e-6,
                 bias=True, rotary=None, use_cache=False, pad_token_id=0, bos_token_id=1,
                 eos_token_id=2,
                 tie_word_embeddings=False, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.max_position_embeddings = max_position_embeddings
        self.rms_norm_eps = rms_norm_eps
        self.bias = bias
        self.rotary = rotary
        self.use_cache = use_cache
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id,
                         eos_token_id=eos_token_id, tie_word_embeddings=tie_word_embeddings,
                         **kwargs)
