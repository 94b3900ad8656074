"""`load_conversations` as the configs call it: local files through data_files (also as
--cfg-options sets it) and through XTUNER_PACK_DATA, every file format the public copies come
in, clear errors (file and line) for unreadable files, and a hint when the hub is out of reach."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from curation.convert.load import ENV_VAR, SourceError, load_conversations
from curation.convert.readers import DataFileError
from tests.curation.conv_helpers import (  # noqa: F401 (autouse fixture)
    FIXTURE,
    private_datasets_cache,
    tokenizer,
)

REPO = Path(__file__).resolve().parents[2]


def conversations(dataset):
    return [[{k: v for k, v in t.items() if v is not None} for t in row["conversation"]]
            for row in dataset]


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_returns_a_dataset_with_a_conversation_column(no_env):
    dataset = load_conversations("gsm8k", split="train", data_files=str(FIXTURE["gsm8k"]))
    assert dataset.column_names == ["conversation"]
    assert len(dataset) == 2
    assert dataset[0]["conversation"][0]["output"].endswith("The answer is 72.")
    assert dataset[0]["conversation"][0]["system"] is None  # Arrow fills the absent key


def test_data_files_forms(no_env, tmp_path):
    one = conversations(load_conversations("orca_math", data_files=str(FIXTURE["orca_math"])))
    copy = tmp_path / "b.jsonl"
    shutil.copy(FIXTURE["orca_math"], copy)
    as_list = load_conversations("orca_math", data_files=[FIXTURE["orca_math"], copy])
    assert conversations(as_list) == one + one
    as_dict = load_conversations("orca_math", data_files={"train": str(copy)})
    assert conversations(as_dict) == one
    as_glob = load_conversations("orca_math", data_files=str(tmp_path / "*.jsonl"))
    assert conversations(as_glob) == one
    limited = load_conversations("orca_math", data_files=str(copy), limit=1)
    assert conversations(limited) == one[:1]
    with pytest.raises(SourceError, match="no split 'test'"):
        load_conversations("orca_math", split="test", data_files={"train": str(copy)})


def test_parquet_and_gzip_read_as_the_public_copies_ship(no_env, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in FIXTURE["oasst1"].read_text().splitlines()]
    parquet = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    from_parquet = load_conversations("oasst1", data_files=str(parquet))
    assert conversations(from_parquet) == conversations(
        load_conversations("oasst1", data_files=str(FIXTURE["oasst1"])))

    gz = tmp_path / "train.jsonl.gz"
    gz.write_bytes(gzip.compress(FIXTURE["hh_rlhf"].read_bytes()))
    assert conversations(load_conversations("hh_rlhf", data_files=str(gz))) == conversations(
        load_conversations("hh_rlhf", data_files=str(FIXTURE["hh_rlhf"])))


def test_cfg_options_sets_data_files_on_a_config(no_env, tmp_path):
    """A config in mmengine's lazy-import mode names load_conversations as the dataset type;
    `xtuner train ... --cfg-options train_dataloader.dataset.dataset.data_files=PATH` points it
    at a local file; XTuner's BUILDER builds the whole pipeline from it."""
    from mmengine.config import Config, DictAction
    from xtuner.registry import BUILDER

    tokenizer().save_pretrained(tmp_path / "tok")
    config = tmp_path / "math_cfg.py"
    config.write_text(f"""
from transformers import AutoTokenizer

from curation.convert.load import load_conversations
from xtuner.dataset import process_hf_dataset
from xtuner.dataset.map_fns import template_map_fn_factory
from xtuner.utils import PROMPT_TEMPLATE

tokenizer = dict(type=AutoTokenizer.from_pretrained,
                 pretrained_model_name_or_path={str(tmp_path / "tok")!r})
train_dataloader = dict(
    batch_size=1,
    dataset=dict(
        type=process_hf_dataset,
        dataset=dict(type=load_conversations, source="gsm8k", split="train"),
        tokenizer=tokenizer,
        max_length=512,
        dataset_map_fn=None,
        template_map_fn=dict(type=template_map_fn_factory, template=PROMPT_TEMPLATE.internlm2_chat),
        remove_unused_columns=True,
        pack_to_max_length=False,
        map_num_proc=1,
    ),
)
""")
    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)  # as xtuner train has it
    args = parser.parse_args(
        ["--cfg-options", f"train_dataloader.dataset.dataset.data_files={FIXTURE['gsm8k']}"])
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(args.cfg_options)
    dataset = BUILDER.build(cfg.train_dataloader.dataset)
    assert len(dataset) == 2
    assert sum(label != -100 for label in dataset[0]["labels"]) > 10


