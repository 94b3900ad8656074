# A toy causal LM written like the remote code of InternLM-7B / InternLM2 (transformers 4.3x era):
# one attention layer whose key/value cache is either a tuple per layer, read as
# `past_key_values[0][0].shape[2]`, or the early Cache API (`seen_tokens`, `get_max_length()`).
# It does not inherit GenerationMixin and defines its own prepare_inputs_for_generation.
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_toy import ToyConfig


class ToyForCausalLM(PreTrainedModel):
    config_class = ToyConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        if config.cache_style == "early_cache_api":
            type(self)._supports_cache_class = True
        self.post_init()

    def _past_length(self, past_key_values):
        if past_key_values is None:
            return 0
        if self.config.cache_style == "tuples":
            return past_key_values[0][0].shape[2]
        return past_key_values.get_seq_length()

    def forward(self, input_ids, past_key_values=None, attention_mask=None, use_cache=None,
                return_dict=True, **kwargs):
        x = self.embed(input_ids)
        q, k, v = self.qkv(x).unsqueeze(1).chunk(3, dim=-1)  # (batch, 1 head, seq, dim)
        past = self._past_length(past_key_values)
        if self.config.cache_style == "tuples":
            if past_key_values is not None:
                k = torch.cat([past_key_values[0][0], k], dim=2)
                v = torch.cat([past_key_values[0][1], v], dim=2)
            new_cache = ((k, v),) if use_cache else None
        else:
            if past_key_values is not None:
                k, v = past_key_values.update(k, v, 0)
            new_cache = past_key_values
        n_q, n_k = q.shape[2], k.shape[2]
        causal = torch.ones(n_q, n_k, dtype=torch.bool).tril(diagonal=past)
        scores = (q @ k.transpose(-1, -2)).masked_fill(~causal, float("-inf"))
        h = (scores.softmax(-1) @ v).squeeze(1)
        return CausalLMOutputWithPast(logits=self.head(h), past_key_values=new_cache)

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, attention_mask=None,
                                      **kwargs):
        if past_key_values is not None:
            if self.config.cache_style == "tuples":
                past_length = past_key_values[0][0].shape[2]
            else:
                past_length = past_key_values.seen_tokens
                max_length = past_key_values.get_max_length()
                assert max_length is None or max_length >= past_length
            input_ids = input_ids[:, past_length:]
        return {"input_ids": input_ids, "past_key_values": past_key_values,
                "use_cache": kwargs.get("use_cache"), "attention_mask": attention_mask}
