"""Answering one question: retrieve, select evidence, generate, verify, or refuse.

Refusal is decided from evidence, never left to the model: if no selected sentence covers enough of
the question, or the question names a figure or year that no evidence contains (the classic near-miss:
"PM2.5 in 2022" when only 2023 is reported), the answer is a refusal before the model runs. After
generation, verification keeps only supported sentences; if none survive, the best evidence sentence is
quoted directly (the evidence was judged sufficient, so refusing would be the wrong error).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import opencc

from rag.cite import Citation, Evidence, Verified, numbers_in, select_evidence, strip_markers, verify_answer
from rag.clean import normalize_query
from rag.generate import Usage, stream_chat, translate_to_chinese
from rag.models import ModelError
from rag.retrieve import Hit, is_english, search
from rag.tokens import romanised_names

log = logging.getLogger("rag")
_S2T = opencc.OpenCC("s2t")
_T2S = opencc.OpenCC("t2s")

REFUSAL = {"en": "The documents do not say.", "zh": "资料中没有找到这个问题的答案。",
           "zh-Hant": "資料中沒有找到這個問題的答案。"}


@dataclass
class Retrieval:
    hits: list[Hit]
    variants: tuple[str, ...]
    seconds: float


@dataclass
class Answer:
    question: str
    answer: str
    refused: bool
    citations: list[Citation]
    lang: str
    retrieval: Retrieval
    evidence: list[Evidence] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    draft: str = ""  # the model's raw text, before verification
    dropped: list[str] = field(default_factory=list)
    reason: str = ""
    support: float = 0.0  # best question coverage among the evidence the answer cites
    timings: dict[str, float] = field(default_factory=dict)


def question_lang(question: str) -> str:
    if is_english(question):
        return "en"
    return "zh-Hant" if _T2S.convert(question) != question else "zh"


def retrieve_for(rt, question: str, k: int | None = None) -> Retrieval:
    """Hybrid search; English questions also search with a Chinese rendering made by the small model."""
    started = time.perf_counter()
    variants: tuple[str, ...] = ()
    if is_english(question):
        names = romanised_names(question, rt.index.names)
        for latin, words in names.items():
            question_zh = question.replace(latin, words[0])
        variants = (" ".join(w for words in names.values() for w in words),) if names else ()
        if rt.cfg.translate_queries:
            try:
                rendering = translate_to_chinese(rt.llm(rt.cfg.translator), question_zh if names else question, rt.cfg)
                variants = (*variants, rendering) if rendering else variants
            except ModelError as exc:  # translation is a bonus: without the model, search still runs
                log.warning("no translation of English questions: %s", exc)
    hits = search(rt.index, rt.embedder, question, k or rt.cfg.k, rt.cfg.candidates, variants,
                  (rt.cfg.bm25_weight, rt.cfg.dense_weight), rt.cfg.rrf_k, rt.store)
    return Retrieval(hits, variants, time.perf_counter() - started)


_YEAR_OR_FIGURE = re.compile(r"\d")
_ASKS_FIGURE = re.compile(r"多少|几[个条项家所次年位棵座亩万亿]|几成|比例|占比|百分之|how (?:many|much|large|big|long|high)|"
                          r"what (?:percentage|share|proportion|rate|number|amount)|by how much", re.I)


_FIGURE = re.compile(r"\d|[零一二两三四五六七八九十百千万亿]+[个条项家所次年位棵株座亩人户倍成]")


def asks_for_figure(question: str) -> bool:
    return bool(_ASKS_FIGURE.search(_T2S.convert(question)))


def states_figure(text: str) -> bool:
    """Digits, or Chinese numerals with a measure word (近千人, 三个)."""
    return bool(_FIGURE.search(strip_markers(text)))


def refusal_reason(question: str, variants: tuple[str, ...], evidence: list[Evidence], min_score: float) -> str:
    """Why the evidence cannot answer the question, or '' when it can."""
    if not evidence:
        return "nothing retrieved"
    best = max(e.score for e in evidence)
    if best < min_score:
        return f"evidence covers too little of the question (best {best:.2f} < {min_score})"
    asked = numbers_in(normalize_query(question)) if _YEAR_OR_FIGURE.search(question) else set()
    found = set().union(*(numbers_in(e.norm) for e in evidence))
    if asked - found:
        return "the question names a figure or year that no evidence contains"
    return ""


SYSTEM = ("You answer questions using only the numbered sources. Copy names and numbers exactly from the "
          "sources. End every sentence with the number of its source in brackets, like [1]. If the sources "
          "do not contain the answer, say so.")
# One worked example, fixed, so it sits in the cached prompt prefix; invented place names so nothing leaks.
EXAMPLE = [
    ("资料：\n[1] 白石镇2020年新建污水管网18公里。\n[2] 白石镇共有茶园3200亩,茶叶年产值1.6亿元。\n\n问题：白石镇的茶叶年产值是多少？",
     "白石镇茶叶年产值1.6亿元[2]。"),
    ("Sources:\n[1] 白石镇2020年新建污水管网18公里。\n[2] 白石镇共有茶园3200亩。\n\n"
     "Question: How long is the new sewage network in Baishi town?\nAnswer in English.",
     "Baishi town (白石镇) built 18 km of new sewage pipes in 2020 [1]."),
]


def build_messages(question: str, evidence: list[Evidence], lang: str) -> list[dict]:
    """Fixed instruction and example first (a prefix the KV cache reuses), then evidence and question."""
    sources = "\n".join(f"[{i}] {e.norm}" for i, e in enumerate(evidence, 1))
    if lang == "en":
        user = f"Sources:\n{sources}\n\nQuestion: {question}\nAnswer in English."
    else:
        user = f"资料：\n{sources}\n\n问题：{_T2S.convert(question)}"
    messages = [{"role": "system", "content": SYSTEM}]
    for ask, reply in EXAMPLE:
        messages += [{"role": "user", "content": ask}, {"role": "assistant", "content": reply}]
    return [*messages, {"role": "user", "content": user}]


def extractive(evidence: list[Evidence], lang: str, n: int = 1) -> Verified:
    """Fallback answer: the best evidence sentences, quoted whole (so they are supported by construction)."""
    parts, citations = [], []
    for i, ev in enumerate(evidence[:n], 1):
        quote = ev.norm.rstrip("。；;，, ")
        parts.append(f"“{quote}” [{i}]" if lang == "en" else f"{quote}[{i}]。")
        citations.append(Citation(i, ev.doc, ev.title, ev.start, ev.end, ev.quote))
    text = ("The documents state: " + " ".join(parts)) if lang == "en" else "资料显示：" + "".join(parts)
    return Verified(text, citations, [], 0)


def answer_stream(rt, question: str, model: str | None = None, retrieval: Retrieval | None = None,
                  strict: bool = True) -> Iterator[str | Answer]:
    """Yield raw text pieces as the model writes them, then the final verified Answer.

    strict=False is for briefings, where the "question" is a broad topic asked of passages already chosen
    per document: no refusal for low question coverage, and the best evidence is quoted if the model's
    text fails verification. Verification itself is never relaxed."""
    cfg = rt.cfg
    started = time.perf_counter()
    lang = question_lang(question)
    retrieval = retrieval or retrieve_for(rt, question)
    queries = [normalize_query(question), *(normalize_query(v) for v in retrieval.variants)]
    if lang == "en" and retrieval.variants:
        queries = queries[1:]  # English words never occur in Chinese sentences: score by the Chinese renderings
    evidence = select_evidence(retrieval.hits, queries, cfg.evidence_sentences)
    result = Answer(question, "", True, [], lang, retrieval, evidence)
    result.timings["retrieval_s"] = round(retrieval.seconds, 3)
    reason = refusal_reason(question, retrieval.variants, evidence, cfg.min_evidence_score if strict else 0.0)
    if reason:
        result.answer, result.reason = REFUSAL[lang], reason
        result.timings["total_s"] = round(time.perf_counter() - started, 3)
        yield result
        return
    llm = rt.llm(model or cfg.generator)
    usage = Usage()
    pieces = []
    for piece in stream_chat(llm, build_messages(question, evidence, lang), cfg, usage):
        pieces.append(piece)
        yield piece
    result.usage, result.draft = usage, "".join(pieces)
    verified = verify_answer(result.draft, evidence, cfg.min_support, question)
    figure = strict and asks_for_figure(question)
    if figure and not states_figure(verified.answer):
        verified = verify_answer("", evidence, cfg.min_support, question)
    if not verified.citations:
        # The model's text did not survive. Quote the best evidence when it is strong enough (and holds a
        # figure if one is asked for); otherwise refuse.
        best = evidence[0]
        if (best.score >= cfg.quote_fallback_score or not strict) and (not figure or states_figure(best.norm)):
            verified = extractive(evidence, lang, 1 if strict else 2)
            result.reason = "model answer unsupported; quoted the best evidence"
        else:
            result.reason = "no answer sentence is supported by the evidence"
    cited = {(c.doc, c.start, c.end) for c in verified.citations}
    result.support = max((e.score for e in evidence if (e.doc, e.start, e.end) in cited), default=0.0)
    if strict and verified.citations and result.support < cfg.min_cited_score:
        # The answer leans on sentences about something else (another place, year or measure).
        verified = verify_answer("", evidence, cfg.min_support, question)
        result.reason = f"cited evidence covers too little of the question ({result.support:.2f})"
    result.dropped = verified.dropped
    text = verified.answer
    if lang == "zh-Hant":
        text = _S2T.convert(text)
    result.answer, result.citations, result.refused = text, verified.citations, not verified.citations
    if result.refused:
        result.answer = REFUSAL[lang]
    result.timings.update({"ttft_s": round(retrieval.seconds + usage.ttft_s, 3), "generate_s": round(usage.total_s, 3),
                           "total_s": round(time.perf_counter() - started, 3),
                           "tokens_per_s": round(usage.tokens_per_s, 2)})
    yield result


def answer(rt, question: str, model: str | None = None, retrieval: Retrieval | None = None,
           strict: bool = True) -> Answer:
    final = None
    for item in answer_stream(rt, question, model, retrieval, strict):
        if isinstance(item, Answer):
            final = item
    assert final is not None
    return final


def answer_json(a: Answer) -> dict:
    return {
        "question": a.question, "answer": a.answer, "refused": a.refused,
        "citations": [{"n": c.n, "doc": c.doc, "start": c.start, "end": c.end, "quote": c.quote, "title": c.title}
                      for c in a.citations],
        "lang": a.lang,
        "reason": a.reason,
        "support": round(a.support, 4),
        "timings": {**a.timings, "prompt_tokens": a.usage.prompt_tokens, "completion_tokens": a.usage.completion_tokens},
    }
