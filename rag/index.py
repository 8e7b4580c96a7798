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

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
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


def document_frequency(index: Index, word: str) -> tuple[int, int]:
    """(chunks holding the word, chunks in all), read from the BM25 matrix: no second pass over the text."""
    scores = getattr(index.bm25, "scores", None) or {}
    n = int(scores.get("num_docs", len(index.chunks)))
    vocab = getattr(index.bm25, "vocab_dict", None) or {}
    if word not in vocab:
        return 0, n
    i = vocab[word]
    return int(scores["indptr"][i + 1] - scores["indptr"][i]), n


def writes(index: Index, text: str) -> bool:
    """Does any chunk hold this exact text (after normalisation)? A scan, not the BM25 vocabulary: jieba
    cuts a name differently in different sentences (华尔街日报 / 华尔街 日报), a substring is the same."""
    return any(text in c.norm for c in index.chunks)


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


@contextlib.contextmanager
def build_lock(cfg: Config, wait_s: float = 3600.0, poll_s: float = 0.2) -> Iterator[bool]:
    """One builder per index at a time, across processes (an upload in the chat during `rag index`).
    Yields whether it had to wait. The kernel drops the lock when its holder dies, even by SIGKILL."""
    cfg.index_root.mkdir(parents=True, exist_ok=True)
    with open(cfg.index_root / f".{cfg.index_dir.name}.lock", "a") as fh:
        waited, deadline = False, time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    log.info("waiting for another build of this index to finish …")
                waited = True
                if time.monotonic() > deadline:
                    raise IndexError_(f"another build of {cfg.index_dir} has run for over {wait_s / 60:.0f} "
                                      "minutes; try again when it has finished") from None
                time.sleep(poll_s)
        yield waited  # closing the file releases the lock


def build_index(cfg: Config, embedder: Embedder, embedder_id: str, rebuild: bool = False,
                progress: bool = True) -> Index:
    """Bring the corpus index up to date; returns the index now in place. A build that waited for another
    one first looks at what that one left: usually it is already up to date and nothing is written."""
    if not cfg.corpus.is_dir():
        raise IndexError_(f"corpus folder {cfg.corpus} does not exist")
    with build_lock(cfg) as waited:
        if waited and not rebuild:
            try:
                index = current_index(cfg)
            except IndexError_:
                index = None
            if not is_stale(cfg, index, embedder_id):
                return index
        return _build(cfg, embedder, embedder_id, rebuild, progress)


def _build(cfg: Config, embedder: Embedder, embedder_id: str, rebuild: bool, progress: bool) -> Index:
    started = time.perf_counter()
    params = _params(cfg, embedder_id)
    old = None if rebuild else _reusable(cfg, params)
    state = corpus_state(cfg.corpus)
    plan = _plan_chunks(cfg, state, old, progress)
    dropped = sorted(set(old.manifest["docs"] if old else {}) - set(state))
    if plan.changed:
        log.info("embedding %d chunks from %d new or changed file(s): %s", len(plan.fresh), len(plan.changed),
                 ", ".join(plan.changed[:10]) + (" …" if len(plan.changed) > 10 else ""))
    if dropped:
        log.info("dropping %d deleted file(s): %s", len(dropped), ", ".join(dropped[:10]))
    fresh_vectors = _embed_new_texts(embedder, [c.norm for c in plan.fresh], old, embedder_id, progress)
    vectors = _assemble_rows(plan.rows, fresh_vectors, embedder.dim)
    chunks = plan.chunks
    manifest = {
        "params": params,
        "docs": {doc: state[doc] for doc in state if doc not in plan.skipped},
        "skipped": plan.skipped,
        "encodings": plan.encodings,
        "n_chunks": len(chunks),
        "dense": "ivf" if len(chunks) >= cfg.ann_threshold else "flat",
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "corpus": str(cfg.corpus.resolve()),
        "config": cfg.to_dict(),
    }
    dense = dense_index(vectors, embedder.dim, cfg.ann_threshold)
    bm25, names = _lexical_index(chunks)
    manifest["seconds"] = round(time.perf_counter() - started, 3)
    _write_atomically(cfg.index_dir, manifest, chunks, vectors, dense, bm25, names)
    return Index(manifest, chunks, vectors, dense, bm25, names)