def write(path: Path, source: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, path)
    return path


def test_env_var_directory_per_dataset(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    # DIR/<name>/ with the release's own file name (single split: any data file)
    write(tmp_path / "alpaca" / "alpaca_data.json", FIXTURE["alpaca"])
    assert len(load_conversations("alpaca")) == 2
    # DIR/<hub id>/ as `huggingface-cli download --local-dir` leaves a hub mirror: per-config
    # folders (gsm8k's `socratic` is not the pack's `main`), split-named shards
    gsm = tmp_path / "openai" / "gsm8k"
    write(gsm / "main" / "train-00000-of-00001.jsonl", FIXTURE["gsm8k"])
    write(gsm / "socratic" / "train-00000-of-00001.jsonl", FIXTURE["orca_math"])
    (gsm / "main" / "test-00000-of-00001.jsonl").write_text(
        '{"question": "1+1?", "answer": "#### 2"}\n')
    write(gsm / ".cache" / "huggingface" / "train.jsonl", FIXTURE["orca_math"])
    assert len(load_conversations("gsm8k")) == 2
    assert conversations(load_conversations("gsm8k", split="test")) == [
        [{"input": "1+1?", "output": "The answer is 2."}]]
    # the default split of ultrachat is train_sft, not train_gen
    ultra = tmp_path / "HuggingFaceH4" / "ultrachat_200k" / "data"
    write(ultra / "train_sft-00000-of-00003.jsonl", FIXTURE["ultrachat"])
    (ultra / "train_gen-00000-of-00003.jsonl").write_text("not json\n")
    assert len(load_conversations("ultrachat")) == 2
    # the raw PersonaChat release file names; EmpatheticDialogues' tarball names valid.csv
    write(tmp_path / "personachat" / "personachat_truecased_full_train.json",
          FIXTURE["personachat"].with_name("personachat_truecased_full_train.json"))
    assert len(load_conversations("personachat")) == 1
    write(tmp_path / "empathetic_dialogues" / "empatheticdialogues" / "valid.csv",
          FIXTURE["empathetic_dialogues"])
    assert len(load_conversations("empathetic_dialogues", split="validation")) == 2


def test_data_files_win_over_the_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    assert len(load_conversations("gsm8k", data_files=str(FIXTURE["gsm8k"]))) == 2


def test_env_var_errors_say_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    expected = f"{tmp_path / 'hh_rlhf'}.*{tmp_path / 'Anthropic/hh-rlhf'}"
    with pytest.raises(SourceError, match=expected):
        load_conversations("hh_rlhf")
    write(tmp_path / "hh_rlhf" / "notes.jsonl", FIXTURE["hh_rlhf"])
    with pytest.raises(SourceError, match="no 'train' files of hh_rlhf.*notes.jsonl"):
        load_conversations("hh_rlhf")


@pytest.mark.parametrize("name, content, line, message", [
    ("broken.json", '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c",\n'
                    '   "output": }\n]\n', 4, "invalid JSON"),
    ("garbage.jsonl", "instruction,output\nfoo,bar\n", 1, "not JSON lines"),
    ("latin1.jsonl", b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n'
                     b'{"instruction": "caf\xe9", "output": "e"}\n', 3, "not UTF-8"),
    ("trailing.json", '[{"instruction": "a", "output": "b"}] x', 1, "after the end"),
])
def test_unreadable_files_name_the_file_and_line(no_env, tmp_path, name, content, line, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataFileError, match=message) as error:
        load_conversations("alpaca", data_files=str(path))
    assert str(error.value).startswith(f"{path}:{line}: ")


def test_unreadable_files_without_lines(no_env, tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "x.txt").write_text("hello")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataFileError, match=r"x\.parquet: not a readable Parquet file"):
        load_conversations("alpaca", data_files=str(tmp_path / "x.parquet"))
    with pytest.raises(DataFileError, match=r"x\.txt: unsupported file type"):
        load_conversations("alpaca", data_files=str(tmp_path / "x.txt"))
    with pytest.raises(DataFileError, match=r"empty\.csv:1: no CSV header"):
        load_conversations("empathetic_dialogues", data_files=str(tmp_path / "empty.csv"))
    with pytest.raises(DataFileError, match=r"missing\.jsonl: no such file"):
        load_conversations("alpaca", data_files=str(tmp_path / "missing.jsonl"))


