"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama + tokenizer (components/tiny.py), built once per test session."""
    from components import tiny

    return tiny.build(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct as `make env` installs it (.cache/smollm2-135m-instruct): the real
    pretrained model and tokenizer. Missing is a failure, not a skip: `make env` provides it."""
    from demo import smollm2

    try:
        return smollm2.require()
    except smollm2.ModelSourceError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def empty_hf_home(tmp_path, monkeypatch) -> dict[str, str]:
    """A Hugging Face cache with nothing in it, and no XTUNER_PACK_DATA."""
    home = tmp_path / "hf"
    home.mkdir()
    monkeypatch.delenv("XTUNER_PACK_DATA", raising=False)
    monkeypatch.delenv("XTUNER_PACK_FORCE", raising=False)
    return {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
            "HF_DATASETS_CACHE": str(home / "datasets")}


@pytest.fixture
def no_real_gpu():
    from tests.gpu_env import real_gpu

    if real_gpu():
        pytest.skip("these tests describe machines without a real GPU (NVML answers here)")
