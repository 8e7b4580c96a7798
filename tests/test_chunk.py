from pathlib import Path

import pytest

from rag.chunk import chunk_document
from rag.load import list_files, load_document

FURNITURE = ["您的位置", "首页 >", "字体:", "分享到", "资料图片仅供参考", "天气预报", "copyright", "icp备",
             "因篇幅问题不能全部显示", "吉 林 城 乡 网", "开云", "**", "\ufffd", "(tài)", "(qū)"]


@pytest.mark.parametrize("size", [120, 240])
def test_chunks_are_exact_raw_slices(project_corpus: Path, size: int):
    for path in list_files(project_corpus):
        doc = load_document(project_corpus, path)
        chunks = chunk_document(doc, size, size // 4)
        assert chunks, path.name
        for c in chunks:
            assert doc.raw[c.start:c.end] == c.text
            assert c.doc == path.name and c.title


def test_no_page_furniture_in_normalised_chunks(project_corpus: Path):
    for path in list_files(project_corpus):
        for c in chunk_document(load_document(project_corpus, path), 240, 60):
            for noise in FURNITURE:
                assert noise not in c.norm, (path.name, noise, c.norm[:80])


def test_chunks_respect_size_and_sentences(project_corpus: Path):
    doc = load_document(project_corpus, project_corpus / "000_e82d20db0e0dda62.txt")
    chunks = chunk_document(doc, 200, 40)
    assert all(len(c.norm) <= 200 for c in chunks)
    ends = sum(c.norm.endswith(("。", "；", "！", "？")) for c in chunks)
    assert ends >= len(chunks) // 2  # most chunks stop at a sentence boundary
