"""Planning a briefing by theme: the passages most about a topic, near-duplicates merged, grouped.

A briefing organised by file repeats itself and mixes subjects; one organised by theme reads like a
report. So the topic is searched widely, the hits are cut into sentences (exact raw spans), each is
scored against the topic, the same story told by several pages is kept once, and what remains is
clustered on meaning (embeddings) and wording (TF-IDF over jieba words). Each cluster is one section,
headed by the words that set it apart from the others. Everything here is deterministic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace

import jieba
import numpy as np

from rag.cite import bigrams
from rag.clean import normalize, sentence_spans
from rag.patterns import CJK, CJK_CHAR, CJK_RUN
from rag.tokens import STOPWORDS

MAX_PASSAGE = 120  # normalised characters: a longer sentence is cut at clause marks
# Words a topic is phrased with that say nothing about its content.
GENERIC = frozenset("发展 坚持 理念 各地 各级 如何 怎样 推进 推动 开展 加强 情况 进展 措施 做法 工作 有关 相关 方面 主要 哪些 "
                    "采取 实施 进行 通过 积极 不断 持续 全面 深入 一个 我们 他们 表示 目前 已经 今年 去年 其中".split())
# Short page furniture: bylines, datelines, sharing widgets, image notes.
_FURNITURE = re.compile(r"记者|来源[:：]|编辑|发布时间|日期[:：]|版权|ICP|首页|字体|分享|扫一扫|点击|图片|资料图|原标题|通讯员")


@dataclass(frozen=True)
class Passage:
    """One source sentence (or clause window): an exact raw span and its normalised text."""

    doc: str
    title: str
    start: int
    end: int
    quote: str  # raw[start:end] of the document
    norm: str  # what the model reads and what checks run against
    score: float = 0.0
    also: tuple[str, ...] = ()  # other documents telling the same thing (near-duplicates merged here)


@dataclass
class Theme:
    heading: str
    passages: list[Passage]  # best first

    @property
    def docs(self) -> list[str]:
        return list(dict.fromkeys(p.doc for p in self.passages))


def sentences_of(chunk) -> list[Passage]:
    """Sentences of a chunk with their raw spans; long ones cut into clause windows."""
    local = normalize(chunk.text)
    out = []
    for a, b in sentence_spans(local.text):
        for x, y in _windows(local.text, a, b):
            text = local.text[x:y].strip()
            if _is_content(text):
                ra, rb = local.raw_span(x, y)
                out.append(Passage(chunk.doc, chunk.title, chunk.start + ra, chunk.start + rb,
                                   chunk.text[ra:rb], text))
    return out


def _windows(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """[a, b) cut after clause marks into pieces of at most MAX_PASSAGE characters (when marks allow)."""
    spans, begin, last = [], a, a
    for m in re.finditer(r"[；;，,：:]", text[a:b]):
        cut = a + m.end()
        if cut - begin > MAX_PASSAGE and last > begin:
            spans.append((begin, last))
            begin = last
        last = cut
    spans.append((begin, b))
    return [(x, y) for x, y in spans if y > x]


def _is_content(text: str) -> bool:
    cjk = len(CJK_CHAR.findall(text))
    short = len(text) < 40
    # a short line without a sentence's punctuation is a title or caption, not a statement
    return cjk >= 12 and not (short and (_FURNITURE.search(text) or not re.search(r"[。！？；;!?，,]", text)))


def topic_terms(topic: str) -> list[str]:
    """The content words of a topic (循环经济 from 各地如何推进循环经济)."""
    words = [w for w in jieba.lcut_for_search(normalize(topic).text) if re.search(rf"[\w{CJK}]", w)]
    return [w for w in dict.fromkeys(words) if w not in STOPWORDS and w not in GENERIC and len(w) >= 2]


def score_passages(passages: list[Passage], topic_vec: np.ndarray, vecs: np.ndarray,
                   terms: list[str]) -> list[Passage]:
    """Relevance = meaning plus wording. Cosines are rescaled to 0..1 over the candidates (embedders give
    every Chinese sentence a high baseline similarity); topic words are weighted by length and rarity
    among the candidates (经济 in most sentences says less than 循环经济)."""
    cos = vecs @ topic_vec
    cos = (cos - cos.min()) / (np.ptp(cos) or 1.0)
    n = len(passages)
    weight = {t: len(t) * math.log(1 + (n + 1) / (1 + sum(t in p.norm for p in passages))) for t in terms}
    total = sum(weight.values()) or 1.0
    scored = []
    for p, c in zip(passages, cos, strict=True):
        lexical = sum(w for t, w in weight.items() if t in p.norm) / total
        scored.append(replace(p, score=round(0.5 * float(c) + 0.5 * lexical, 4)))
    return scored


def same_story(a: str, b: str, threshold: float = 0.7) -> bool:
    """Near-duplicate wording: most of the shorter text's bigrams are in the longer one; or half of them
    are and the two give the same two or more figures (44名运动员, 23名女运动员: one story, retold)."""
    ga, gb = bigrams(a), bigrams(b)
    if not (ga and gb):
        return False
    shared = len(ga & gb) / min(len(ga), len(gb))
    return shared >= threshold or (shared >= 0.5 and len(_figures(a) & _figures(b)) >= 2)


def _figures(text: str) -> set[str]:
    """Figures other than years (a year is shared by every story of its season)."""
    return {f for f in re.findall(r"\d+(?:\.\d+)?", text) if not re.fullmatch(r"(?:19|20)\d\d", f)}


def merge_duplicates(passages: list[Passage]) -> list[Passage]:
    """Keep the best-scored telling of each story; the others' documents are noted in `also`."""
    kept: list[Passage] = []
    for p in sorted(passages, key=lambda p: -p.score):
        twin = next((i for i, k in enumerate(kept) if same_story(p.norm, k.norm)), None)
        if twin is None:
            kept.append(p)
        elif p.doc != kept[twin].doc and p.doc not in kept[twin].also:
            kept[twin] = replace(kept[twin], also=(*kept[twin].also, p.doc))
    return kept