def _reusable(cfg: Config, params: dict) -> Index | None:
    """The current index when it was built with the same params (its unchanged documents are kept)."""
    try:
        old = current_index(cfg)
    except IndexError_ as exc:
        log.warning("%s; rebuilding from scratch", exc)
        return None
    return old if old is not None and old.manifest["params"] == params else None


@dataclass
class ChunkPlan:
    """The chunks of the next index in order; `rows` holds, per document, the old vectors it keeps or
    the number of fresh chunks still to embed."""
    chunks: list[Chunk] = field(default_factory=list)
    rows: list[np.ndarray | int] = field(default_factory=list)
    fresh: list[Chunk] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    encodings: dict[str, str] = field(default_factory=dict)  # non-UTF-8 files: offsets index decoded text


def _plan_chunks(cfg: Config, state: dict[str, str], old: Index | None, progress: bool) -> ChunkPlan:
    """Keep the chunks and vectors of unchanged documents; load and chunk the new or changed ones."""
    plan = ChunkPlan()
    old_docs = old.manifest["docs"] if old else {}
    old_encodings = old.manifest.get("encodings", {}) if old else {}
    old_by_doc: dict[str, list[int]] = {}
    for i, c in enumerate(old.chunks if old else []):
        old_by_doc.setdefault(c.doc, []).append(i)
    for doc, digest in tqdm(state.items(), desc="chunk", unit="file", disable=not progress, file=sys.stderr):
        if old is not None and old_docs.get(doc) == digest:
            idx = old_by_doc.get(doc, [])
            plan.chunks.extend(old.chunks[i] for i in idx)
            plan.rows.append(old.vectors[idx])
            if doc in old_encodings:
                plan.encodings[doc] = old_encodings[doc]
            continue
        try:
            document = load_document(cfg.corpus, cfg.corpus / doc)
        except LoadError as exc:
            log.warning("%s", exc)
            plan.skipped[doc] = digest
            continue
        if document.encoding not in ("", "utf-8"):
            plan.encodings[doc] = document.encoding
            log.info("%s: read as %s (not UTF-8); its citations index the decoded text", doc, document.encoding)
        new = chunk_document(document, cfg.chunk_size, cfg.chunk_overlap)
        plan.changed.append(doc)
        plan.chunks.extend(new)
        plan.fresh.extend(new)
        plan.rows.append(len(new))
    return plan


def _lexical_index(chunks: list[Chunk]) -> tuple[bm25s.BM25, dict[str, list[str]]]:
    """BM25 over jieba tokens of each chunk, and the pinyin table of the proper names among them."""
    bm25 = bm25s.BM25()
    tokenized = [tokenize(c.norm) or ["∅"] for c in chunks]
    if chunks:
        bm25.index(tokenized, show_progress=False)
    return bm25, pinyin_names({t for tokens in tokenized for t in tokens})


def _embed_new_texts(embedder: Embedder, texts: list[str], old: Index | None, embedder_id: str,
                     progress: bool) -> np.ndarray:
    """Vectors for these texts; a text the previous index already embedded with the same embedder keeps
    its vector (a change to cleaning or chunking re-embeds only the chunks whose text changed)."""
    known: dict[str, int] = {}
    if old is not None and old.manifest.get("params", {}).get("embedder") == embedder_id:
        known = {c.norm: i for i, c in enumerate(old.chunks)}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if known and len(missing) < len(texts):
        log.info("%d of %d chunk texts already embedded; embedding %d", len(texts) - len(missing), len(texts),
                 len(missing))
    computed = _embed_batched(embedder, missing, progress)
    rows = {t: computed[i] for i, t in enumerate(missing)}
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for i, t in enumerate(texts):
        out[i] = rows[t] if t in rows else old.vectors[known[t]]
    return out


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
