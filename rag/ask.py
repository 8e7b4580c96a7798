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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import opencc

from rag.attribute import core, is_about, question_names
from rag.cite import (
    Citation,
    Evidence,
    Verified,
    canonical_measure,
    figures_in,
    numbers_in,
    page_head,
    select_evidence,
    strip_markers,
    verify_answer,
)
from rag.clean import normalize_query
from rag.generate import Usage, stream_chat, translate_to_chinese
from rag.models import ModelError
from rag.retrieve import Hit, asks_about_page, is_english, search, with_page_heads
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
    """Hybrid search. The embedder is multilingual, so an English question is embedded as it is; the
    corpus's proper names its romanised words spell (Yingjing -> 荥经) and any Chinese it already holds are
    searched as a variant (BM25 matches names exactly). A Chinese rendering by the generator is a switch,
    off: it did not pay for its second per question (README "Retrieval")."""
    started = time.perf_counter()
    variants: tuple[str, ...] = ()
    if is_english(question):
        names = romanised_names(question, rt.index.names) if rt.cfg.pinyin_names else {}
        question_zh = question
        for latin, words in names.items():  # the generator garbles names (荥经 -> 西藏): give it the corpus's
            question_zh = question_zh.replace(latin, words[0])
        keywords = [w for words in names.values() for w in words] + _CJK_SPAN.findall(question)
        variants = (" ".join(dict.fromkeys(keywords)),) if keywords else ()
        if rt.cfg.translate_queries:
            try:
                rendering = translate_to_chinese(rt.llm(rt.cfg.translator, role="translate"), question_zh, rt.cfg)
                variants = (*variants, rendering) if rendering else variants
            except ModelError as exc:  # translation is a bonus: without the model, search still runs
                log.warning("no translation of English questions: %s", exc)
    hits = search(rt.index, rt.embedder, question, k or rt.cfg.k, rt.cfg.candidates, variants,
                  (rt.cfg.bm25_weight, rt.cfg.dense_weight), rt.cfg.rrf_k, rt.store,
                  rt.cfg.bm25_weight_en if is_english(question) else None)
    if asks_about_page(question):
        hits = with_page_heads(rt.index, hits, k or rt.cfg.k)
    return Retrieval(hits, variants, time.perf_counter() - started)


_CJK_SPAN = re.compile(r"[\u3400-\u9fff]{2,}")
_YEAR_OR_FIGURE = re.compile(r"\d")
_ASKS_FIGURE = re.compile(r"多少|几[个条项家所次年位棵座亩万亿]|几成|比例|占比|百分之|how (?:many|much|large|big|long|high)|"
                          r"what (?:percentage|share|proportion|rate|number|amount)|by how much", re.I)


_FIGURE = re.compile(r"\d|[零一二两三四五六七八九十百千万亿]+[个条项家所次年位棵株座亩人户倍成]")


def asked_names(rt, question: str, lang: str) -> dict[str, bool]:
    """The places a question asks about, in corpus spelling, each with whether it is surely a place
    (rag.attribute.question_names); an English question's come from pinyin, sure when a place noun
    follows ("Gulin County")."""
    if lang != "en":
        return question_names(normalize_query(question))
    spelled = {core(w): bool(re.search(rf"\b{re.escape(latin)}(?:'s)?\s+{_PLACE_NOUN}", question, re.I))
               for latin, words in romanised_names(question, rt.index.names).items() for w in words}
    return {**spelled, **question_names(" ".join(_CJK_SPAN.findall(question)))}


def about_any(rt, names: dict[str, bool]) -> Callable[[Evidence], bool]:
    """Keeps evidence about one of the asked places (rag.attribute.is_about, on the whole document)."""
    def keep(ev: Evidence) -> bool:
        view = rt.document_view(ev.doc)
        return any(is_about(name, view, ev.start, ev.end, sure) for name, sure in names.items())
    return keep


_PLACE_NOUN = r"(?:county|district|city|town|township|village|province|prefecture|municipality)\b"


def asks_for_figure(question: str) -> bool:
    return bool(_ASKS_FIGURE.search(_T2S.convert(question)))


def states_figure(text: str) -> bool:
    """Digits, or Chinese numerals with a measure word (近千人, 三个)."""
    return bool(_FIGURE.search(strip_markers(text)))


def states_amount(text: str) -> bool:
    """A figure that is not only a date (5月4日 does not answer 补贴标准是多少)."""
    dated = {"年", "月", "日"}
    amounts = [m for measures in figures_in(text).values() for m in measures if m not in dated]
    return bool(amounts) or bool(_FIGURE.search(re.sub(r"\d+[年月日]", "", text)))


