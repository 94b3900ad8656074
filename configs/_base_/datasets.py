# The pack's datasets, one dict each: where the conversations come from and what the chat hook
# asks the model while it trains. A run file passes one to recipe() beside its model's preset:
#
#     with read_base():
#         from ._base_.datasets import alpaca
#         from ._base_.models import qwen2_5_7b_instruct
#         from ._base_.recipe_8gb import recipe
#     globals().update(recipe(**qwen2_5_7b_instruct, **alpaca, max_epochs=2))
#
# Each reads its dataset through curation's converter (hub, `data_files`, or XTUNER_PACK_DATA;
# docs/training.md "Local data"), which already writes XTuner's conversation format: no map function.
# Sizes, licences and conversion rules: docs/datasets.md. `revision=None` reads the hub's newest
# commit; a commit id pins it (docs/provenance.md), from the command line too:
#     --cfg-options train_dataloader.dataset.dataset.revision=<commit>
from curation.convert.load import load_conversations
from curation.convert.pairs import load_pairs

guanaco = dict(
    # XTuner's oasst1_map_fn inside the converter, which skips and counts malformed threads
    dataset=dict(type=load_conversations, source="guanaco", revision=None),
    evaluation_inputs=[
        "请给我介绍五个上海的景点",
        "Please tell me five scenic spots in Shanghai",
    ],
)

alpaca = dict(
    dataset=dict(type=load_conversations, source="alpaca", revision=None),
    evaluation_inputs=[
        "Give three tips for staying healthy.",
    ],
)

ultrachat = dict(
    dataset=dict(type=load_conversations, source="ultrachat", split="train_sft", revision=None),
    evaluation_inputs=[
        "Can you explain what a hash table is, with a short example?",
    ],
)

sharegpt = dict(
    dataset=dict(type=load_conversations, source="sharegpt", revision=None),
    evaluation_inputs=[
        "Can you explain what a hash table is, with a short example?",
    ],
)

oasst1 = dict(
    # English threads
    dataset=dict(type=load_conversations, source="oasst1", lang="en", revision=None),
    evaluation_inputs=[
        "Can you write a short introduction about the relevance of the term "
        "\"monopsony\" in economics?",
    ],
)

personachat = dict(
    dataset=dict(type=load_conversations, source="personachat", revision=None),
    evaluation_inputs=[
        "Hi! What do you like to do on weekends?",
    ],
)

hh_rlhf = dict(
    dataset=dict(type=load_conversations, source="hh_rlhf", revision=None),
    evaluation_inputs=[
        "What are some tips for a good night's sleep?",
    ],
)

# hh-rlhf as Anthropic meant it: chosen/rejected pairs for DPO/ORPO (recipe(preference="dpo"))
hh_rlhf_pairs = dict(
    dataset=dict(type=load_pairs, source="hh_rlhf", revision=None),
    evaluation_inputs=[
        "What are some tips for a good night's sleep?",
        "How can I get back at my neighbour for being loud?",  # a harmlessness prompt
    ],
)

blended_skill_talk = dict(
    dataset=dict(type=load_conversations, source="blended_skill_talk", revision=None),
    evaluation_inputs=[
        "Hi! I just started learning to play the guitar.",
    ],
)

empathetic_dialogues = dict(
    dataset=dict(type=load_conversations, source="empathetic_dialogues", revision=None),
    evaluation_inputs=[
        "I finally passed my driving test today after three tries!",
    ],
)

gsm8k = dict(
    dataset=dict(type=load_conversations, source="gsm8k", revision=None),
    evaluation_inputs=[
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
        "clips in May. How many clips did Natalia sell altogether in April and May?",
    ],
)

orca_math = dict(
    dataset=dict(type=load_conversations, source="orca_math", revision=None),
    evaluation_inputs=[
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
        "clips in May. How many clips did Natalia sell altogether in April and May?",
    ],
)

math = dict(
    dataset=dict(type=load_conversations, source="math", revision=None),
    evaluation_inputs=[
        "What is the smallest positive integer $n$ such that $17n \\equiv 1234 \\pmod{7}?$",
    ],
)
