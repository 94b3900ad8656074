"""ShareGPT `ShareGPT_V3_unfiltered_cleaned_split.json`: [{id, conversations: [{from, value}]}].

Scraped ChatGPT conversations, split into chunks by FastChat: a chunk can start with a gpt turn,
turns can be empty (HTML stripped away), and alternation can be broken. FastChat drops such
records; here empty turns are dropped, same-role turns merged, a leading gpt turn and a trailing
human turn dropped (each counted), and only a record with no exchange left is skipped.
"""

from __future__ import annotations

from ._base import ASSISTANT, SYSTEM, USER, Source
from .ultrachat import RoleListConverter

ROLES = {"human": USER, "user": USER, "gpt": ASSISTANT, "chatgpt": ASSISTANT, "system": SYSTEM}


class ShareGPTConverter(RoleListConverter):
    FIELD, ROLE_KEY, TEXT_KEY, ROLES = "conversations", "from", "value", ROLES


SOURCE = Source(
    name="sharegpt",
    converter=ShareGPTConverter,
    hub_id="anon8231489123/ShareGPT_Vicuna_unfiltered",
    hub_file="ShareGPT_V3_unfiltered_cleaned_split.json",
    licence="Apache-2.0 on the HF card, but the text is ChatGPT output shared by sharegpt.com "
    "users: OpenAI's terms apply and the uploader's rights to it are unverified",
    rows="94,145 records in one JSON file (no splits)",
    rules="conversations (from human/gpt/system, value) -> turns; empty turns dropped, "
    "same-role turns merged, leading gpt / trailing human turns dropped",
    notes="anonymous re-upload of a scrape of sharegpt.com (Vicuna's training data); "
    "provenance and consent unverifiable",
    local_globs={"train": ("ShareGPT_V3_unfiltered_cleaned_split.json",)},
)
