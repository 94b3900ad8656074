"""Preference data: the hh-rlhf DPO config trains with XTuner's DPO on the CPU (tiny model, real
`xtuner train`), its reference is the LoRA model with adapters disabled, and `doctor fit` models
two sequences per example and fits it in 8 GiB."""

import json
import math

import pytest

from tests.helpers import REPO, xtuner

SMOKE = REPO / "configs" / "smoke" / "tiny_llama_qlora_dpo_hh_rlhf_cpu.py"
DPO_7B = REPO / "configs" / "llama2_7b_qlora_dpo_hh_rlhf_e1.py"
SFT_7B = REPO / "configs" / "llama2_7b_qlora_hh_rlhf_e1.py"


def test_the_dpo_config_builds_xtuner_dpo_on_qlora_with_no_second_copy(tiny_model):
    from bitsandbytes.nn import Linear4bit
    from mmengine.config import Config
    from xtuner.model.dpo import DPO
    from xtuner.registry import BUILDER

    cfg = Config.fromfile(SMOKE)
    cfg.model.llm.pretrained_model_name_or_path = str(tiny_model)
    model = BUILDER.build(cfg.model)
    assert isinstance(model, DPO) and model.use_lora
    assert model.ref_llm is None  # the reference pass runs under llm.disable_adapter()
    assert any(isinstance(m, Linear4bit) for m in model.modules())
    assert cfg.model.loss_type == "sigmoid" and cfg.model.beta == 0.1
    assert cfg.model.loss_chunk is None  # the DPO loss reads the logits chunked_ce never returns


def test_pairs_are_formatted_in_the_configs_prompt_template(tiny_model):
    from mmengine.config import Config
    from xtuner.dataset.preference_dataset import tokenize
    from xtuner.registry import BUILDER

    cfg = Config.fromfile(SMOKE)
    cfg.tokenizer.pretrained_model_name_or_path = str(tiny_model)
    tok = BUILDER.build(cfg.tokenizer)
    pair = {"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"},
                       {"role": "user", "content": "A joke?"}],
            "chosen": [{"role": "assistant", "content": "Sure."}],
            "rejected": [{"role": "assistant", "content": "No."}]}
    text = tok.apply_chat_template(pair["prompt"] + pair["chosen"], tokenize=False)
    # XTuner's llama2_chat template, as its SFT path lays it out: BOS again after each EOS
    assert text == "<s>[INST] Hi [/INST]Hey</s>\n<s>[INST] A joke? [/INST]Sure.</s>\n"
    from xtuner.utils import PROMPT_TEMPLATE

    from components.chat_template import xtuner_render

    assert text == xtuner_render(PROMPT_TEMPLATE.llama2_chat, pair["prompt"] + pair["chosen"], tok)
    ids = tokenize(pair, tok, max_length=64)
    trained = [i for i, label in zip(ids["chosen_ids"], ids["chosen_labels"], strict=True)
               if label != -100]
    assert tok.decode(trained) == "Sure.</s>\n"  # only the reply is scored


def test_doctor_fit_models_two_sequences_per_pair_and_fits_8gib():
    from dataclasses import replace

    from doctor.fit import fit_report
    from doctor.fit.config import read
    from doctor.fit.estimate import estimate

    dpo, sft = read(DPO_7B).setup, read(SFT_7B).setup
    assert dpo.batch == 2 and sft.batch == 1  # chosen + rejected, each up to max_length
    from mmengine.config import Config

    assert dpo.loss_chunk is None and dpo.seq == Config.fromfile(DPO_7B).max_length
    report = fit_report(str(DPO_7B), gpu_mem=8)
    assert report["fits"], report
    assert report["upper_gb"] <= 7.6
    # one sequence of the same length would need less: the second sequence is counted
    one = estimate(replace(dpo, batch=1))
    assert report["total_gb"] > one.total_gib + 0.3


@pytest.mark.slow
def test_dpo_trains_on_the_cpu_with_the_loss_falling(tmp_path):
    out = xtuner("train", SMOKE, "--work-dir", tmp_path, timeout=1800)  # a shared CPU is slow
    assert out.returncode == 0, out.stdout[-3000:]
    (scalars,) = tmp_path.glob("*/vis_data/scalars.json")
    rows = [json.loads(line) for line in scalars.read_text().splitlines() if line.strip()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 4  # 16 steps, logged every 4
    assert losses[0] == pytest.approx(math.log(2), abs=0.03)  # the policy starts as the reference
    assert losses[-1] < losses[0] - 0.05
    assert rows[-1]["reward_margin"] > 0  # chosen replies gained on rejected ones
    assert list(tmp_path.glob("*/vis_data/events.out.tfevents.*"))  # and TensorBoard has it
    assert "[curation] hh_rlhf pairs/train" in out.stdout and "wrote 32 pairs" in out.stdout


def test_pairs_of_a_model_whose_bos_opens_its_template_get_one_bos(smollm2):
    """SmolLM2's BOS is ChatML's <|im_start|>: the pair's text starts with one, not two."""
    from xtuner.utils import PROMPT_TEMPLATE

    from components.preference import PairTokenizer

    tok = PairTokenizer(prompt_template=PROMPT_TEMPLATE.qwen_chat,
                        pretrained_model_name_or_path=str(smollm2))
    for prompt in ([{"role": "user", "content": "Hi"}],
                   [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]):
        text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        assert text.startswith("<|im_start|>") and not text.startswith("<|im_start|>" * 2), text
