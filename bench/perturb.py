"""Perturbation variants of GSM8K-test problems, made here (deterministic, seed 0), for
bench/curation_quality.py: the same problem with its numbers changed, its names changed, both,
and paraphrased by templates. Variant i is made from test item i.

- numbers: every number (digits, and number words one..twenty) becomes another of about the
  same size, the same number everywhere it occurs (GSM-Symbolic's "numerical substitution").
- names: every proper noun (a capitalized word whose lowercase form never occurs in the corpus
  given: Janet, Mr. Smith's Smith, Marissa) becomes another proper noun of the corpus.
- template: phrase rewrites (how many -> what is the number of, buys -> purchases, each ->
  every, ...) and the question sentence moved to the front; numbers and names kept.
- harder: numbers and names changed, and two clauses added (GSM-Symbolic P2's shape: new names
  and numbers, two more steps): a sentence of the problem told again with other numbers at
  the start, and one more quantity of one of its nouns before the question.
"""

from __future__ import annotations

import random
import re

NUMBER_WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen "
                "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()
_NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w.]*\d)|\b(?:"
                     + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)
_CAPITAL = re.compile(r"\b[A-Z][a-z]{2,}\b")
_WORD = re.compile(r"[A-Za-z]+")

REWRITES = [  # (pattern, replacement), applied in order, case as written
    (r"\bHow many\b", "What is the number of"),
    (r"\bhow many\b", "what number of"),
    (r"\bHow much\b", "What is the amount"),
    (r"\bhow much\b", "what amount"),
    (r"\bbuys\b", "purchases"), (r"\bbought\b", "purchased"), (r"\bbuy\b", "purchase"),
    (r"\beach\b", "every"), (r"\bEach\b", "Every"),
    (r"\bhas\b", "owns"), (r"\bhave\b", "own"), (r"\bhad\b", "owned"),
    (r"\bgets\b", "receives"), (r"\bgot\b", "received"),
    (r"\bgives\b", "hands"), (r"\bgave\b", "handed"),
    (r"\btotal\b", "overall"), (r"\bIf\b", "Suppose"),
    (r"\bwants to\b", "would like to"), (r"\bneeds to\b", "has to"),
    (r"\bper\b", "for each"), (r"\bday\b", "daily period"),
    (r"\bthen\b", "after that"), (r"\bThen\b", "After that"),
]


def proper_nouns(texts) -> set[str]:
    """Capitalized words whose lowercase form never occurs lowercase in `texts`."""
    lower, capital = set(), set()
    for text in texts:
        lower.update(w for w in _WORD.findall(text) if w.islower())
        capital.update(_CAPITAL.findall(text))
    return {w for w in capital if w.lower() not in lower}


def new_number(token: str, rng: random.Random) -> str:
    if token.lower() in NUMBER_WORDS:
        value = NUMBER_WORDS.index(token.lower()) + 1
        choices = [v for v in range(1, 21) if v != value]
        word = NUMBER_WORDS[rng.choice(choices) - 1]
        return word.capitalize() if token[0].isupper() else word
    if "." in token:
        whole, frac = token.split(".")
        return f"{new_number(whole, rng) if whole != '0' else '0'}.{new_number(frac, rng)}"
    value = int(token.replace(",", ""))
    span = max(2, value // 2)
    out = value
    while out == value or out <= 0:
        out = value + rng.randint(-span, span)
    return str(out)


def change_numbers(text: str, rng: random.Random) -> str:
    seen: dict[str, str] = {}

    def sub(m):
        key = m.group(0).lower()
        if key not in seen:
            seen[key] = new_number(m.group(0), rng)
        return seen[key]

    return _NUMBER.sub(sub, text)


def change_names(text: str, rng: random.Random, nouns: set[str], pool: list[str]) -> str:
    names = sorted({w for w in _CAPITAL.findall(text) if w in nouns})
    mapping = {n: rng.choice([p for p in pool if p != n]) for n in names}
    if not mapping:
        return text
    return re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b",
                  lambda m: mapping[m.group(0)], text)


def template_paraphrase(text: str) -> str:
    for pattern, replacement in REWRITES:
        text = re.sub(pattern, replacement, text)
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    if len(sentences) > 1 and sentences[-1].endswith("?"):  # the question first
        sentences = [sentences[-1], "Given:"] + sentences[:-1]
    return " ".join(sentences)


