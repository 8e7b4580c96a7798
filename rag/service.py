"""The running assistant: models loaded once, the index kept fresh, stages wired together.

The CLI, the Gradio chat, the evaluator and the briefing writer all hold one Runtime and pass its
parts to the pure stage functions; nothing is loaded at import time or cached in globals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rag.attribute import DocumentView, document_view
from rag.config import Config
from rag.embed import SentenceTransformerEmbedder
from rag.index import Index, build_index, current_index, is_stale
from rag.models import ModelError, embedder_spec, model_path
from rag.store import FaissStore, MilvusStore, VectorStore

log = logging.getLogger("rag")


@dataclass
class Runtime:
    cfg: Config
    embedder: SentenceTransformerEmbedder
    embedder_id: str
    index: Index
    store: VectorStore | None = None
    llms: dict[str, object] = field(default_factory=dict)
    _views: dict[str, DocumentView] = field(default_factory=dict)

    def document_view(self, doc: str) -> DocumentView:
        """A whole normalised document, for reading back from an evidence sentence (rag.attribute)."""
        if doc not in self._views:
            self._views[doc] = document_view([c for c in self.index.chunks if c.doc == doc])
        return self._views[doc]

    @classmethod
    def open(cls, cfg: Config, progress: bool = True) -> Runtime:
        import faiss

        faiss.omp_set_num_threads(1)  # single queries: two threads only wait on each other (make bench)
        embedder, embedder_id = load_embedder(cfg)
        index = ensure_index(cfg, embedder, embedder_id, progress)
        rt = cls(cfg, embedder, embedder_id, index)
        rt.store = open_store(cfg, index, embedder.dim)
        return rt

    def refresh(self, progress: bool = True) -> Index:
        """Pick up added, changed or deleted corpus files (incremental)."""
        self.index = ensure_index(self.cfg, self.embedder, self.embedder_id, progress)
        self._views = {}
        self.store = open_store(self.cfg, self.index, self.embedder.dim, self.store)
        return self.index

    def llm(self, name: str, role: str = "answer"):
        """A generator by manifest name, loaded on first use and then reused. Each role (answer, translate, confirm)
        has its own instance: the weights are memory-mapped once, and a translation never evicts the
        answer prompt's cached prefix (that made English questions wait ~4 s longer for their first token)."""
        from rag.generate import load_llm

        path = model_path(self.cfg.models_dir, name)
        key = f"{path.name}:{role}"
        if key not in self.llms:
            self.llms[key] = load_llm(path, self.cfg)
        return self.llms[key]


def load_embedder(cfg: Config) -> tuple[SentenceTransformerEmbedder, str]:
    """The embedder and the id an index records for it (name and pinned hash)."""
    spec = embedder_spec(cfg.models_dir)
    path = cfg.models_dir / spec["dir"]
    if not (path / "modules.json").exists():
        raise ModelError(f"embedding model missing at {path}; run `rag models fetch`")
    return SentenceTransformerEmbedder(path), f"{spec['name']}:{(spec.get('sha256') or 'unverified')[:12]}"


def ensure_index(cfg: Config, embedder, embedder_id: str, progress: bool = True) -> Index:
    try:
        index = current_index(cfg)
    except Exception as exc:  # unreadable index: rebuilt below, never fatal
        log.warning("%s", exc)
        index = None
    if is_stale(cfg, index, embedder_id):
        log.info("indexing %s …", cfg.corpus)
        index = build_index(cfg, embedder, embedder_id, progress=progress)
        log.info("index ready: %d chunks from %d files in %.1f s", index.manifest["n_chunks"],
                 len(index.manifest["docs"]), index.manifest["seconds"])
    return index


def open_store(cfg: Config, index: Index, dim: int, current: VectorStore | None = None) -> VectorStore:
    """FAISS from the index folder, or a Milvus collection brought in step with it."""
    if cfg.store == "faiss":
        return FaissStore(index.dense)
    if cfg.store != "milvus":
        raise ModelError(f"unknown vector store {cfg.store!r}; use faiss or milvus")
    store = current if isinstance(current, MilvusStore) else MilvusStore(
        cfg.milvus_uri or str(cfg.index_root / "milvus.db"), cfg.index_dir.name, dim)
    inserted, deleted = store.sync([c.id for c in index.chunks], index.vectors)
    if inserted or deleted:
        log.info("milvus: %d chunks inserted, %d deleted", inserted, deleted)
    return store
