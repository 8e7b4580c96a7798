"""Vector stores behind one small interface: FAISS in the index folder (default) or Milvus.

The index folder's vectors.npy stays the source of truth in both cases. FAISS is rebuilt from it with
each index build; Milvus (Milvus Lite for a file path, a server or cluster for an http:// URI) is kept in
step by `sync`, which inserts only chunks it lacks and deletes chunks that are gone, so incremental
updates and deletes behave the same on both. Searches return rows of the index's chunk list either way.
"""

from __future__ import annotations

import re
from typing import Protocol

import numpy as np


class VectorStore(Protocol):
    name: str

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of shape (len(vectors), k), best first; row -1 pads missing results."""
        ...


class FaissStore:
    name = "faiss"

    def __init__(self, index):
        self.index = index

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)


class MilvusStore:
    """One Milvus collection per corpus index; primary key = chunk id."""

    name = "milvus"

    def __init__(self, uri: str, collection: str, dim: int):
        from pymilvus import MilvusClient

        self.client = MilvusClient(uri)
        self.collection = re.sub(r"[^A-Za-z0-9_]", "_", collection)
        if not self.collection[0].isalpha():
            self.collection = "c_" + self.collection
        self.dim = dim
        self.rows: dict[str, int] = {}
        self.ids: list[str] = []
        if not self.client.has_collection(self.collection):
            self._create()
        self.client.load_collection(self.collection)  # a collection from an earlier process starts released

    def _create(self) -> None:
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=1024)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        params = self.client.prepare_index_params()
        params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        self.client.create_collection(self.collection, schema=schema, index_params=params)

    def stored_ids(self) -> set[str]:
        ids: set[str] = set()
        iterator = self.client.query_iterator(self.collection, batch_size=1000, filter="", output_fields=["id"])
        while batch := iterator.next():
            ids.update(row["id"] for row in batch)
        iterator.close()
        return ids

    def sync(self, ids: list[str], vectors: np.ndarray, batch: int = 1000) -> tuple[int, int]:
        """Make the collection hold exactly these chunks; returns (inserted, deleted)."""
        stored = self.stored_ids()
        wanted = set(ids)
        stale = sorted(stored - wanted)
        for i in range(0, len(stale), batch):
            self.client.delete(self.collection, ids=stale[i:i + batch])
        missing = [(i, cid) for i, cid in enumerate(ids) if cid not in stored]
        for start in range(0, len(missing), batch):
            rows = [{"id": cid, "vector": vectors[i].astype(np.float32).tolist()} for i, cid in missing[start:start + batch]]
            self.client.insert(self.collection, rows)
        if missing or stale:
            self.client.flush(self.collection)
        self.ids = list(ids)
        self.rows = {cid: i for i, cid in enumerate(ids)}
        return len(missing), len(stale)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.full((len(vectors), k), -1.0, dtype=np.float32)
        rows = np.full((len(vectors), k), -1, dtype=np.int64)
        if not self.rows:
            return scores, rows
        results = self.client.search(self.collection, data=[v.astype(np.float32).tolist() for v in vectors],
                                     limit=k, output_fields=["id"], search_params={"metric_type": "IP"})
        for q, hits in enumerate(results):
            for j, hit in enumerate(hits[:k]):
                row = self.rows.get(hit["id"])
                if row is not None:
                    scores[q, j], rows[q, j] = hit["distance"], row
        return scores, rows

    def close(self) -> None:
        self.client.close()
