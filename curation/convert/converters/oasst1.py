"""OpenAssistant/oasst1: message rows forming trees -> one thread per tree.

Rows are messages (`message_id`, `parent_id`, `role` prompter/assistant, `rank`, `lang`, `deleted`,
`review_result`, ...). Deleted messages and messages that failed review are skipped, as is
anything below them. From each root prompt the thread follows, at every step, the best-ranked
reply (rank 0, the lowest; unranked replies after ranked ones, then the oldest) of the other role,
which is how the guanaco subset ("the highest-rated paths") was made. `lang` keeps only the trees
whose root message is in the given language(s).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ._base import ASSISTANT, USER, Converter, Skip, Source, pair_turns, text

ROLES = {"prompter": USER, "assistant": ASSISTANT}


@dataclass
class Message:
    id: str
    parent: str | None
    role: str
    text: str
    rank: int | None
    lang: str | None
    created: str
    where: str


def _best(replies: list[Message]) -> Message:
    return min(replies, key=lambda m: (m.rank is None, m.rank or 0, m.created))


class Oasst1Converter(Converter):
    OPTIONS = {"lang": None}  # None: every language; "en" or ["en", "de"]: only those trees

    def __init__(self, **options):
        super().__init__(**options)
        if isinstance(self.lang, str):
            self.lang = [self.lang]
        self.messages: dict[str, Message] = {}

    def feed(self, record, stats):
        row = record.data
        message_id = text(row, "message_id")
        role = ROLES.get(row["role"]) if isinstance(row.get("role"), str) else None
        if role is None:
            raise Skip("wrong_role", repr(row.get("role"))[:40])
        if row.get("deleted") is True:
            raise Skip("deleted")
        if row.get("review_result") is False:
            raise Skip("failed_review")
        rank = row.get("rank")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int | float)):
            raise Skip("wrong_type:rank", type(rank).__name__)
        parent = row.get("parent_id") or None
        if parent is not None and not isinstance(parent, str):
            raise Skip("wrong_type:parent_id", type(parent).__name__)
        self.messages[message_id] = Message(
            id=message_id,
            parent=parent,
            role=role,
            text=text(row, "text"),
            rank=rank,
            lang=row.get("lang"),
            created=str(row.get("created_date") or ""),
            where=record.where,
        )
        return ()

    def finish(self, stats):
        replies: dict[str, list[Message]] = defaultdict(list)
        roots = []
        for message in self.messages.values():
            if message.parent is None:
                roots.append(message)
            elif message.parent in self.messages:
                replies[message.parent].append(message)
            else:
                stats.skip("orphan", message.where, "parent missing, deleted or skipped")
        for root in roots:
            try:
                if root.role != USER:
                    raise Skip("root_not_prompter")
                if self.lang and root.lang not in self.lang:
                    raise Skip("lang_filtered", str(root.lang))
                yield self._thread(root, replies, stats)
            except Skip as skip:
                stats.skip(skip.reason, root.where, skip.detail)

    def _thread(self, root: Message, replies, stats) -> list[dict]:
        turns, node = [(root.role, root.text)], root
        while True:
            following = [m for m in replies.get(node.id, ()) if m.role != node.role]
            if not following:
                break
            node = _best(following)
            turns.append((node.role, node.text))
        if len(turns) < 2:
            raise Skip("no_reply", "root prompt without a kept assistant reply")
        return pair_turns(turns, stats.fix)


SOURCE = Source(
    name="oasst1",
    converter=Oasst1Converter,
    hub_id="OpenAssistant/oasst1",
    splits=("train", "validation"),
    licence="Apache-2.0",
    rows="train 84,437; validation 4,401 messages (35 languages)",
    rules="messages -> trees by parent_id; deleted / failed-review messages dropped; from each "
    "root the best-ranked reply (rank 0) at each step; option lang='en' (or a list) keeps "
    "trees whose root is in that language",
    notes="one thread per tree; the other branches are not used",
)