def cluster(vecs: np.ndarray, texts: list[str], n: int) -> list[int]:
    """Labels 0..n-1: agglomerative (Ward) on embeddings joined with TF-IDF of the words."""
    if n <= 1 or len(texts) <= n:
        return list(range(len(texts))) if len(texts) <= n else [0] * len(texts)
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(tokenizer=_content_words, lowercase=False, token_pattern=None).fit_transform(texts)
    # Centred, so what every sentence shares (embedders give Chinese text a high baseline) does not count.
    meaning = vecs - vecs.mean(axis=0)
    meaning /= np.linalg.norm(meaning, axis=1, keepdims=True) + 1e-9
    features = np.hstack([meaning, tfidf.toarray()])
    features /= np.linalg.norm(features, axis=1, keepdims=True) + 1e-9
    return AgglomerativeClustering(n_clusters=n, linkage="ward").fit_predict(features).tolist()


def _content_words(text: str) -> list[str]:
    return [w for w in jieba.lcut(text) if len(w) >= 2 and CJK_RUN.fullmatch(w)
            and w not in STOPWORDS and w not in GENERIC]


_HEADING_POS = ("n", "nz", "vn", "nt", "nr", "ns")  # nouns, verbal nouns, names


def _heading_words(text: str) -> set[str]:
    from jieba import posseg

    return {w for w, flag in posseg.lcut(text) if flag.startswith(_HEADING_POS) and len(w) >= 2
            and CJK_RUN.fullmatch(w) and w not in STOPWORDS and w not in GENERIC}


def headings(groups: list[list[Passage]], terms: list[str], max_words: int = 2) -> list[str]:
    """Each group's heading: the nouns frequent in it and rare in the others (class TF-IDF)."""
    counts: list[Counter] = []
    for g in groups:  # each word counts by the relevance of the sentences using it
        c: Counter = Counter()
        for p in g:
            for w in _heading_words(p.norm):
                c[w] += p.score
        counts.append(c)
    df = Counter(w for c in counts for w in c)
    skip = set(terms)
    out: list[str] = []
    for c, g in zip(counts, groups, strict=True):
        ranked = sorted(c, key=lambda w: (-c[w] * math.log(1 + len(groups) / df[w]) * min(len(w), 4), w))
        words: list[str] = []
        for w in ranked:
            if w in skip or any(w in x or x in w for x in words) or "、".join([*words, w]) in out:
                continue
            words.append(w)
            if len(words) == max_words:
                break
        out.append("、".join(words) or _clause(g[0].norm))
    return out


def _clause(text: str, limit: int = 12) -> str:
    first = re.split(r"[，,；;。：:]", text)[0]
    return first if len(first) <= limit else first[:limit] + "…"


def gather(rt, topic: str, limit: int, k: int = 40) -> list[Passage]:
    """The `limit` sentences most about the topic across the collection, near-duplicates merged.

    Sentences far below the best are left out, so a document with nothing on the topic adds nothing."""
    from rag.ask import retrieve_for

    retrieval = retrieve_for(rt, topic, k=k)
    passages = whole_sentences([c for hit in retrieval.hits for c in (_before(rt, hit.chunk), hit.chunk) if c])
    if not passages:
        return []
    topic_vec = rt.embedder.embed([normalize(topic).text], "query")[0]
    vecs = rt.embedder.embed([p.norm for p in passages], "passage")
    terms = topic_terms(" ".join([topic, *retrieval.variants]))  # an English topic's Chinese rendering
    if not any(t in p.norm for t in terms for p in passages):
        return []  # not one sentence uses a word of the topic: the collection does not cover it
    scored = score_passages(passages, topic_vec, vecs, terms)
    return merge_duplicates([p for p in scored if p.score >= FLOOR])[:limit]


FLOOR = 0.3  # on the 0..1 scale of score_passages: below it a sentence is about something else


def _before(rt, chunk):
    """The chunk overlapping this one's start: a chunk may begin mid-sentence, its predecessor holds the whole."""
    return next((c for c in rt.index.chunks if c.doc == chunk.doc and c.start < chunk.start < c.end), None)


def whole_sentences(chunks: list) -> list[Passage]:
    """Sentences of overlapping chunks, each kept once: of overlapping spans the longest (紧紧围绕…, not 紧围绕…)."""
    candidates = sorted((p for c in chunks for p in sentences_of(c)), key=lambda p: p.start - p.end)
    kept: list[Passage] = []
    for p in candidates:
        if not any(p.doc == k.doc and p.start < k.end and k.start < p.end for k in kept):
            kept.append(p)
    return kept


def plan(rt, topic: str, sections: int = 5, per_section: int = 4) -> list[Theme]:
    """Up to `sections` themes (fewer when the documents say little), strongest first."""
    passages = gather(rt, topic, sections * per_section)
    if not passages:
        return []
    n = min(sections, max(1, (len(passages) + 2) // 3))  # about three sentences a theme
    vecs = rt.embedder.embed([p.norm for p in passages], "passage")
    labels = cluster(vecs, [p.norm for p in passages], n)
    groups = [[p for p, label in zip(passages, labels, strict=True) if label == g] for g in sorted(set(labels))]
    groups = [sorted(g, key=lambda p: -p.score)[:per_section] for g in groups]
    groups.sort(key=lambda g: -sum(p.score for p in g[:3]))
    return [Theme(h, g) for h, g in zip(headings(groups, topic_terms(topic)), groups, strict=True)]