def refusal_reason(question: str, variants: tuple[str, ...], evidence: list[Evidence], min_score: float) -> str:
    """Why the evidence cannot answer the question, or '' when it can."""
    if not evidence:
        return "nothing retrieved"
    best = max(e.score for e in evidence)
    if best < min_score:
        return f"evidence covers too little of the question (best {best:.2f} < {min_score})"
    asked = numbers_in(normalize_query(question)) if _YEAR_OR_FIGURE.search(question) else set()
    # ...in a sentence about the question, not in a dateline or another document's aside
    found = set().union(*(numbers_in(e.norm) for e in evidence if e.score >= 0.5 * best))
    if asked - found:
        return "the question names a figure or year that no evidence contains"
    measure = asked_measure(question)
    top_two = sorted(evidence, key=lambda e: -e.score)[:2]
    if measure and not any(measure in measures_in(e.norm) for e in top_two):
        return f"the question asks for a figure in {measure} and the best evidence gives none"
    return ""


_ASKED_MEASURE = re.compile(r"(?<![第哪])(?:多少|几)[亿万千百]?([^\W\d])(人?)")  # not 第几名, 哪几种
_ASKED_SHARE = re.compile(r"比例|占比|百分之|百分比|percentage|what share|what proportion", re.I)
_CN_FIGURE = re.compile(r"[零一二两三四五六七八九十百千万亿几]+[余多]?(.)")


def asked_measure(question: str) -> str:
    """The measure word a figure question asks for ('个' for 多少个, '%' for 占比), '' if none is named."""
    text = normalize_query(question)
    if _ASKED_SHARE.search(text):
        return "%"
    m = _ASKED_MEASURE.search(text)
    if not m:
        return ""
    return "人" if m.group(2) and m.group(1) == "个" else canonical_measure(m.group(1))  # 几个人 counts 人


def measures_in(text: str) -> set[str]:
    """Measure words written after figures in the text, digits or Chinese numerals (三个, 近千人)."""
    found = {m for measures in figures_in(text).values() for m in measures}
    found |= {canonical_measure(ch) for ch in _CN_FIGURE.findall(text)}
    if re.search(r"%|％|百分之|\d成", text):
        found.add("%")
    return found - {""}


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
        quote = ev.norm.strip("。；;，,、：: ")
        parts.append(f"“{quote}” [{i}]" if lang == "en" else f"{quote}[{i}]。")
        citations.append(Citation(i, ev.doc, ev.title, ev.start, ev.end, ev.quote))
    text = ("The documents state: " + " ".join(parts)) if lang == "en" else "资料显示：" + "".join(parts)
    return Verified(text, citations, [], 0)


