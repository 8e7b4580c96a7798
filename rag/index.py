"""The persistent index: one folder per corpus, swapped in atomically, updated incrementally.

Layout (every file named for what it holds, params beside it, after bm25s):
    manifest.json  what it was built from: per-document SHA-256, chunking params, embedder hash
    chunks.jsonl   the Chunk records, in vector order
    vectors.npy    float32 embeddings, one row per chunk
    dense.faiss    FAISS index over vectors (exact below Config.ann_threshold, IVF above)
    bm25/          bm25s index over jieba tokens of each chunk's normalised text
    names.json     pinyin -> corpus proper names, so 'Yingjing' in an English question finds 荥经

A build writes a fresh folder under `<name>.builds/` and then atomically repoints the `<name>` symlink,
so a crash at any moment leaves the previous index or the new one, never half of each. Unchanged
documents keep their chunks and vectors: only new or changed files are embedded again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import bm25s
import faiss
import numpy as np
from tqdm import tqdm

from rag.chunk import Chunk, chunk_document
from rag.config import Config
from rag.embed import Embedder
from rag.load import LoadError, file_hash, list_files, load_document
from rag.tokens import pinyin_names, tokenize

log = logging.getLogger("rag.index")
FORMAT_VERSION = 2


class IndexError_(RuntimeError):
    """The index cannot be built or read; the message says why."""


@dataclass
class Index:
    manifest: dict
    chunks: list[Chunk]
    vectors: np.ndarray
    dense: faiss.Index
    bm25: bm25s.BM25
    names: dict[str, list[str]]


def _params(cfg: Config, embedder_id: str) -> dict:
    return {"format": FORMAT_VERSION, "embedder": embedder_id, **cfg.index_params()}


def load_index(path: Path) -> Index:
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        with open(path / "chunks.jsonl", encoding="utf-8") as fh:
            chunks = [Chunk(**json.loads(line)) for line in fh]
        vectors = np.load(path / "vectors.npy")
        dense = faiss.read_index(str(path / "dense.faiss"))
        bm25 = bm25s.BM25.load(str(path / "bm25"), load_corpus=False) if chunks else bm25s.BM25()
        names = json.loads((path / "names.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexError_(f"index at {path} is unreadable ({type(exc).__name__}); run `rag index --rebuild`") from exc
    if len(chunks) != manifest.get("n_chunks") or len(vectors) != len(chunks) or dense.ntotal != len(chunks):
        raise IndexError_(f"index at {path} is inconsistent with its manifest; run `rag index --rebuild`")
    return Index(manifest, chunks, vectors, dense, bm25, names)


def current_index(cfg: Config) -> Index | None:
    link = cfg.index_dir
    if not link.exists():
        return None
    return load_index(link.resolve())


def corpus_state(corpus: Path) -> dict[str, str]:
    """doc -> SHA-256 of the file, for every indexable file in the corpus."""
    return {p.relative_to(corpus).as_posix(): file_hash(p) for p in list_files(corpus)}


def is_stale(cfg: Config, index: Index | None, embedder_id: str) -> bool:
    if index is None:
        return True
    m = index.manifest
    known = {**m["docs"], **m.get("skipped", {})}
    return m["params"] != _params(cfg, embedder_id) or known != corpus_state(cfg.corpus)


def dense_index(vectors: np.ndarray, dim: int, ann_threshold: int) -> faiss.Index:
    """Exact inner product for small corpora; IVF above the threshold (builds in a minute, unlike HNSW at a
    million vectors on two cores). How many lists a query must visit depends on how the vectors cluster,
    so nprobe is measured at build time: the smallest that reaches recall@10 >= 0.95 against exact search
    on sample queries (`make bench` reports the curve)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) < ann_threshold:
        index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(vectors)
        return index
    rng = np.random.default_rng(0)
    nlist = int(np.sqrt(len(vectors)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(vectors[rng.choice(len(vectors), min(len(vectors), nlist * 64), replace=False)])
    index.add(vectors)
    index.nprobe = tuned_nprobe(index, vectors, rng)
    return index


def tuned_nprobe(index: faiss.IndexIVF, vectors: np.ndarray, rng: np.random.Generator, target: float = 0.95,
                 n_queries: int = 200, k: int = 10) -> int:
    """Smallest power-of-two nprobe whose recall@k reaches target, with sampled vectors as queries (queries
    look like the text they search); each query's own row is left out of both result lists."""
    ids = rng.choice(len(vectors), min(n_queries, len(vectors)), replace=False)
    queries = np.ascontiguousarray(vectors[ids])
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, k + 1)
    truth_sets = [set(t) - {i} for t, i in zip(truth, ids, strict=True)]
    nprobe = 8
    while nprobe < index.nlist:
        index.nprobe = nprobe
        _, found = index.search(queries, k + 1)
        recall = np.mean([len((set(f) - {i}) & t) / max(len(t), 1)
                          for f, t, i in zip(found, truth_sets, ids, strict=True)])
        if recall >= target:
            break
        nprobe *= 2
    return min(nprobe, index.nlist)


def build_index(cfg: Config, embedder: Embedder, embedder_id: str, rebuild: bool = False,
                progress: bool = True) -> Index:
    """Bring the corpus index up to date; returns the index now in place."""
    if not cfg.corpus.is_dir():
        raise IndexError_(f"corpus folder {cfg.corpus} does not exist")
    started = time.perf_counter()
    old = None
    if not rebuild:
        try:
            old = current_index(cfg)
        except IndexError_ as exc:
            log.warning("%s; rebuilding from scratch", exc)
    params = _params(cfg, embedder_id)
    reusable = old is not None and old.manifest["params"] == params
    old_docs = old.manifest["docs"] if reusable else {}
    old_by_doc: dict[str, list[int]] = {}
    if reusable:
        for i, c in enumerate(old.chunks):
            old_by_doc.setdefault(c.doc, []).append(i)

    state = corpus_state(cfg.corpus)
    chunks: list[Chunk] = []
    rows: list[np.ndarray | int] = []
    fresh: list[Chunk] = []
    skipped: dict[str, str] = {}
    changed = []
    for doc, digest in tqdm(state.items(), desc="chunk", unit="file", disable=not progress, file=sys.stderr):
        if old_docs.get(doc) == digest:
            idx = old_by_doc.get(doc, [])
            chunks.extend(old.chunks[i] for i in idx)
            rows.append(old.vectors[idx])
            continue
        try:
            document = load_document(cfg.corpus, cfg.corpus / doc)
        except LoadError as exc:
            log.warning("%s", exc)
            skipped[doc] = digest
            continue
        changed.append(doc)
        new = chunk_document(document, cfg.chunk_size, cfg.chunk_overlap)
        chunks.extend(new)
        fresh.extend(new)
        rows.append(len(new))
    dropped = sorted(set(old_docs) - set(state))
    if changed:
        log.info("embedding %d chunks from %d new or changed file(s): %s", len(fresh), len(changed),
                 ", ".join(changed[:10]) + (" …" if len(changed) > 10 else ""))
    if dropped:
        log.info("dropping %d deleted file(s): %s", len(dropped), ", ".join(dropped[:10]))
    fresh_vectors = _embed_batched(embedder, [c.norm for c in fresh], progress)
    vectors = _assemble_rows(rows, fresh_vectors, embedder.dim)

    manifest = {
        "params": params,
        "docs": {doc: state[doc] for doc in state if doc not in skipped},
        "skipped": skipped,
        "n_chunks": len(chunks),
        "dense": "ivf" if len(chunks) >= cfg.ann_threshold else "flat",
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "corpus": str(cfg.corpus.resolve()),
        "config": cfg.to_dict(),
    }
    dense = dense_index(vectors, embedder.dim, cfg.ann_threshold)
    bm25 = bm25s.BM25()
    tokenized = [tokenize(c.norm) or ["∅"] for c in chunks]
    if chunks:
        bm25.index(tokenized, show_progress=False)
    names = pinyin_names({t for tokens in tokenized for t in tokens})
    manifest["seconds"] = round(time.perf_counter() - started, 3)
    _write_atomically(cfg.index_dir, manifest, chunks, vectors, dense, bm25, names)
    return Index(manifest, chunks, vectors, dense, bm25, names)


def _embed_batched(embedder: Embedder, texts: list[str], progress: bool, batch: int = 128) -> np.ndarray:
    """Passages embedded in steps, so the progress bar (chunks, with chunks/s) moves."""
    parts = []
    with tqdm(total=len(texts), desc="embed", unit="chunk", disable=not progress or not texts,
              file=sys.stderr) as bar:
        for i in range(0, len(texts), batch):
            parts.append(embedder.embed(texts[i:i + batch], "passage"))
            bar.update(len(parts[-1]))
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


def _assemble_rows(rows: list[np.ndarray | int], fresh: np.ndarray, dim: int) -> np.ndarray:
    """Old vectors stay as they were; an int marks how many freshly embedded rows go in its place."""
    out, used = [], 0
    for row in rows:
        if isinstance(row, int):
            out.append(fresh[used:used + row])
            used += row
        else:
            out.append(row)
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, dim), dtype=np.float32)


