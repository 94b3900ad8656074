"""The math mixture recipe (`make mathmix`, configs/internlm2_math_plus_7b_qlora_mathmix_e1.py):
its decontaminate half, `make mathmix-clean`, on small local files; the whole recipe with
`prepare` reading local copies of the datasets ($XTUNER_PACK_DATA) instead of the hub; and the
config's own dataset pipeline on the clean file it writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.decon_items import ITEMS
from bench.decon_set import public_test_row, read_report
from tests.helpers import REPO, run

CONFIG = REPO / "configs" / "internlm2_math_plus_7b_qlora_mathmix_e1.py"
GSM = [it for it in ITEMS if it["kind"] == "gsm8k"]
MATH = [it for it in ITEMS if it["kind"] == "math"]


def gsm8k_row(question: str) -> dict:  # openai/gsm8k
    return {"question": question, "answer": "Add them up: 20 + 22 = <<20+22=42>>42.\n#### 42"}


def orca_row(question: str) -> dict:  # microsoft/orca-math-word-problems-200k
    return {"question": question, "answer": "To find the total we add 20 and 22, giving 42."}


def math_row(problem: str) -> dict:  # EleutherAI/hendrycks_math
    return {"problem": problem, "level": "Level 3", "type": "Algebra",
            "solution": "We find $x = \\boxed{42}$."}


def mixture() -> dict[str, list[tuple[dict, bool]]]:
    """Train files of the recipe: (row, is it a leak of a test item?)."""
    return {
        "gsm8k_train": [(gsm8k_row(it["distinct"][0]), False) for it in GSM[:8]]
        + [(gsm8k_row(GSM[0]["test"]), True)],
        "orca_math_train": [(orca_row(GSM[1]["edits"][0]), True)]
        + [(orca_row(it["distinct"][0]), False) for it in GSM[8:]]
        + [(orca_row(GSM[2]["edits"][1]), True)],
        "math_train": [(math_row(MATH[0]["edits"][0]), True)]
        + [(math_row(it["distinct"][0]), False) for it in MATH],
    }


def as_conversation(row: dict) -> dict:
    """What `python -m curation prepare` writes for a row (XTuner's conversation format)."""
    if "problem" in row:
        return {"conversation": [{"input": row["problem"], "output": row["solution"]}]}
    return {"conversation": [{"input": row["question"], "output": row["answer"]}]}


def write_recipe_inputs(directory: Path, conversation: bool) -> list[bytes]:
    """The five files the recipe's prepare step writes; returns the train lines not leaking."""
    clean = []
    for name, rows in mixture().items():
        lines = []
        for row, leak in rows:
            line = json.dumps(as_conversation(row) if conversation else row).encode()
            lines.append(line)
            if not leak:
                clean.append(line)
        (directory / f"{name}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    for name, items in (("gsm8k_test", GSM), ("math_test", MATH)):
        rows = [public_test_row(it) for it in items]
        if conversation:
            rows = [as_conversation(r) for r in rows]
        (directory / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return clean


def make_mathmix_clean(directory: Path):
    return run(["make", "mathmix-clean", f"MATHMIX_DIR={directory}", f"PY={sys.executable}"])


@pytest.mark.parametrize("conversation", [False, True], ids=["public schemas", "prepared"])
def test_make_mathmix_clean_removes_the_leaks_and_keeps_the_rest(tmp_path, conversation):
    expected = write_recipe_inputs(tmp_path, conversation)
    result = make_mathmix_clean(tmp_path)
    assert result.returncode == 0, result.stdout
    assert (tmp_path / "mathmix_clean.jsonl").read_bytes() == b"\n".join(expected) + b"\n"
    records, summary = read_report(tmp_path / "mathmix_report.jsonl")
    leaks = {(name, n) for name, rows in mixture().items()
             for n, (_, leak) in enumerate(rows, 1) if leak}
    assert {(Path(r["train_file"]).stem, r["train_line"]) for r in records} == leaks
    assert summary["read"] == summary["kept"] + summary["removed"] == len(expected) + len(leaks)
    assert set(map(lambda p: Path(p).name, summary["per_test_file"])) == {
        "gsm8k_test.jsonl", "math_test.jsonl"}


def test_make_mathmix_end_to_end_from_local_copies(tmp_path):
    """prepare (local files in the public schemas, as XTUNER_PACK_DATA reads them) then
    decontaminate: the clean file holds the converted non-leaking problems, in order."""
    root, out = tmp_path / "hub", tmp_path / "data"
    splits = {("gsm8k", "train"): [r for r, _ in mixture()["gsm8k_train"]],
              ("orca_math", "train"): [r for r, _ in mixture()["orca_math_train"]],
              ("math", "train"): [r for r, _ in mixture()["math_train"]],
              ("gsm8k", "test"): [gsm8k_row(it["test"]) for it in GSM],
              ("math", "test"): [math_row(it["test"]) for it in MATH]}
    for (dataset, split), rows in splits.items():
        (root / dataset).mkdir(parents=True, exist_ok=True)
        (root / dataset / f"{split}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows))
    out.mkdir()
    result = run(["make", "mathmix", f"MATHMIX_DIR={out}", f"PY={sys.executable}"],
                 XTUNER_PACK_DATA=str(root))
    assert result.returncode == 0, result.stdout
    kept = [json.loads(line)["conversation"][0]["input"]
            for line in (out / "mathmix_clean.jsonl").read_text().splitlines()]
    expected = [row.get("question", row.get("problem")) for rows in mixture().values()
                for row, leak in rows if not leak]
    assert kept == expected
    records, summary = read_report(out / "mathmix_report.jsonl")
    assert summary["removed"] == sum(leak for rows in mixture().values() for _, leak in rows)


def test_the_config_builds_its_dataset_from_the_clean_file(tmp_path):
    from mmengine.config import Config
    from xtuner.registry import BUILDER

    from components.tiny import build_tokenizer

    write_recipe_inputs(tmp_path, conversation=True)
    assert make_mathmix_clean(tmp_path).returncode == 0
    clean = tmp_path / "mathmix_clean.jsonl"
    rows = [json.loads(line) for line in clean.read_text().splitlines()]

    cfg = Config.fromfile(CONFIG)
    dataset_cfg = cfg.train_dataloader.dataset
    assert cfg.pretrained_model_name_or_path == "internlm/internlm2-math-plus-7b"
    assert dataset_cfg.dataset.data_files["train"].endswith("data/mathmix_clean.jsonl")
    assert dataset_cfg.dataset_map_fn is None
    assert dataset_cfg.template_map_fn.template.INSTRUCTION.startswith("<|im_start|>user")
    texts = [t for r in rows for turn in r["conversation"] for t in turn.values()]
    build_tokenizer(texts).save_pretrained(tmp_path / "tok")
    cfg.merge_from_dict({
        "train_dataloader.dataset.dataset.data_files": {"train": str(clean)},
        "train_dataloader.dataset.tokenizer": dict(
            type="transformers.AutoTokenizer.from_pretrained",
            pretrained_model_name_or_path=str(tmp_path / "tok")),
        "train_dataloader.dataset.pack_to_max_length": False,
        "train_dataloader.dataset.map_num_proc": 1,
    })
    dataset = BUILDER.build(cfg.train_dataloader.dataset)
    assert len(dataset) == len(rows) > 0
    assert all(any(label != -100 for label in sample["labels"]) for sample in dataset)
