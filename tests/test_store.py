"""FAISS and Milvus Lite give the same retrieval: `pytest -k milvus`."""

import shutil
from pathlib import Path

import pytest

from rag.config import Config
from rag.eval import load_qa
from rag.index import build_index
from rag.retrieve import search
from rag.service import Runtime, open_store
from rag.store import FaissStore, MilvusStore

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def project_runtime(tmp_path_factory):
    cfg = Config(index_root=tmp_path_factory.mktemp("index"), translate_queries=False)
    return Runtime.open(cfg, progress=False)


def top5_differences(rt, other_store, items) -> list[str]:
    """Ids of the questions whose top-5 documents differ between FAISS and `other_store`."""
    faiss_store = FaissStore(rt.index.dense)
    differences = []
    for item in items:
        a = search(rt.index, rt.embedder, item.q, 5, store=faiss_store)
        b = search(rt.index, rt.embedder, item.q, 5, store=other_store)
        if [h.chunk.doc for h in a] != [h.chunk.doc for h in b]:
            differences.append(item.id)
    return differences


def test_milvus_and_faiss_same_top5_on_project_qa(project_runtime, tmp_path):
    rt = project_runtime
    milvus = open_store(Config(**{**rt.cfg.__dict__, "store": "milvus", "milvus_uri": str(tmp_path / "m.db")}),
                        rt.index, rt.embedder.dim)
    differences = top5_differences(rt, milvus, load_qa(PROJECT / "eval" / "qa.jsonl"))
    milvus.close()
    assert differences == [], f"top-5 documents differ for {differences}"


def test_milvus_incremental_updates_and_deletes(project_runtime, fixture_corpus, tmp_path):
    cfg = Config(corpus=tmp_path / "c", index_root=tmp_path / "idx", chunk_size=120, chunk_overlap=20,
                 store="milvus", milvus_uri=str(tmp_path / "m.db"))
    shutil.copytree(fixture_corpus, cfg.corpus)
    emb = project_runtime.embedder
    index = build_index(cfg, emb, "test", progress=False)
    store = open_store(cfg, index, emb.dim)
    assert isinstance(store, MilvusStore) and store.stored_ids() == {c.id for c in index.chunks}

    (cfg.corpus / "sixth.txt").write_text("白沙镇新建污水管网18公里。", encoding="utf-8")
    index = build_index(cfg, emb, "test", progress=False)
    inserted, deleted = store.sync([c.id for c in index.chunks], index.vectors)
    assert (inserted, deleted) == (1, 0)
    hit = search(index, emb, "白沙镇污水管网", 1, store=store)[0]
    assert hit.chunk.doc == "sixth.txt"
    assert hit.cosine == pytest.approx(search(index, emb, "白沙镇污水管网", 1)[0].cosine, abs=1e-4)

    (cfg.corpus / "sixth.txt").unlink()
    index = build_index(cfg, emb, "test", progress=False)
    assert store.sync([c.id for c in index.chunks], index.vectors) == (0, 1)
    assert all(h.chunk.doc != "sixth.txt" for h in search(index, emb, "白沙镇污水管网", 3, store=store))
    store.close()
    reopened = open_store(cfg, index, emb.dim)  # a later process finds the collection released on disk
    assert search(index, emb, "青禾县河长", 1, store=reopened)[0].chunk.doc == "river.txt"
    reopened.close()


def test_every_hit_for_the_project_qa_set_is_an_exact_raw_slice(project_runtime):
    rt = project_runtime
    raws = {}
    for item in load_qa(PROJECT / "eval" / "qa.jsonl"):
        for hit in search(rt.index, rt.embedder, item.q, 5, weights=(rt.cfg.bm25_weight, rt.cfg.dense_weight)):
            c = hit.chunk
            raw = raws.setdefault(c.doc, open(rt.cfg.corpus / c.doc, encoding="utf-8").read())
            assert raw[c.start:c.end] == c.text


MILVUS_ROLES = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """A Milvus standalone server (the registry package `milvus`, 2.3.5: the server binary with embedded etcd)
    in a temporary folder, every role announcing 127.0.0.1; skipped when the package is absent or it won't start."""
    import os

    milvus = pytest.importorskip("milvus", reason="the Milvus server package is not installed (pip install milvus==2.3.5)")
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")  # its health check uses urllib
    server = milvus.MilvusServer()
    server.set_base_dir(str(tmp_path_factory.mktemp("milvus-server")))
    server.config.extra_configs.update({f"{role}.ip": "127.0.0.1" for role in MILVUS_ROLES})
    try:
        server.start()
    except Exception as exc:  # no binary for this platform, ports taken, too slow a machine …
        server.stop()
        pytest.skip(f"the Milvus server did not start: {type(exc).__name__}: {exc}")
    yield f"http://127.0.0.1:{server.listen_port}", milvus.__version__
    server.stop()


def test_milvus_server_same_top5_as_faiss(project_runtime, milvus_server, tmp_path):
    """Index into a real server, search every question of eval/qa.jsonl, compare with FAISS; then an update."""
    uri, version = milvus_server
    rt = project_runtime
    cfg = Config(**{**rt.cfg.__dict__, "store": "milvus", "milvus_uri": uri})
    server = open_store(cfg, rt.index, rt.embedder.dim)
    assert server.stored_ids() == {c.id for c in rt.index.chunks}
    items = load_qa(PROJECT / "eval" / "qa.jsonl")
    differences = top5_differences(rt, server, items)
    print(f"\nMilvus server {version}: {len(items) - len(differences)}/{len(items)} questions with the same top-5 "
          "documents as FAISS")
    assert differences == [], f"top-5 documents differ for {differences}"
    assert server.sync([c.id for c in rt.index.chunks[:-3]], rt.index.vectors[:-3]) == (0, 3)
    assert server.sync([c.id for c in rt.index.chunks], rt.index.vectors) == (3, 0)
    server.close()
