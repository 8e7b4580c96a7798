"""Legacy encodings end to end: a GB18030 and a Big5 file (the fixture documents, encoded) are indexed and
answered with exact quotes into their decoded text, and the JSON names each file's encoding."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from rag.cli import cli
from rag.config import Config

SMALL = "qwen2.5-coder-0.5b"
PINYIN = re.compile(r"\([a-zāáǎàēéěèīíǐìōóǒòūúǔùü]+\)")  # 嶺(lǐng): Big5 has no tone letters
LEGACY = {"river-gb.txt": "gb18030", "forest-big5.txt": "big5"}


@pytest.fixture(scope="module")
def legacy_runtime(runtime, tmp_path_factory):
    """The session's models over a corpus of one GB18030, one Big5 and one UTF-8 file."""
    from rag.service import Runtime, ensure_index, open_store

    corpus = tmp_path_factory.mktemp("legacy")
    (corpus / "river-gb.txt").write_bytes((FIXTURES / "corpus" / "river.txt").read_text("utf-8").encode("gb18030"))
    forest = PINYIN.sub("", (FIXTURES / "corpus" / "forest.txt").read_text("utf-8"))
    (corpus / "forest-big5.txt").write_bytes(forest.encode("big5"))
    (corpus / "notice.txt").write_bytes((FIXTURES / "corpus" / "notice.txt").read_bytes())
    for name in LEGACY:
        with pytest.raises(UnicodeDecodeError):
            (corpus / name).read_text(encoding="utf-8")
    cfg = Config(corpus=corpus, index_root=tmp_path_factory.mktemp("legacy-index"), generator=SMALL,
                 translator=SMALL, chunk_size=120, chunk_overlap=20)
    index = ensure_index(cfg, runtime.embedder, runtime.embedder_id, progress=False)
    rt = Runtime(cfg, runtime.embedder, runtime.embedder_id, index, llms=runtime.llms)
    rt.store = open_store(cfg, index, runtime.embedder.dim)
    return rt


def decoded(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding) as fh:  # as the contract reads a file, with its own encoding
        return fh.read()


def test_legacy_files_are_indexed(legacy_runtime):
    m = legacy_runtime.index.manifest
    assert set(m["docs"]) == {*LEGACY, "notice.txt"} and m["skipped"] == {}
    assert m["encodings"] == LEGACY
    for c in legacy_runtime.index.chunks:
        assert decoded(legacy_runtime.cfg.corpus / c.doc, LEGACY.get(c.doc, "utf-8"))[c.start:c.end] == c.text


@pytest.mark.parametrize("question,doc,figure", [("青禾县设立了多少名河长？", "river-gb.txt", "212"),
                                                 ("松嶺市新增綠道多少公里？", "forest-big5.txt", "36")])
def test_question_answered_with_exact_quote_into_decoded_text(legacy_runtime, monkeypatch, question, doc, figure):
    """The evidence the model is given quotes the legacy file exactly (with the figure asked for); whatever
    it answers, every citation slices the decoded text and names the encoding."""
    from rag.ask import answer

    result = answer(legacy_runtime, question, SMALL)
    best = result.evidence[0]
    assert best.doc == doc and figure in best.quote, result.evidence
    assert decoded(legacy_runtime.cfg.corpus / doc, LEGACY[doc])[best.start:best.end] == best.quote
    monkeypatch.setattr("rag.service.Runtime.open", classmethod(lambda cls, cfg, progress=True: legacy_runtime))
    out = CliRunner().invoke(cli, ["ask", "--json", "--model", SMALL, question], catch_exceptions=False)
    assert out.exit_code == 0, out.stderr
    obj = json.loads(out.stdout)
    print(f"\n{question} -> {obj['answer']} {[(c['doc'], c.get('encoding'), c['quote']) for c in obj['citations']]}")
    assert obj["refused"] == (not obj["citations"])
    for c in obj["citations"]:
        assert c.get("encoding") == LEGACY.get(c["doc"]), c
        text = decoded(legacy_runtime.cfg.corpus / c["doc"], LEGACY.get(c["doc"], "utf-8"))
        assert text[c["start"]:c["end"]] == c["quote"]

    out = CliRunner().invoke(cli, ["search", "--json", "--no-translate", question], catch_exceptions=False)
    hits = json.loads(out.stdout)["hits"]
    assert hits[0]["doc"] == doc and hits[0]["encoding"] == LEGACY[doc], hits[0]