def _write_atomically(link: Path, manifest: dict, chunks: list[Chunk], vectors: np.ndarray,
                      dense: faiss.Index, bm25: bm25s.BM25, names: dict[str, list[str]]) -> None:
    builds = link.parent / f"{link.name}.builds"
    builds.mkdir(parents=True, exist_ok=True)
    target = builds / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = builds / f".tmp-{target.name}"
    tmp.mkdir()
    with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
        for c in chunks:
            fh.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
    np.save(tmp / "vectors.npy", vectors)
    faiss.write_index(dense, str(tmp / "dense.faiss"))
    if chunks:
        bm25.save(str(tmp / "bm25"))
    (tmp / "names.json").write_text(json.dumps(names, ensure_ascii=False), encoding="utf-8")
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    _fsync_tree(tmp)
    os.rename(tmp, target)
    new_link = link.parent / f".{link.name}.link-{uuid.uuid4().hex[:8]}"
    os.symlink(target.relative_to(link.parent), new_link)
    if link.exists() and not link.is_symlink():
        shutil.rmtree(link)  # an index folder from an older layout
    os.replace(new_link, link)  # the atomic switch
    _remove_stale_builds(link, builds)


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as fh:
                os.fsync(fh.fileno())


def _remove_stale_builds(link: Path, builds: Path) -> None:
    """Everything but the live build goes: older builds and leftovers of killed runs."""
    live = link.resolve().name
    for entry in builds.iterdir():
        if entry.name != live:
            shutil.rmtree(entry, ignore_errors=True)
    for stray in link.parent.glob(f".{link.name}.link-*"):
        stray.unlink(missing_ok=True)
