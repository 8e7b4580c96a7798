"""Answering one question: retrieve, select evidence, generate, verify, or refuse.

Refusal is decided from evidence, never left to the model: if no selected sentence covers enough of
the question, or the question names a figure or year that no evidence contains (the classic near-miss:
"PM2.5 in 2022" when only 2023 is reported), the answer is a refusal before the model runs. After
generation, verification keeps only supported sentences; if none survive, the best evidence sentence is
quoted directly (the evidence was judged sufficient, so refusing would be the wrong error).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import opencc

from rag.cite import Citation, Evidence, numbers_in, select_evidence, verify_answer
from rag.clean import normalize_query
from rag.generate import Usage, stream_chat, translate_to_chinese
from rag.retrieve import Hit, is_english, search

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
    timings: dict[str, float] = field(default_factory=dict)


def question_lang(question: str) -> str:
    if is_english(question):
        return "en"
    return "zh-Hant" if _T2S.convert(question) != question else "zh"


def retrieve_for(rt, question: str, k: int | None = None) -> Retrieval:
    """Hybrid search; English questions also search with a Chinese rendering made by the small model."""
    started = time.perf_counter()
    variants: tuple[str, ...] = ()
    if rt.cfg.translate_queries and is_english(question):
        try:
            rendering = translate_to_chinese(rt.llm(rt.cfg.helper_model), question, rt.cfg)
            variants = (rendering,) if rendering else ()
        except Exception:  # translation is a bonus: without the helper model, search still runs
            variants = ()
    hits = search(rt.index, rt.embedder, question, k or rt.cfg.k, rt.cfg.candidates, variants,
                  (rt.cfg.bm25_weight, rt.cfg.dense_weight), rt.cfg.rrf_k)
    return Retrieval(hits, variants, time.perf_counter() - started)


_YEAR_OR_FIGURE = re.compile(r"\d")


def refusal_reason(question: str, variants: tuple[str, ...], evidence: list[Evidence], min_support: float) -> str:
    """Why the evidence cannot answer the question, or '' when it can."""
    if not evidence:
        return "nothing retrieved"
    best = max(e.score for e in evidence)
    if best < min_support:
        return f"evidence covers too little of the question (best {best:.2f} < {min_support})"
    asked = numbers_in(normalize_query(question)) if _YEAR_OR_FIGURE.search(question) else set()
    found = set().union(*(numbers_in(e.norm) for e in evidence))
    if asked - found:
        return "the question names a figure or year that no evidence contains"
    return ""


SYSTEM = {
    "zh": "你是严谨的资料问答助手。只根据编号资料回答问题，用中文写1到3句，每句末尾用[编号]标出依据，"
          "名称和数字必须与资料完全一致。",
    "en": "You answer questions strictly from the numbered Chinese sources. Write 1 to 3 short English "
          "sentences. End every sentence with its source number like [1]. Keep Chinese names and all "
          "numbers exactly as in the sources.",
}


def build_messages(question: str, evidence: list[Evidence], lang: str) -> list[dict]:
    """Instruction first (a fixed prefix the KV cache can reuse), then evidence, then the question."""
    sources = "\n".join(f"[{i}] {e.norm}" for i, e in enumerate(evidence, 1))
    if lang == "en":
        user = f"Sources:\n{sources}\n\nQuestion: {question}\nAnswer in English, citing [n]:"
    else:
        user = f"资料：\n{sources}\n\n问题：{_T2S.convert(question)}\n回答（每句标注[编号]）："
    return [{"role": "system", "content": SYSTEM["en" if lang == "en" else "zh"]},
            {"role": "user", "content": user}]


def extractive(evidence: list[Evidence], lang: str) -> str:
    """Fallback answer: the best evidence sentence, quoted."""
    quote = evidence[0].norm
    if lang == "en":
        return f"The documents state: “{quote}” [1]"
    return f"资料显示：{quote}[1]"


def answer_stream(rt, question: str, model: str | None = None) -> Iterator[str | Answer]:
    """Yield raw text pieces as the model writes them, then the final verified Answer."""
    cfg = rt.cfg
    started = time.perf_counter()
    lang = question_lang(question)
    retrieval = retrieve_for(rt, question)
    queries = [normalize_query(question), *(normalize_query(v) for v in retrieval.variants)]
    evidence = select_evidence(retrieval.hits, queries, cfg.evidence_sentences)
    result = Answer(question, "", True, [], lang, retrieval, evidence)
    result.timings["retrieval_s"] = round(retrieval.seconds, 3)
    reason = refusal_reason(question, retrieval.variants, evidence, cfg.min_support)
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
    verified = verify_answer(result.draft, evidence, cfg.min_support)
    if not verified.citations:
        verified = verify_answer(extractive(evidence, lang), evidence, cfg.min_support)
        result.reason = "model answer unsupported; quoted the best evidence"
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


def answer(rt, question: str, model: str | None = None) -> Answer:
    final = None
    for item in answer_stream(rt, question, model):
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
        "timings": {**a.timings, "prompt_tokens": a.usage.prompt_tokens, "completion_tokens": a.usage.completion_tokens},
    }
