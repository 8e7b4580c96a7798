import logging
import shutil

from rag.config import Config
from rag.index import build_index, current_index, is_stale


class CountingEmbedder:
    """The real embedder, counting what it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.dim, self.texts = inner, inner.dim, 0

    def embed(self, texts, prompt):
        self.texts += len(texts)
        return self.inner.embed(texts, prompt)


def test_incremental_add_and_delete(runtime, fixture_corpus, tmp_path, caplog):
    cfg = Config(corpus=tmp_path / "c", index_root=tmp_path / "idx", chunk_size=120, chunk_overlap=20)
    shutil.copytree(fixture_corpus, cfg.corpus)
    emb = CountingEmbedder(runtime.embedder)
    first = build_index(cfg, emb, "test", progress=False)
    assert emb.texts == len(first.chunks) > 0
    assert not is_stale(cfg, current_index(cfg), "test")

    (cfg.corpus / "sixth.txt").write_text("白沙镇新建污水管网18公里。", encoding="utf-8")
    assert is_stale(cfg, current_index(cfg), "test")
    emb.texts = 0
    with caplog.at_level(logging.INFO, logger="rag.index"):
        second = build_index(cfg, emb, "test", progress=False)
    added = [c for c in second.chunks if c.doc == "sixth.txt"]
    assert emb.texts == len(added) == 1  # only the new file was embedded
    assert "sixth.txt" in caplog.text
    old = {c.id for c in first.chunks}
    assert old <= {c.id for c in second.chunks}

    (cfg.corpus / "sixth.txt").unlink()
    emb.texts = 0
    third = build_index(cfg, emb, "test", progress=False)
    assert emb.texts == 0
    assert {c.id for c in third.chunks} == old
    reloaded = current_index(cfg)
    assert len(reloaded.chunks) == reloaded.dense.ntotal == len(reloaded.vectors)


def test_bad_file_is_skipped_rest_indexed(runtime, fixture_corpus, tmp_path, caplog):
    cfg = Config(corpus=tmp_path / "c", index_root=tmp_path / "idx", chunk_size=120, chunk_overlap=20)
    shutil.copytree(fixture_corpus, cfg.corpus)
    (cfg.corpus / "junk.txt").write_bytes(b"\x00\x01\x02binary")
    with caplog.at_level(logging.WARNING, logger="rag.index"):
        index = build_index(cfg, runtime.embedder, "test", progress=False)
    assert "junk.txt" in caplog.text
    assert "junk.txt" in index.manifest["skipped"]
    assert {c.doc for c in index.chunks} == {"river.txt", "forest.txt", "notice.txt"}
    assert not is_stale(cfg, current_index(cfg), "test")


def test_large_index_is_ivf_with_nprobe_tuned_for_recall():
    """Above the threshold the dense index is IVF, and its nprobe reaches recall@10 >= 0.9 on fresh queries."""
    import faiss
    import numpy as np

    from rag.index import dense_index

    rng = np.random.default_rng(1)
    centres = rng.standard_normal((50, 32)).astype(np.float32)
    vectors = centres[rng.integers(0, 50, 20_000)] + 0.5 * rng.standard_normal((20_000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = dense_index(vectors, 32, ann_threshold=10_000)
    assert isinstance(index, faiss.IndexIVFFlat) and 8 <= index.nprobe <= index.nlist
    queries = centres[rng.integers(0, 50, 100)] + 0.5 * rng.standard_normal((100, 32)).astype(np.float32)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    exact = faiss.IndexFlatIP(32)
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    _, found = index.search(queries, 10)
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]) >= 0.9
