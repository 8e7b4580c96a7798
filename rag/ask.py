"""Answering one question in a straight line: retrieve, select evidence, decide, generate, verify, decide.

Refusal is decided from evidence and never left to the model alone (rag/decide.py): before the model
runs, the best evidence must hold enough of what the question asks and the kind of fact it wants; after
it runs, every answer sentence must be held by the sentence it cites (rag/cite.py), and the sentences
it cites must themselves be about the question. When the model says the sources do not answer, the
answer is a refusal (never a quote in its place).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import opencc

from rag.attribute import core, is_about, question_names
from rag.cite import (
    Citation,
    Evidence,
    Verified,
    holds_word,
    numbers_in,
    page_head,
    select_evidence,
    strip_markers,
    verify_answer,
)
from rag.clean import normalize, normalize_query, readable
from rag.decide import (
    Signals,
    absent_names,
    content_words,
    coverage,
    holds_kind,
    holds_year,
    refusal,
    renamed_subject,
    word_weights,
)
from rag.generate import Usage, stream_chat, translate_to_chinese, yes_probability
from rag.index import document_frequency, writes
from rag.models import ModelError
from rag.patterns import (
    CALENDAR,
    CJK,
    CJK_SPAN,
    CN_FIGURE,
    CN_SCALE,
    DATE,
    DATE_UNITS,
    MEASURES,
    NUMBER,
    SCALE,
    SHARE,
)
from rag.question import (
    CONJUNCTIONS,
    INTERROGATIVE,
    Question,
    analyse,
    in_asked_letters,
    is_english,
    opening_subject,
    parallel,
    question_lang,
    with_subject,
)
from rag.retrieve import Hit, asks_about_page, search, with_page_heads
from rag.tokens import nouns_in, romanised_names

log = logging.getLogger("rag")
_T2S = opencc.OpenCC("t2s")
_S2TW = opencc.OpenCC("s2tw")  # Taiwan-standard characters (為, not 爲), no phrase rewriting

REFUSAL = {"en": "The documents do not say.", "zh": "资料中没有找到这个问题的答案。",
           "zh-Hant": "資料中沒有找到這個問題的答案。"}
__all__ = ["question_lang"]


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
    support: float = 0.0  # how much of the question the cited evidence holds (rag.decide.coverage)
    timings: dict[str, float] = field(default_factory=dict)
    signals: Signals | None = None
    unanswered: list[str] = field(default_factory=list)  # parts of a question asked in parts left unanswered


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


_CJK_SPAN = CJK_SPAN


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
        return bool(places_of(rt, names, ev))
    return keep


def places_of(rt, names: dict[str, bool], ev: Evidence) -> list[str]:
    """The asked places this evidence sentence is about (rag.attribute.is_about, on the whole document)."""
    view = rt.document_view(ev.doc)
    return [name for name, sure in names.items() if is_about(name, view, ev.start, ev.end, sure)]


_PLACE_NOUN = r"(?:county|district|city|town|township|village|province|prefecture|municipality)\b"




@dataclass
class Gathered:
    """Everything known about a question before the model runs."""

    question: Question
    retrieval: Retrieval
    evidence: list[Evidence]
    signals: Signals
    weights: dict[str, float]  # the question's words, weighted by rarity in the collection


def gather(rt, text: str, k: int | None = None, retrieval: Retrieval | None = None,
           names: dict[str, bool] | None = None, strict: bool = True) -> Gathered:
    """Analyse, retrieve, select evidence and measure the refusal signals."""
    lang = question_lang(text)
    question = analyse(text, asked_names(rt, text, lang) if names is None else None)
    if names is not None:
        question = Question(**{**question.__dict__, "names": names})
    if written_as_one(rt.index.chunks, question.alternatives):
        question = replace(question, alternatives=())
    retrieval = retrieval or retrieve_for(rt, text, k)
    renderings = [normalize_query(v) for v in retrieval.variants]
    queries = [" ".join(renderings)] if lang == "en" and renderings else [question.norm, *renderings]
    keep = about_any(rt, question.names) if strict and question.names else None
    meaning = similarity_to(rt, question)
    share = rt.cfg.dense_evidence_en if question.lang == "en" else rt.cfg.dense_evidence
    evidence = select_evidence(retrieval.hits, queries, rt.cfg.evidence_sentences, keep, meaning, share)
    if strict and question.about_page and retrieval.hits:
        # Nothing in "who wrote it" matches a byline's words: the top page's head is the evidence.
        head = [e for e in page_head(retrieval.hits[0].chunk, 1.0) if keep is None or keep(e)]
        evidence = (head + [e for e in evidence if e not in head])[:rt.cfg.evidence_sentences]
    words = content_words(question) + [w for r in renderings for w in content_words(analyse(r))]
    weights = word_weights(list(dict.fromkeys(words)), lambda w: document_frequency(rt.index, w))
    return Gathered(question, retrieval, evidence, measure(rt, question, evidence, weights, meaning), weights)


def similarity_to(rt, question: Question) -> Callable[[list[str]], list[float]]:
    """Cosine of the question (as a query) to each text (as a passage), rescaled so that e5's usual
    range for unrelated to matching text (about 0.7 to 0.9) spans 0 to 1."""
    vector = rt.embedder.embed([question.text.strip()[:500]], "query")[0]

    def score(texts: list[str]) -> list[float]:
        if not texts:
            return []
        cosines = rt.embedder.embed(texts, "passage") @ vector
        return [min(1.0, max(0.0, (float(c) - 0.7) / 0.2)) for c in cosines]
    return score


def measure(rt, question: Question, evidence: list[Evidence], weights: dict[str, float],
            meaning: Callable[[list[str]], list[float]]) -> Signals:
    """The refusal signals of rag/decide.py for the best evidence sentence (read with the one before)."""
    absent = absent_names(question, lambda word: writes(rt.index, word))
    if question.about_page:
        return Signals(1.0, True, 1.0, absent)
    contexts = [in_context(rt, e) for e in evidence]
    covers = [coverage(weights, c) for c in contexts]
    similar = meaning(contexts)
    signal = similar if question.lang == "en" else covers
    best = max(signal, default=0.0)
    near_best = [e for e, v in zip(evidence, signal, strict=True) if v >= 0.8 * best]
    return Signals(max(covers, default=0.0), any(holds_kind(question, e.norm) for e in near_best),
                   max(similar, default=0.0), absent)


def in_context(rt, ev: Evidence) -> str:
    """An evidence sentence with the sentence before it (where its subject is often named)."""
    view = rt.document_view(ev.doc)
    a, b = view.offset(ev.start), view.offset(ev.end)
    head = view.text[max(0, a - 160):a].rstrip("。！？!?；;\n ")
    cut = max(head.rfind(ch) for ch in "。！？!?\n")
    return head[cut + 1:] + " " + view.text[a:b]


def with_title(rt, ev: Evidence) -> str:
    """An evidence sentence in_context, then its page's title: a news page names its subject in the
    headline ("中国版《忠犬八公》…") and its sentences then say 本片 or nothing ("导演徐昂用…")."""
    return f"{in_context(rt, ev)} {normalize(ev.title).text}"


def cited_evidence(g: Gathered, verified: Verified) -> list[Evidence]:
    """The evidence sentences an answer cites."""
    cited = {(c.doc, c.start, c.end) for c in verified.citations}
    return [e for e in g.evidence if (e.doc, e.start, e.end) in cited]


def cited_coverage(rt, g: Gathered, cited: list[Evidence]) -> float:
    """How much of the question the evidence the answer cites holds, each read with_title: the relation
    check (an answer built from a sentence about something else cites a sentence that does not hold the
    question). English questions share no words with Chinese text, so theirs is measured by meaning,
    of the sentence in_context alone: a headline mixed in dilutes it (own q041 refused, measured)."""
    if g.question.about_page:
        return 1.0
    if g.question.lang == "en":
        return max(similarity_to(rt, g.question)([in_context(rt, e) for e in cited]), default=0.0)
    return max((coverage(g.weights, with_title(rt, e)) for e in cited), default=0.0)


SYSTEM = ("You answer questions using only the numbered sources. Copy names and numbers exactly from the "
          "sources. End every sentence with the number of its source in brackets, like [1]. If the sources "
          "do not contain the answer, say so.")
# Worked examples, fixed, so they sit in the cached prompt prefix; invented place names so nothing leaks.
EXAMPLE = [
    ("资料：\n[1] 白石镇2020年新建污水管网18公里。\n[2] 白石镇共有茶园3200亩,茶叶年产值1.6亿元。\n\n问题：白石镇的茶叶年产值是多少？",
     "白石镇茶叶年产值1.6亿元[2]。"),
    ("Sources:\n[1] 白石镇2020年新建污水管网18公里。\n[2] 白石镇共有茶园3200亩。\n\n"
     "Question: How long is the new sewage network in Baishi town?\nAnswer in English.",
     "Baishi town (白石镇) built 18 km of new sewage pipes in 2020 [1]."),
]
# The model saying, in its first sentence, that the sources do not answer (the system prompt asks it to).
_DECLINES = re.compile(r"没有提[到及]|未提[到及]|没有(?:找到|相关|关于|给出|说明)|无法(?:回答|确定|得知)|不包含|并未|"
                       r"(?:do|does) not (?:mention|contain|say|state|specify|provide)|no information|not mentioned|"
                       r"cannot (?:be )?(?:answer|determine)", re.I)


def unstated_subjects(rt, question: Question, evidence: list[Evidence]) -> list[str]:
    """For each evidence sentence of an English question, the asked places it is about (rag.attribute)
    without naming them: a report names its county once, paragraphs above its air-quality figure, and the
    model otherwise answers "How did 荥经 improve air quality?" from the one sentence that does write 荥经
    (its river's water). Chinese questions are shown the sentences alone: with the place shown, drcd-zht
    lost 3 correct answers (eval/HISTORY.md, thirteenth session)."""
    if question.lang != "en":
        return [""] * len(evidence)
    return ["、".join(name for name in places_of(rt, question.names, e) if name not in e.norm) for e in evidence]


def build_messages(question: Question, evidence: list[Evidence], subjects: list[str] | None = None) -> list[dict]:
    """Fixed instruction and examples first (a prefix the KV cache reuses), then evidence and question.
    Sources are shown in their own characters (Ⅱ类, ％), so the answer copies those, not a folded form;
    each after the place it is about where it does not say (`subjects`, unstated_subjects)."""
    simplified = question.lang == "zh"
    shown = [_T2S.convert(readable(e.quote)) if simplified else readable(e.quote) for e in evidence]
    shown = [f"（{s}）{text}" if s else text for s, text in zip(subjects or [""] * len(shown), shown, strict=True)]
    if question.lang == "en":
        shown = [with_english_figures(text) for text in shown]
    sources = "\n".join(f"[{i}] {text}" for i, text in enumerate(shown, 1))
    if question.lang == "en":
        user = f"Sources:\n{sources}\n\nQuestion: {question.text.strip()}\nAnswer in English."
    else:
        user = f"资料：\n{sources}\n\n问题：{question.text.strip()}"
    messages = [{"role": "system", "content": SYSTEM}]
    for ask, reply in EXAMPLE:
        messages += [{"role": "user", "content": ask}, {"role": "assistant", "content": reply}]
    return [*messages, {"role": "user", "content": user}]


def with_english_figures(text: str) -> str:
    """Chinese-scaled figures read in English ("500万" -> "5 million") in an English prompt: the 1.5B
    converts 万/亿 wrongly on its own (500万 -> 500,000, 2.3亿 -> 2.3 billion), even with the reading
    written beside them, and the verifier then rightly drops its sentence. The reading is the same value,
    so an answer copying it is held by the source's own 500万; citations still quote the source."""
    def reading(m: re.Match) -> str:
        unit = m.group(2) or ""
        if unit not in CN_SCALE:
            return m.group(0)
        value = float(m.group(1).replace(",", "")) * SCALE[unit]
        for size, word in ((1e9, "billion"), (1e6, "million")):
            if value >= size:
                return f" {value / size:,.10g} {word} "
        return f" {value:,.10g} "
    return NUMBER.sub(reading, text)


def declines(draft: str) -> bool:
    first = re.split(r"(?<=[。！？!?])|(?<=\.)\s", draft.strip(), maxsplit=1)[0]
    return bool(_DECLINES.search(first))


def extractive(evidence: list[Evidence], lang: str, n: int = 1) -> Verified:
    """Fallback answer: the best evidence sentences, quoted whole (so they are supported by construction)."""
    parts, citations = [], []
    for i, ev in enumerate(evidence[:n], 1):
        quote = readable(ev.quote).strip("。；;，,、：: ")
        parts.append(f"“{quote}” [{i}]" if lang == "en" else f"{quote}[{i}]。")
        citations.append(Citation(i, ev.doc, ev.title, ev.start, ev.end, ev.quote))
    text = ("The documents state: " + " ".join(parts)) if lang == "en" else "资料显示：" + "".join(parts)
    return Verified(text, citations, [], 0)


def states_kind(question: Question, text: str) -> bool:
    """Does the answer state the kind of fact asked (a figure, a date)? The question's own numbers (its
    year, 2023春运首日旅客发送量) are not the figure it asks for, nor is a date the answer adds ("在2022年北京冬奥会
    期间…" for 运动员数量); a share (占全市81%) does not answer a question that counts something by its
    measure word (多少个, 多少名)."""
    text = strip_markers(text)  # a citation [1] is not a figure
    if question.asks == "figure":
        if question.measure not in ("", "%"):
            text = SHARE.sub("", text)
        if question.measure not in DATE_UNITS:  # 多少年 counts years: 140年 is its figure
            text = CALENDAR.sub("", text)
        return bool(numbers_in(text) - numbers_in(question.norm)) or any(m.group(1) in MEASURES for m in CN_FIGURE.finditer(text))
    if question.asks == "date":
        return bool(DATE.search(text))
    if question.asks in ("person", "place") and question.lang != "en":
        return names_someone(question, text)
    return True


def names_someone(question: Question, text: str) -> bool:
    """Does a Chinese answer to who/where add a noun or name of its own? One that adds only a time,
    figures and verbs ("男排世锦赛将在8月26日至9月11日进行" for 在哪举办) names no one and no place."""
    norm = normalize(DATE.sub("", NUMBER.sub("", text))).text
    return any(not holds_word(question.norm, w) for w in nouns_in(norm))


def answer_stream(rt, question: str, model: str | None = None, retrieval: Retrieval | None = None,
                  strict: bool = True, lang: str | None = None, part_of: str = "",
                  names: dict[str, bool] | None = None, k: int | None = None) -> Iterator[str | Answer]:
    """Yield raw text pieces as the model writes them, then the final verified Answer.

    strict=False is for briefings, where the "question" is a broad topic asked of passages already chosen
    per document: no refusal for low question coverage, and the best evidence is quoted if the model's
    text fails verification. Verification itself is never relaxed. `part_of` and `names` are set when
    this answers one half of a paired question (`names`: the places the half asks about). `k` is a
    per-request passage count (never written into the shared Config)."""
    started = time.perf_counter()
    lang = lang or question_lang(question)
    parts = split_question(rt, question, lang, k) if strict and retrieval is None and not part_of else []
    if parts:
        yield from _answer_parts(rt, question, parts, model, lang, started, k)
        return
    g = gather(rt, question, k, retrieval, names, strict)
    if part_of:  # one side of "A和B": its facts must not come from sentences about the other side
        g.question = replace(g.question, alternatives=analyse(part_of).alternatives)
    result = Answer(question, "", True, [], lang, g.retrieval, g.evidence, signals=g.signals)
    result.timings["retrieval_s"] = round(g.retrieval.seconds, 3)
    reason = before_generating(g, rt.cfg, strict)
    if reason:
        yield finish(result, Verified("", [], [], 0), reason, started)
        return
    usage, pieces = Usage(), []
    messages = build_messages(g.question, g.evidence, unstated_subjects(rt, g.question, g.evidence))
    for piece in stream_chat(rt.llm(model or rt.cfg.generator), messages, rt.cfg, usage):
        pieces.append(piece)
        yield piece
    result.usage, result.draft = usage, "".join(pieces)
    verified, reason = after_generating(rt, g, result.draft, strict, result.timings)
    result.support = cited_coverage(rt, g, cited_evidence(g, verified))
    yield finish(result, verified, reason, started)


_CHINESE_FORM = re.compile(f"\\s*[(（][^()（）]*[{CJK}][^()（）]*[)）]")


def meaning_between(rt) -> Callable[[str, str], float]:
    """Cross-lingual similarity of an answer sentence and its cited text, rescaled like similarity_to.
    A name's Chinese form in parentheses ("Yingjing county (荥经)") is left out: the name check holds it,
    and to the embedder it would make any sentence that writes the name look like the one meant."""
    def score(sentence: str, cited: str) -> float:
        a, b = rt.embedder.embed([_CHINESE_FORM.sub("", sentence), cited], "query")
        return min(1.0, max(0.0, (float(a @ b) - 0.7) / 0.2))
    return score


def echoed_held(rt, weights: dict[str, float], names: dict[str, bool]) -> Callable[[str, list[Evidence]], float]:
    """How much of what an answer sentence repeats from the question its cited sentences hold, read with
    the sentence before and the page title; rarity-weighted like the refusal coverage. "东吴证券2021年净利润
    为1.31亿元" citing a sentence about 承销保荐收入 repeats 净利润, which that sentence never says. A word
    no chunk of the collection holds (搞, 点数) is the asker's wording, which no source could hold: not counted.
    A report names its place once, paragraphs above (rag.attribute): an asked name the cited sentence is
    attributed to counts as held."""
    known = {w: weight for w, weight in weights.items() if document_frequency(rt.index, w)[0] > 0}

    def share(sentence: str, cited: list[Evidence]) -> float:
        echoed = {w: weight for w, weight in known.items() if w in sentence}
        if not echoed:
            return 1.0
        context = " ".join(with_title(rt, e) for e in cited)
        about = dict.fromkeys(name for e in cited for name in places_of(rt, names, e))
        return coverage(echoed, " ".join([context, *about]))
    return share


def before_generating(g: Gathered, cfg, strict: bool) -> str:
    """Why the evidence cannot answer, or ''."""
    if not g.evidence:
        return "nothing retrieved" + (f" about {'/'.join(g.question.names)}" if g.question.names else "")
    if not strict:
        return ""
    return refusal(g.signals, g.question, cfg.min_coverage, cfg.min_similarity)


def after_generating(rt, g: Gathered, draft: str, strict: bool,
                     timings: dict[str, float] | None = None) -> tuple[Verified, str]:
    """The verified answer, falling back to a quote of the best evidence or to a refusal; and the reason.
    The model's own judgement of its cited sources is timed into `timings` (confirm_s)."""
    q = g.question
    if strict and declines(draft):  # the model says the sources do not answer: refused, never quoted
        return Verified("", [], [draft], 0), "the model found no answer in the sources"
    verified = verify(rt, g, draft, strict and rt.cfg.min_echo > 0)
    if not strict:  # a briefing section quotes its best evidence rather than say nothing
        if verified.citations:
            return verified, ""
        return extractive(g.evidence, q.lang, 2), "no answer sentence is held by the sentence it cites; quoted the best evidence"
    cited = cited_evidence(g, verified)
    problem = answer_problem(rt, g, draft, verified, cited)
    contexts = [in_context(rt, e) for e in cited]
    if not problem and not keeps(confidence(rt, q, contexts, timings), confirm_threshold(rt.cfg, q)):
        return Verified("", [], verified.dropped, 0), "the model, asked, finds its cited sources do not answer"
    if not problem:
        return verified, ""
    if quotable(rt, g, problem) or best_confirmed(rt, g, timings):
        return extractive(g.evidence, q.lang, 1), problem + "; quoted the best evidence"
    return Verified("", [], verified.dropped, 0), problem


def answer_problem(rt, g: Gathered, draft: str, verified: Verified, cited: list[Evidence]) -> str:
    """What is wrong with a verified answer under the strict checks, or ''. `cited`: the evidence it
    cites (cited_evidence)."""
    cfg, q = rt.cfg, g.question
    if not verified.citations:
        if cfg.min_echo > 0 and verify(rt, g, draft, False).citations:
            return "the answer restates the question about something else"
        return "no answer sentence is held by the sentence it cites"
    if not states_kind(q, verified.answer):
        return f"the answer states no {q.asks}"
    if cited_coverage(rt, g, cited) < (cfg.min_similarity if q.lang == "en" else cfg.min_cited_coverage):
        return "the cited evidence is about something else"
    if not in_the_year(rt, q, cited):
        return "the cited evidence is about another year"
    if renamed := about_another(rt, q, cited):
        return f"the cited evidence is about another {renamed}"
    return ""


def quotable(rt, g: Gathered, problem: str) -> bool:
    """The model wrote from a side sentence while the best one holds nearly all the question
    (`quote_coverage`) and is about the year asked: that one is quoted instead. Quoting the best evidence
    after any failed answer, when the model (asked apart) finds it answers, was measured and dropped
    (eval/HISTORY.md): the 1.5B says yes to near-miss sentences of unanswerable questions."""
    return (problem.endswith("something else") and g.question.lang != "en"
            and g.signals.coverage >= rt.cfg.quote_coverage and states_what_is_asked(rt, g))


def states_what_is_asked(rt, g: Gathered) -> bool:
    """Could the best evidence, quoted whole, answer? It must state the kind of fact asked (a figure, a
    date, someone for who: "中国版《忠犬八公》虽“败”犹荣" names no director) about the year asked."""
    best = g.evidence[:1]
    return bool(best) and states_kind(g.question, best[0].quote) and in_the_year(rt, g.question, best)


def confidence(rt, question: Question, contexts: list[str], timings: dict[str, float] | None) -> float | None:
    """The generator's probability that these sentences (each read in_context) answer the question
    (rag.generate.yes_probability): the relation that word overlap cannot check (README "Refusal"). Its
    own instance, so the answer prompt's cached prefix stays; seconds add up in `timings` (confirm_s).
    None when not asked: `Config.confirm_with` '' or the model missing."""
    if not rt.cfg.confirm_with or not contexts:
        return None
    try:
        llm = rt.llm(rt.cfg.confirm_with, role="confirm")
    except ModelError as exc:  # the answer stands on its other checks; say once per question why not this one
        log.warning("answer not confirmed by %s: %s", rt.cfg.confirm_with, exc)
        return None
    p, usage = yes_probability(llm, question.text, contexts)
    if timings is not None:
        timings["confirm_s"] = round(timings.get("confirm_s", 0.0) + usage.total_s, 3)
    return p


def keeps(p: float | None, threshold: float) -> bool:
    """An answer stands unless the model was asked and is less sure than `threshold`."""
    return p is None or p >= threshold


def confirm_threshold(cfg, question: Question) -> float:
    """The model's certainty an answer needs. An English sentence written from Chinese sources shares no
    words with them, so only its figures and its meaning are checked before this; the 1.5B's paraphrase
    then invents freely ("the Seljuk Turks" from a sentence on the origins of geology, asked apart: 0.64).
    Calibrated on the English questions of xquad-en and eval/qa.jsonl (README "Refusal")."""
    return cfg.min_confirm_en if question.lang == "en" else cfg.min_confirm


def best_confirmed(rt, g: Gathered, timings: dict[str, float] | None) -> bool:
    """After a failed answer, the best evidence is quoted when the model, asked apart, is nearly certain
    it answers (`quote_confirm`) and it states the kind of fact asked about the year asked. At the plain
    yes/no threshold this quoted near-misses of unanswerable questions (eval/HISTORY.md); the
    stricter threshold is calibrated on all suites (README "Refusal"). Chinese questions only: an English
    one gets an English sentence or a refusal."""
    if g.question.lang == "en" or not states_what_is_asked(rt, g):
        return False
    p = confidence(rt, g.question, [in_context(rt, g.evidence[0])], timings)
    return p is not None and p >= rt.cfg.quote_confirm


def in_the_year(rt, question: Question, evidence: list[Evidence]) -> bool:
    """Is one of these sentences, read with the one before and its page title, about the year asked
    (rag.decide.holds_year)? A quote about 2016-2019 does not answer a question about 2022."""
    return any(holds_year(question, with_title(rt, e)) for e in evidence)


def about_another(rt, question: Question, evidence: list[Evidence]) -> str:
    """When every cited sentence, read with_title, names the thing asked under another name
    (rag.decide.renamed_subject: 北京冬奥会 asked, 长野冬奥会 cited), which names it: "北京->长野". Chinese
    questions only; an English question's names are not jieba's."""
    if question.lang == "en" or not evidence:
        return ""
    renamed = [renamed_subject(question, with_title(rt, e)) for e in evidence]
    return renamed[0] if all(renamed) else ""


def verify(rt, g: Gathered, draft: str, echo: bool) -> Verified:
    """rag.cite.verify_answer with this question's checks; `echo` adds the echo check (echoed_held)."""
    cfg, q = rt.cfg, g.question
    given = " ".join([q.text, *q.names]) if q.lang == "en" else q.text  # an English question's places, as
    # the corpus writes them (Yingjing county: 荥经), are its words too
    return verify_answer(draft, g.evidence, cfg.min_support, given, meaning_between(rt), cfg.min_meaning,
                         q.alternatives, echoed_held(rt, g.weights, q.names) if echo else None, cfg.min_echo,
                         cfg.recite_margin)


def finish(result: Answer, verified: Verified, reason: str, started: float) -> Answer:
    """Render the answer in the question's script (English answers followed by their Chinese sources)."""
    text = verified.answer
    if result.lang == "en" and verified.citations and not reason:
        text = with_quotes(text, verified)
    if result.lang == "zh-Hant":
        text = _S2TW.convert(text)
    elif result.lang == "zh":
        text = _T2S.convert(text)
    result.answer, result.citations, result.refused = text, verified.citations, not verified.citations
    result.dropped, result.reason = verified.dropped, reason
    if result.refused:
        result.answer = REFUSAL[result.lang]
    usage = result.usage
    result.timings.update({"total_s": round(time.perf_counter() - started, 3)})
    if usage.completion_tokens:
        result.timings.update({"ttft_s": round(result.retrieval.seconds + usage.ttft_s, 3),
                               "generate_s": round(usage.total_s, 3), "tokens_per_s": round(usage.tokens_per_s, 2)})
    return result


QUOTES_FOLLOW = "\nSources: "  # what separates an English answer from the Chinese quotes shown after it


def with_quotes(text: str, verified: Verified) -> str:
    """An English answer followed by the Chinese it rests on, so names and figures are there exactly."""
    quotes = " ".join(f"[{c.n}] “{readable(c.quote).rstrip('。；;，, ')}”" for c in verified.citations)
    return f"{text}{QUOTES_FOLLOW}{quotes}"


def split_question(rt, question: str, lang: str, k: int | None) -> list[Part]:
    """Two questions in one, or one question about two places: each part is answered on its own."""
    parts = two_questions(question, lambda q: asked_names(rt, q, lang))
    if not parts and lang != "en":
        parts = paired_parts(analyse(question), rt.index.chunks)
    if not parts and lang == "en":  # an English pair is found in its Chinese rendering
        variants = retrieve_for(rt, question, k).variants
        parts = sub_questions(variants[-1]) if variants else []
    return [Part(p.subject, in_asked_letters(p.question, question)) for p in parts]


# "A和B在…各自/分别…" and "A的…,和B的…,各是多少": one question about two places, usually two documents.
_PAIR = re.compile(r"^(?P<a>[^,，、和与跟及]{2,12}?)(?:和|与|跟|及)(?P<b>[^,，、和与跟及]{2,12}?)"
                   r"(?P<rest>(?:在|的|都|各自|分别|各|,|，).*)$")
_LISTED_PAIR = re.compile(r"^(?P<a>[^,，]{4,30}?)[,，](?:和|以及|与)(?P<b>[^,，]{4,30}?)[,，](?P<rest>(?:各|分别).*)$")
_EACH = re.compile(r"各自|分别|各是|各为")


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


def paired_parts(question: Question, chunks: list) -> list[Part]:
    """A question asked of each side of a pair. "分别/各自" says the pair is two things, and when its sides
    are parallel words (中国和美国, 女子和男子) each stands in for the pair, so what the sides share
    (2022年一季度…的经济增长率) stays in both halves; otherwise the sides are whole clauses (sub_questions).
    Without 分别, a pair most pages write joined (速度与激情) is one title, not two things."""
    each = bool(_EACH.search(question.norm))
    places = sub_questions(question.text)
    if places and all(subject_names(p.subject) for p in places):
        return places
    if each and len(question.alternatives) == 2 and parallel(*question.alternatives):
        return alternative_parts(question)
    if places or (not each and written_as_one(chunks, question.alternatives)):
        return places
    return alternative_parts(question)


def alternative_parts(question: Question) -> list[Part]:
    """"A和B的Z" asked as "A的Z" and "B的Z" (特斯拉和比亚迪交付量, 时间和地点): given evidence for both, a
    small model answers one; asked once per side, it answers each from a sentence about that side."""
    if len(question.alternatives) != 2:
        return []
    a, b = question.alternatives
    for conj in CONJUNCTIONS:
        joined = f"{a}{conj}{b}"
        if joined in question.norm:
            rest = _EACH.sub("", question.norm)
            return [Part("", rest.replace(joined, a, 1)), Part("", rest.replace(joined, b, 1))]
    return []


def written_as_one(chunks: list, alternatives: tuple[str, ...]) -> bool:
    """"速度与激情" is one title, not two things asked about: most chunks holding both sides write them
    joined. Two things compared (特斯拉和比亚迪) are mostly written apart."""
    if len(alternatives) != 2:
        return False
    a, b = alternatives
    both = [c.text for c in chunks if a in c.text and b in c.text]
    joined = sum(any(f"{a}{conj}{b}" in text for conj in CONJUNCTIONS) for text in both)
    return bool(both) and 2 * joined >= len(both)


_JOINED = re.compile(r"[,，;；]\s*(?:and\s+|以及|还有)?(?=(?:what|how|which|who|when|where)\b)|[?？]\s*(?=\S)", re.I)
_JOINED_ZH = re.compile(r"[,，;；?？]\s*(?=\S)")


def two_questions(question: str, names_of: Callable[[str], dict[str, bool]]) -> list[Part]:
    """Two questions written as one ("What does A aim for by 2025, and what target does B set?"), split
    only when each half asks something and names a place of its own (so "…, and what rate did it reach?"
    stays whole: its second half leans on the first). A Chinese second half that names nothing asks
    about the first half's subject ("邓伦逃税多少钱，被罚了多少钱": 邓伦被罚了多少钱)."""
    english = is_english(question)
    pieces = [p.strip(" ,，;；") for p in (_JOINED if english else _JOINED_ZH).split(question.strip())]
    pieces = [p for p in pieces if p.strip(" ?？")]
    if len(pieces) != 2 or not all(INTERROGATIVE.search(p) for p in pieces):
        return []
    names = [names_of(p) for p in pieces]
    subject = opening_subject(pieces[0]) if not english and not names[1] else ""
    if subject:
        pieces[1] = with_subject(pieces[1], subject)
    elif not all(names) or set(names[0]) == set(names[1]):
        return []
    end = "?" if english else "？"
    return [Part("", p if p[-1] in "?？" else p + end) for p in pieces]


_SHORT_SUBJECT = re.compile(f"^[{CJK}]{{2,6}}$")


def subject_names(subject: str) -> dict[str, bool]:
    """Names in one half's subject; a short subject jieba does not know (生态城) is itself the name."""
    names = question_names(subject)
    return names or ({subject: True} if _SHORT_SUBJECT.match(subject) else {})


_MARKER_N = re.compile(r"\[(\d{1,2})\]")


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
    yield joined(question, answers, lang, started)


def joined(question: str, answers: list[Answer], lang: str, started: float) -> Answer:
    """One answer from the answers to each part, citations renumbered in order."""
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
                    max(a.support for a in answers), signals=first.signals)
    if result.refused:  # each part was written in `lang` already (Traditional included)
        result.answer = REFUSAL[lang]
    else:  # an answer to one half must not read as the whole answer: say which part the documents leave open
        result.unanswered = [a.question for a in answers if a.refused]
    result.timings = {**first.timings, "total_s": round(time.perf_counter() - started, 3), "parts": len(answers)}
    return result


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
        "signals": a.signals.__dict__ if a.signals else {},
        "timings": {**a.timings, "prompt_tokens": a.usage.prompt_tokens, "completion_tokens": a.usage.completion_tokens},
        "unanswered": a.unanswered,
    }