def add_clauses(text: str, rng: random.Random) -> str:
    """Two more clauses: a sentence of the problem again, with other numbers, in front ("Last
    week, ..."), and "Then N more <noun> were added." before the question."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    body = [s for s in sentences if not s.endswith("?")] or sentences
    first = change_numbers(rng.choice(body), rng)
    nouns = re.findall(r"\b\d+ ([a-z]{3,}s)\b", text)  # what the problem counts: "16 eggs"
    noun = rng.choice(nouns) if nouns else "items"
    extra = f"Then {rng.randint(2, 9)} more {noun} were added."
    head = f"Last week, {first[0].lower()}{first[1:]}"
    return " ".join([head, *sentences[:-1], extra, sentences[-1]])


def variants(tests: list[str], corpus: list[str], seed: int = 0) -> dict[str, list[str]]:
    """{kind: [variant of tests[i] for each i]}."""
    nouns = proper_nouns(corpus)
    pool = sorted(nouns)
    rng = random.Random(seed)
    numbers = [change_numbers(t, rng) for t in tests]
    names = [change_names(t, rng, nouns, pool) for t in tests]
    both = [change_names(change_numbers(t, rng), rng, nouns, pool) for t in tests]
    template = [template_paraphrase(t) for t in tests]
    harder = [add_clauses(b, random.Random(f"{seed}:{i}")) for i, b in enumerate(both)]
    return {"numbers": numbers, "names": names, "numbers+names": both, "template": template,
            "harder": harder}


# ---- public perturbation sets of GSM8K-test (not shipped: the user fetches them) ------------

PUBLIC_WHERE = (
    "public perturbation sets of GSM8K-test, each optional, in one folder: "
    "rephrase_gsm8k.jsonl (lm-sys/llm-decontaminator, data/rephrase/: GPT-4 rephrasings, "
    "line i = test item i; Apache-2.0), gsmplus_testmini.jsonl or gsmplus_test.jsonl "
    "(qtli/GSM-Plus, dataset/, or the hub's qintongli/GSM-Plus), GSM_symbolic.jsonl, "
    "GSM_p1.jsonl, GSM_p2.jsonl (apple/ml-gsm-symbolic, generated_data/, or the hub's "
    "apple/GSM-Symbolic; CC BY-NC-ND 4.0)")


def public_sets(folder, gsm_test: list[str]) -> dict[str, list[tuple[str, int]]]:
    """{set name: [(variant text, index of its GSM8K-test item)]} for the public sets found in
    `folder`. Rows whose source item is not in `gsm_test` (another version of the set) are left
    out; a GSM-Plus set is split by perturbation type."""
    import json
    from pathlib import Path

    folder = Path(folder)
    index = {q.strip(): i for i, q in enumerate(gsm_test)}
    out: dict[str, list[tuple[str, int]]] = {}

    def rows(name):
        with open(folder / name, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    if (folder / "rephrase_gsm8k.jsonl").is_file():
        # "Question: ...\nAnswer: \n#### N", line-aligned with GSM8K-test
        kept = []
        for i, row in enumerate(rows("rephrase_gsm8k.jsonl")[: len(gsm_test)]):
            question = re.sub(r"^Question:\s*", "", row["text"].split("\nAnswer:")[0]).strip()
            kept.append((question, i))
        out["rephrase (lm-sys, GPT-4)"] = kept
    for name in ("gsmplus_test.jsonl", "gsmplus_testmini.jsonl"):
        if (folder / name).is_file():
            for row in rows(name):
                item = index.get(row["seed_question"].strip())
                if item is not None:
                    out.setdefault(f"GSM-Plus {row['perturbation_type']}", []).append(
                        (row["question"], item))
            break
    for name, label in (("GSM_symbolic.jsonl", "GSM-Symbolic"), ("GSM_p1.jsonl", "GSM-Symbolic P1"),
                        ("GSM_p2.jsonl", "GSM-Symbolic P2")):
        if (folder / name).is_file():
            out[label] = [(row["question"], index[row["original_question"].strip()])
                          for row in rows(name) if row["original_question"].strip() in index]
    return out