def answer_stream(rt, question: str, model: str | None = None, retrieval: Retrieval | None = None,
                  strict: bool = True, lang: str | None = None, part_of: str = "",
                  names: dict[str, bool] | None = None, k: int | None = None) -> Iterator[str | Answer]:
    """Yield raw text pieces as the model writes them, then the final verified Answer.

    strict=False is for briefings, where the "question" is a broad topic asked of passages already chosen
    per document: no refusal for low question coverage, and the best evidence is quoted if the model's
    text fails verification. Verification itself is never relaxed. `lang`, `part_of` and `names` are set
    when this answers one half of a paired question (the half may be a Chinese rendering of an English
    question; `names` are the places the half asks about)."""
    cfg = rt.cfg
    started = time.perf_counter()
    lang = lang or question_lang(question)
    split = strict and retrieval is None and not part_of
    parts = two_questions(question, lambda q: asked_names(rt, q, lang)) if split else []
    if split and not parts:
        parts = sub_questions(question) if lang != "en" else []
    if split and lang == "en" and not parts:  # an English pair is found in its Chinese rendering
        retrieval = retrieve_for(rt, question, k)
        parts = sub_questions(retrieval.variants[-1]) if retrieval.variants else []
    if parts:
        yield from _answer_parts(rt, question, parts, model, lang, started, k)
        return
    retrieval = retrieval or retrieve_for(rt, question, k)
    queries = [normalize_query(question), *(normalize_query(v) for v in retrieval.variants)]
    if lang == "en" and retrieval.variants:
        # English words never occur in Chinese sentences: score by the Chinese renderings, names and
        # rendering as one query (a bare name would make every sentence naming the place a perfect match).
        queries = [" ".join(queries[1:])]
    names = (asked_names(rt, question, lang) if names is None else names) if strict else {}
    keep = about_any(rt, names) if names else None
    evidence = select_evidence(retrieval.hits, queries, cfg.evidence_sentences, keep)
    if strict and asks_about_page(question) and retrieval.hits:
        # Nothing in "who wrote it" matches a byline's words: the top page's head is the evidence.
        head = [e for e in page_head(retrieval.hits[0].chunk, cfg.min_evidence_score) if keep is None or keep(e)]
        evidence = (head + [e for e in evidence if e not in head])[:cfg.evidence_sentences]
    result = Answer(question, "", True, [], lang, retrieval, evidence)
    result.timings["retrieval_s"] = round(retrieval.seconds, 3)
    reason = refusal_reason(question, retrieval.variants, evidence, cfg.min_evidence_score if strict else 0.0)
    if names and not evidence and retrieval.hits:
        reason = f"no retrieved sentence is about {'/'.join(names)}"
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
    best = evidence[0]
    measure = asked_measure(question)
    best_holds = measure in measures_in(best.norm) if measure else states_amount(best.norm)
    if figure and not states_figure(verified.answer):
        verified = verify_answer("", evidence, cfg.min_support, question)
    weaker = verified.citations and _cited_score(verified, evidence) < 0.7 * best.score
    if figure and best_holds and weaker and lang != "en":
        # The figure came from a clearly weaker sentence (another place, year or measure) than the best one.
        # (Not for English questions: their evidence is ranked through a machine rendering, less surely.)
        verified = verify_answer("", evidence, cfg.min_support, question)
    if not verified.citations:
        # The model's text did not survive. Quote the best evidence when it is strong enough, or holds the
        # figure asked for (the small model often restates the question without it); otherwise refuse.
        # English evidence is ranked through a machine rendering, so its scores run lower.
        strong = best.score >= (cfg.quote_fallback_score_en if lang == "en" else cfg.quote_fallback_score)
        if (strong or not strict or figure) and (not figure or best_holds):
            verified = extractive(evidence, lang, 1 if strict else 2)
            result.reason = "model answer unsupported; quoted the best evidence"
        else:
            result.reason = "no answer sentence is supported by the evidence"
    result.support = _cited_score(verified, evidence)
    if strict and verified.citations and result.support < cfg.min_cited_score and lang != "en":
        # The answer leans on sentences about something else (another place, year or measure).
        verified = verify_answer("", evidence, cfg.min_support, question)
        result.reason = f"cited evidence covers too little of the question ({result.support:.2f})"
    result.dropped = verified.dropped
    text = verified.answer
    if lang == "en" and verified.citations and not result.reason:
        text = with_quotes(text, verified, evidence)
    if lang == "zh-Hant":
        text = _S2T.convert(text)
    result.answer, result.citations, result.refused = text, verified.citations, not verified.citations
    if result.refused:
        result.answer = REFUSAL[lang]
    result.timings.update({"ttft_s": round(retrieval.seconds + usage.ttft_s, 3), "generate_s": round(usage.total_s, 3),
                           "total_s": round(time.perf_counter() - started, 3),
                           "tokens_per_s": round(usage.tokens_per_s, 2)})
    yield result


def _cited_score(verified: Verified, evidence: list[Evidence]) -> float:
    cited = {(c.doc, c.start, c.end) for c in verified.citations}
    return max((e.score for e in evidence if (e.doc, e.start, e.end) in cited), default=0.0)


def with_quotes(text: str, verified: Verified, evidence: list[Evidence]) -> str:
    """An English answer followed by the Chinese it rests on, so names and figures are there exactly."""
    by_span = {(e.doc, e.start, e.end): e.norm for e in evidence}
    quotes = " ".join(f"[{c.n}] “{by_span.get((c.doc, c.start, c.end), c.quote).rstrip('。；;，, ')}”"
                      for c in verified.citations)
    return f"{text}\nSources: {quotes}"


# "A和B在…各自/分别…" and "A的…,和B的…,各是多少": one question about two places, usually two documents.
_PAIR = re.compile(r"^(?P<a>[^,，、和与跟及]{2,12}?)(?:和|与|跟|及|同)(?P<b>[^,，、和与跟及]{2,12}?)"
                   r"(?P<rest>(?:在|的|都|各自|分别|各|,|，).*)$")
