"""Shared fixtures: a tiny noisy corpus, a private index folder, the real embedder and the 0.5B model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.config import Config

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = Path(__file__).resolve().parent.parent
SMALL_MODEL = "qwen2.5-coder-0.5b"
PRODUCT_MODEL = "qwen2.5-coder-1.5b"  # the default generator: answer behaviour is tested on it


def copy_fixture_corpus(target: Path) -> Path:
    """A private copy of tests/fixtures/corpus, so tests that add files never touch the fixtures."""
    for f in (FIXTURES / "corpus").iterdir():
        shutil.copy(f, target / f.name)
    return target


@pytest.fixture(scope="session")
def fixture_corpus(tmp_path_factory) -> Path:
    return copy_fixture_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def cfg(fixture_corpus, tmp_path_factory) -> Config:
    return Config(corpus=fixture_corpus, index_root=tmp_path_factory.mktemp("index"), generator=SMALL_MODEL,
                  translator=SMALL_MODEL, confirm_with="", chunk_size=120, chunk_overlap=20)


@pytest.fixture(scope="session")
def runtime(cfg):
    from rag.service import Runtime

    return Runtime.open(cfg, progress=False)


@pytest.fixture(scope="session")
def project_corpus() -> Path:
    return PROJECT / "corpus"


@pytest.fixture(scope="session")
def answer_runtime(cfg):
    """The fixture corpus answered by the product's own generator (the 0.5B declines answerable questions
    the 1.5B answers, so refusal behaviour is only meaningful on the 1.5B)."""
    from dataclasses import replace

    from rag.service import Runtime

    return Runtime.open(replace(cfg, generator=PRODUCT_MODEL, translator=PRODUCT_MODEL, confirm_with=PRODUCT_MODEL),
                        progress=False)
