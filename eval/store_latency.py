"""FAISS vs Milvus Lite on the project QA set, one run, interleaved: latency of the whole hybrid search
and whether both stores return the same top-5 documents. `.venv/bin/python eval/store_latency.py`"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from rag.config import Config
from rag.eval import load_qa
from rag.retrieve import search
from rag.service import Runtime, open_store
from rag.store import FaissStore


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    cfg = Config(index_root=tmp, translate_queries=False)
    rt = Runtime.open(cfg, progress=False)
    milvus = open_store(Config(index_root=tmp, store="milvus", milvus_uri=str(tmp / "m.db")), rt.index, rt.embedder.dim)
    stores = {"faiss": FaissStore(rt.index.dense), "milvus": milvus}
    times: dict[str, list[float]] = {name: [] for name in stores}
    same = 0
    items = load_qa(Path("eval/qa.jsonl"))
    for n, item in enumerate(items):
        docs = {}
        for name in ("faiss", "milvus") if n % 2 == 0 else ("milvus", "faiss"):
            started = time.perf_counter()
            hits = search(rt.index, rt.embedder, item.q, 5, store=stores[name],
                          weights=(cfg.bm25_weight, cfg.dense_weight))
            times[name].append(time.perf_counter() - started)
            docs[name] = [h.chunk.doc for h in hits]
        same += docs["faiss"] == docs["milvus"]
    for name, values in times.items():
        p90 = sorted(values)[int(0.9 * len(values))]
        print(f"{name}: search p50 {statistics.median(values) * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms")
    print(f"same top-5 documents: {same} of {len(items)} questions")
    milvus.close()


if __name__ == "__main__":
    main()