_LISTED_PAIR = re.compile(r"^(?P<a>[^,，]{4,30}?)[,，](?:和|以及|与)(?P<b>[^,，]{4,30}?)[,，](?P<rest>(?:各|分别).*)$")
_EACH = re.compile(r"各自|分别|各是|各为|都")


class Part(NamedTuple):
    subject: str  # what this half asks about: 江源区, or 乙区新增的企业数; '' to find its names anew
    question: str


def sub_questions(question: str) -> list[Part]:
    """The two single-place questions inside a paired one, or [] when the question is not paired.

    A small model given evidence about two places answers for one of them; asked twice, once per place,
    it answers both. Only explicit pairs are split ("both", "each", "respectively")."""
    text = normalize_query(question)
    if not _EACH.search(text):
        return []
    for pattern in (_LISTED_PAIR, _PAIR):
        m = pattern.match(text)
        if m:
            rest = _EACH.sub("", m["rest"]).lstrip(",， ")
            return [Part(m["a"], m["a"] + rest), Part(m["b"], m["b"] + rest)]
    return []


_JOINED = re.compile(r"[,，;；]\s*(?:and\s+|以及|还有)?(?=(?:what|how|which|who|when|where)\b)|[?？]\s*(?=\S)", re.I)
_ASKS = re.compile(r"\b(?:what|how|which|who|when|where|why)\b|什么|多少|哪|几|如何|怎样|怎么|是否", re.I)


def two_questions(question: str, names_of: Callable[[str], dict[str, bool]]) -> list[Part]:
    """Two questions written as one ("What does A aim for by 2025, and what target does B set?"), split
    only when each half asks something and names a place of its own (so "…, and what rate did it reach?"
    stays whole: its second half leans on the first)."""
    pieces = [p.strip(" ,，;；") for p in _JOINED.split(question.strip())]
    pieces = [p for p in pieces if p.strip(" ?？")]
    if len(pieces) != 2 or not all(_ASKS.search(p) for p in pieces):
        return []
    names = [names_of(p) for p in pieces]
    if not all(names) or set(names[0]) == set(names[1]):
        return []
    end = "?" if is_english(question) else "？"
    return [Part("", p if p[-1] in "?？" else p + end) for p in pieces]


_SHORT_SUBJECT = re.compile(r"^[\u4e00-\u9fff]{2,6}$")


def subject_names(subject: str) -> dict[str, bool]:
    """Names in one half's subject; a short subject jieba does not know (生态城) is itself the name."""
    names = question_names(subject)
    return names or ({subject: True} if _SHORT_SUBJECT.match(subject) else {})


def _answer_parts(rt, question: str, parts: list[Part], model: str | None, lang: str,
                  started: float, k: int | None = None) -> Iterator[str | Answer]:
    """Answer each part on its own, then join the answers and renumber their citations."""
    answers: list[Answer] = []
    for i, part in enumerate(parts):
        if i:
            yield "\n"
        for item in answer_stream(rt, part.question, model, lang=lang, part_of=question,
                                  names=subject_names(part.subject) if part.subject else None, k=k):
            if isinstance(item, Answer):
                answers.append(item)
            else:
                yield item
    kept = [a for a in answers if not a.refused]
    texts, citations = [], []
    for a in kept:
        offset = len(citations)
        texts.append(("\n" if texts and lang == "en" else "") + _MARKER_N.sub(lambda m, o=offset: f"[{int(m.group(1)) + o}]", a.answer))
        citations += [Citation(c.n + offset, c.doc, c.title, c.start, c.end, c.quote) for c in a.citations]
    first = answers[0]
    result = Answer(question, "".join(texts), not kept, citations, lang,
                    Retrieval([h for a in answers for h in a.retrieval.hits],
                              tuple(v for a in answers for v in a.retrieval.variants),
                              sum(a.retrieval.seconds for a in answers)),
                    [e for a in answers for e in a.evidence], first.usage, "\n".join(a.draft for a in answers),
                    [d for a in answers for d in a.dropped], "; ".join(a.reason for a in answers if a.reason),
                    max(a.support for a in answers))
    if result.refused:  # each part was written in `lang` already (Traditional included)
        result.answer = REFUSAL[lang]
    result.timings = {**first.timings, "total_s": round(time.perf_counter() - started, 3), "parts": len(parts)}
    yield result


_MARKER_N = re.compile(r"\[(\d{1,2})\]")


def answer(rt, question: str, model: str | None = None, retrieval: Retrieval | None = None,
           strict: bool = True, k: int | None = None) -> Answer:
    final = None
    for item in answer_stream(rt, question, model, retrieval, strict, k=k):
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
