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
