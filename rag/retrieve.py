"""Hybrid retrieval: BM25 over jieba words for exact names and figures, dense vectors for meaning.

The two rankings are fused by weighted reciprocal rank (one small pure function), which needs no score
calibration between a BM25 score and a cosine. English questions cannot meet Chinese words in BM25, so
the caller may pass extra query variants (a Chinese rendering of the question made by the small model);
every variant is searched and all rankings are fused together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.chunk import Chunk
from rag.clean import normalize_query
from rag.embed import Embedder
from rag.index import Index
from rag.store import FaissStore, VectorStore
from rag.tokens import tokenize


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # fused score, higher is better
    bm25: float  # best raw BM25 score over the query variants
    cosine: float  # best cosine similarity over the query variants


def rrf_fuse(rankings: list[list[int]], weights: list[float], k: int = 60) -> dict[int, float]:
    """Weighted reciprocal-rank fusion: item -> sum of weight / (k + rank)."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank + 1)
    return fused


_LATIN = re.compile(r"[a-zA-Z]")
_CJK = re.compile(r"[\u3400-\u9fff]")


def is_english(question: str) -> bool:
    """Mostly Latin letters: needs a Chinese rendering to meet the corpus."""
    latin, cjk = len(_LATIN.findall(question)), len(_CJK.findall(question))
    return latin >= 8 and latin > 2 * cjk


def search(index: Index, embedder: Embedder, question: str, k: int, candidates: int = 30,
           variants: tuple[str, ...] = (), weights: tuple[float, float] = (1.0, 1.0), rrf_k: int = 60,
           store: VectorStore | None = None, question_bm25: float | None = None) -> list[Hit]:
    """Top-k hits for a question (and any extra renderings of it), best first. `question_bm25` replaces
    the BM25 weight for the question's own words (an English question's words seldom occur in Chinese
    text, so their BM25 ranking is mostly noise); variants keep `weights`."""
    n = len(index.chunks)
    if n == 0 or k <= 0:
        return []
    queries = [normalize_query(q) for q in (question, *variants)]
    queries = [q for q in queries if q.strip()]
    if not queries:
        return []
    depth = min(candidates, n)
    vectors = embedder.embed(queries, "query")
    cos_scores, cos_ids = (store or FaissStore(index.dense)).search(vectors, depth)
    rankings, rank_weights = [], []
    best_bm25 = np.zeros(n, dtype=np.float32)
    best_cos = np.full(n, -1.0, dtype=np.float32)
    for qi, query in enumerate(queries):
        tokens = tokenize(query)
        if tokens:
            scores = index.bm25.get_scores(tokens)
            best_bm25 = np.maximum(best_bm25, scores)
            top = np.argsort(-scores, kind="stable")[:depth]
            rankings.append([int(i) for i in top if scores[i] > 0])
            rank_weights.append(weights[0] if qi or question_bm25 is None else question_bm25)
        dense_ids = [int(i) for i in cos_ids[qi] if i >= 0]
        for i, s in zip(cos_ids[qi], cos_scores[qi], strict=True):
            if i >= 0:
                best_cos[i] = max(best_cos[i], s)
        rankings.append(dense_ids)
        rank_weights.append(weights[1])
    fused = rrf_fuse(rankings, rank_weights, rrf_k)
    best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [Hit(index.chunks[i], round(s, 6), float(best_bm25[i]), float(best_cos[i])) for i, s in best]


_ABOUT_PAGE = re.compile(r"作者|撰文|署名|记者|编辑|发布时间|发布日期|发表|信息来源|来源于|出处|"
                         r"\bauthor|\bwr[io]te\b|\bwritten\b|\breporter|\beditor\b|\bpublish|\bbyline", re.I)


def asks_about_page(question: str) -> bool:
    """Author, date or source of an article: answered by the page head (title, byline, dateline), which
    shares no words with such a question."""
    return bool(_ABOUT_PAGE.search(normalize_query(question)))


def with_page_heads(index: Index, hits: list[Hit], k: int, docs: int = 2) -> list[Hit]:
    """The first chunk of each of the top `docs` documents moved to the front of the hits."""
    top_docs = list(dict.fromkeys(h.chunk.doc for h in hits))[:docs]
    heads = []
    for doc in top_docs:
        first = min((c for c in index.chunks if c.doc == doc), key=lambda c: c.start)
        found = next((h for h in hits if h.chunk.id == first.id), None)
        heads.append(found or Hit(first, 0.0, 0.0, -1.0))
    ids = {h.chunk.id for h in heads}
    return (heads + [h for h in hits if h.chunk.id not in ids])[:k]


def hit_json(hit: Hit) -> dict:
    """A hit as the contract's JSON (doc, start, end, text, score) plus title, bm25 and cosine."""
    c = hit.chunk
    return {"doc": c.doc, "start": c.start, "end": c.end, "text": c.text, "score": hit.score,
            "title": c.title, "bm25": round(hit.bm25, 4), "cosine": round(hit.cosine, 4)}