def test_a_pretty_printed_single_record_is_one_record(no_env, tmp_path):
    """The original MATH release is one pretty-printed JSON object per problem."""
    problem = json.loads(FIXTURE["math"].read_text().splitlines()[0])
    (tmp_path / "1.json").write_text(json.dumps(problem, indent=4))
    assert len(load_conversations("math", data_files=str(tmp_path / "1.json"))) == 1


def test_nothing_left_is_an_error_with_the_counts(no_env, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q"}\n{"question": "r"}\n')
    with pytest.raises(SourceError, match="(?s)no conversation left.*missing_field:answer"):
        load_conversations("orca_math", data_files=str(path))


def test_without_hub_access_the_error_says_how_to_use_local_files(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=str(REPO))
    code = ("from curation.convert.load import load_conversations\n"
            "try:\n    load_conversations('gsm8k')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300).stdout
    assert out.startswith("SourceError cannot load openai/gsm8k (train) from the Hugging Face Hub")
    assert "data_files" in out and ENV_VAR in out


def test_batches_are_concatenated(no_env, monkeypatch):
    import curation.convert.load

    whole = conversations(load_conversations("sharegpt", data_files=str(FIXTURE["sharegpt"])))
    monkeypatch.setattr(curation.convert.load, "BATCH", 3)  # 4 conversations: two Arrow batches
    assert conversations(load_conversations("sharegpt", data_files=str(FIXTURE["sharegpt"]))) \
        == whole


def test_converted_data_is_a_memory_mapped_file_named_by_its_content(no_env, tmp_path):
    """XTuner's maps then cache on disk (as for a hub dataset), not in RAM; the same content
    reuses its file, other content gets another one (map caches are keyed by the path)."""
    from tests.curation.conv_helpers import xtuner_process

    first = load_conversations("gsm8k", data_files=str(FIXTURE["gsm8k"]), cache_dir=tmp_path)
    again = load_conversations("gsm8k", data_files=str(FIXTURE["gsm8k"]), cache_dir=tmp_path)
    fewer = load_conversations("gsm8k", data_files=str(FIXTURE["gsm8k"]), cache_dir=tmp_path,
                               limit=1)
    path = Path(first.cache_files[0]["filename"])
    assert path.parent == tmp_path and path.name.startswith("gsm8k-train-")
    assert again.cache_files == first.cache_files
    assert fewer.cache_files != first.cache_files
    assert again._fingerprint == first._fingerprint
    processed = xtuner_process(first, "internlm2_chat")
    assert processed.cache_files and Path(processed.cache_files[0]["filename"]).parent == tmp_path
    assert xtuner_process(again, "internlm2_chat").cache_files == processed.cache_files
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
