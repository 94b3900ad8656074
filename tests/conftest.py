"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama + tokenizer (demo/tiny.py), built once per test session."""
    from demo import tiny

    return tiny.build(tmp_path_factory.mktemp("tiny") / "tiny-llama")
