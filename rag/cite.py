"""Evidence in, verified citations out: the part that makes a small model's answer trustworthy.

1. Evidence selection cuts the retrieved chunks into sentences (long ones into clause windows), scores
   each by how much of the question it covers, and keeps a few: short prompts, exact quotes.
2. Verification reads the model's answer sentence by sentence. A sentence stands only if the evidence
   it cites covers it (character bigram overlap on normalised text) and holds every number it states
   (after normalising 亿/万/%/million forms). A sentence citing the wrong source is re-cited to the one
   that does support it; a sentence nothing supports is dropped. Models invent; this removes it.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import cn2an
import jieba

from rag.chunk import Chunk
from rag.clean import normalize, sentence_spans
from rag.patterns import (
    CJK_RUN,
    CJK_SPAN,
    CLAUSE_MARKS,
    CN_FIGURE,
    DATE_UNITS,
    LATIN,
    LATIN_WORD,
    MEASURES,
    NUMBER,
    PLACE_SUFFIX,
    SAME_MEASURE,
    SCALE,
)
from rag.question import is_english, without_yes_no
from rag.tokens import is_proper_name, names_in, nouns_in, tokenize

MAX_QUOTE_CHARS = 140


@dataclass(frozen=True)
class Evidence:
    """One numbered source sentence (or clause window) with its exact raw span."""

    doc: str
    title: str
    start: int
    end: int
    quote: str  # raw[start:end] of the document
    norm: str
    score: float


@dataclass(frozen=True)
class Citation:
    n: int
    doc: str
    title: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True)
class Verified:
    answer: str
    citations: list[Citation]
    dropped: list[str]  # answer sentences removed as unsupported
    repaired: int  # sentences re-cited to the evidence that supports them


# ---------------------------------------------------------------- numbers

def figures_in(text: str) -> dict[float, set[str]]:
    """Each figure's value (4.72亿 == 472 million; 86.5% stays 86.5) with the measure words written after
    it ('' when none): 12个 and 2808棵 are different facts even in one sentence."""
    figures: dict[float, set[str]] = {}
    for m in NUMBER.finditer(text):
        value = _figure_value(m)
        if value is None:
            continue
        after = text[m.end():m.end() + 2].lstrip("余多")[:1]  # 30余家, 100多个
        figures.setdefault(value, set()).add(canonical_measure(after))
    return figures


def _figure_value(m: re.Match) -> float | None:
    """The value a NUMBER match writes, its scale folded in (4.72亿 -> 472000000.0); None if unreadable."""
    try:
        value = float(m.group(1).replace(",", ""))
    except ValueError:
        return None
    return round(value * SCALE.get((m.group(2) or "").lower(), 1), 6)


def canonical_measure(ch: str) -> str:
    """The measure word as compared ('' for anything that is not one)."""
    return SAME_MEASURE.get(ch, ch) if ch in MEASURES else ""


def as_the_source_writes(sentence: str, quote: str) -> str:
    """Each figure of the sentence written as its cited quote writes the same value (6.50% -> 6.5%,
    4.72亿 -> 4.72億 in a Traditional source): the answer shows the source's own figure."""
    written: dict[tuple[float, str], str] = {}
    for m in NUMBER.finditer(quote):
        key = _figure_key(m)
        if key is not None:
            written.setdefault(key, m.group(0).strip())

    def restore(m: re.Match) -> str:
        key = _figure_key(m)
        shown = written.get(key, "") if key is not None else ""
        return (shown or m.group(0).strip()) + (" " if m.group(0).endswith(" ") else "")
    return NUMBER.sub(restore, sentence)


def _figure_key(m: re.Match) -> tuple[float, str] | None:
    """A figure's value with the kind of its unit (a scale folds into the value; % and ‰ stay apart);
    None for a figure without a value."""
    unit = (m.group(2) or "").lower().replace("％", "%")
    value = _figure_value(m)
    return None if value is None else (value, "" if unit in SCALE else unit)


class Count(NamedTuple):
    """A figure written with a measure word and the noun it counts: 12691名新生 is (12691, 位, 新生)."""

    start: int
    end: int  # after the measure word
    value: float
    measure: str  # canonical (rag.cite.canonical_measure)
    noun: str


def counted(text: str) -> list[Count]:
    """The counts a text states (12691名新生, 2808棵古树). Dates are not counts, and a figure followed by
    anything but a noun (12个以上) counts nothing this can name."""
    import jieba.posseg

    found = []
    for m in NUMBER.finditer(text):
        value, after = _figure_value(m), text[m.end():m.end() + 12]
        rest = after.lstrip("余多")
        if value is None or m.group(2) or not rest or rest[0] not in MEASURES or rest[0] in DATE_UNITS:
            continue
        words = [p for p in jieba.posseg.lcut(rest[1:]) if p.word.strip()]
        if words and words[0].flag.startswith("n") and CJK_SPAN.fullmatch(words[0].word):
            end = m.end() + len(after) - len(rest) + 1
            found.append(Count(m.start(), end, value, canonical_measure(rest[0]), words[0].word))
    return found


def as_the_source_counts(sentence: str, cited: str) -> str:
    """A figure the sentence gives a thing (12颗古树, 12691名本科生) replaced by the one its cited text gives
    that same thing, counted by the same measure word (2808棵古树, 7436名本科生), when the cited text gives
    it exactly one and not this one. The small model copies the figure next to the one it means ("12691名
    新生,其中包括7436名本科生"); the thing counted, not the nearest digits, says which figure is the answer.
    `cited` is normalised text; the sentence is matched in its normalised form."""
    norm = normalize(sentence).text
    if len(norm) != len(sentence):
        return sentence  # offsets into the sentence would not be offsets into its normal form
    source: dict[tuple[str, str], dict[float, str]] = {}
    for c in counted(cited):
        source.setdefault((c.measure, c.noun), {})[c.value] = cited[c.start:c.end]
    for c in reversed(counted(norm)):
        given = source.get((c.measure, c.noun), {})
        if len(given) == 1 and c.value not in given:
            sentence = sentence[:c.start] + next(iter(given.values())) + sentence[c.end:]
    return sentence


def numbers_in(text: str) -> set[float]:
    return set(figures_in(text))


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text)


def unsupported_numbers(sentence: str, evidence_text: str) -> set[float]:
    """Figures of the sentence the evidence lacks, or holds only with another measure word."""
    said, found = figures_in(sentence), figures_in(evidence_text)
    for value, measures in figures_in(in_digits(evidence_text)).items():  # 第三批 holds 第3批
        if measures - {""}:  # a numeral counts only when it counts something: 一失联飞机 holds no 1
            found.setdefault(value, set()).update(measures - {""})
    return {value for value, measures in said.items()
            if value not in found or not _measures_agree(measures, found[value])}


def in_digits(text: str) -> str:
    """Chinese numerals rewritten in digits (三十五个 -> 35个, 两座 -> 2座) by cn2an; the text itself
    when it has none or cn2an cannot read it."""
    if not CN_FIGURE.search(text):
        return text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cn2an warns on every numeral it leaves as it is (近千人)
        try:
            return cn2an.transform(text, "cn2an")
        except Exception:  # noqa: BLE001 (a numeral it cannot parse: keep the text as written)
            return text


def _measures_agree(said: set[str], found: set[str]) -> bool:
    """A figure said without a measure word (or with an English one) agrees with anything, and so does a
    date a source writes without one (2023-01-03); a count (1人) needs a source that counts the same thing,
    not a bare number (the "-1" of a licence number in a page footer)."""
    return "" in said or bool(said & found) or ("" in found and said <= DATE_UNITS)


# ---------------------------------------------------------------- overlap

_MARKER = re.compile(r"\s*\[(\d{1,2})\]")
_MARKER_LIST = re.compile(r"(?<=\])\s*[,，、]\s*(?=\[\d{1,2}\])")  # "[1], [2]" is one list of markers


def bigrams(text: str) -> set[str]:
    grams = set()
    for run in CJK_RUN.findall(text):
        grams.update(run[i:i + 2] for i in range(len(run) - 1))
        if len(run) == 1:
            grams.add(run)
    return grams


def coverage(part: str, whole: str) -> float:
    """Share of part's CJK bigrams found in whole (1.0 when part has none)."""
    grams = bigrams(part)
    if not grams:
        return 1.0
    return len(grams & bigrams(whole)) / len(grams)


# ---------------------------------------------------------------- selection

def _windows(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """Split an over-long sentence at clause marks into windows of at most MAX_QUOTE_CHARS."""
    if b - a <= MAX_QUOTE_CHARS:
        return [(a, b)]
    cuts = [m.end() for m in re.finditer(r"[，,、：:]", text[a:b])]
    spans, begin = [], a
    last = a
    for cut in cuts:
        if a + cut - begin > MAX_QUOTE_CHARS and last > begin:
            spans.append((begin, last))
            begin = last
        last = a + cut
    spans.append((begin, b))
    return [(x, min(y, x + MAX_QUOTE_CHARS * 2)) for x, y in spans if y > x]


def sentence_candidates(chunk: Chunk) -> list[tuple[int, int, str]]:
    """(raw start, raw end, normalised text) of each sentence in a chunk."""
    local = normalize(chunk.text)
    out = []
    for a, b in sentence_spans(local.text):
        for x, y in _windows(local.text, a, b):
            text = local.text[x:y].strip()
            if len(text) < 4:
                continue
            ra, rb = local.raw_span(x, y)
            out.append((chunk.start + ra, chunk.start + rb, text))
    return out


def question_terms(queries: list[str]) -> dict[str, float]:
    """Query words with base weights: figures and longer words say more than short ones."""
    terms: dict[str, float] = {}
    for q in queries:
        for t in tokenize(q):
            weight = 2.0 if any(ch.isdigit() for ch in t) else min(len(t), 4) / 2
            terms[t] = max(terms.get(t, 0.0), weight)
    return terms


def idf_weighted(terms: dict[str, float], sentences: list[str]) -> dict[str, float]:
    """Down-weight words found in most candidate sentences (the place name every sentence repeats)."""
    n = len(sentences)
    return {t: w * math.log(1 + (n + 1) / (1 + sum(t in s for s in sentences))) for t, w in terms.items()}


def sentence_score(norm: str, terms: dict[str, float], queries: list[str]) -> float:
    total = sum(terms.values()) or 1.0
    covered = sum(w for t, w in terms.items() if t in norm) / total
    grams = max((coverage(q, norm) for q in queries if bigrams(q)), default=0.0)
    return 0.6 * covered + 0.4 * grams


def select_evidence(hits: list, queries: list[str], max_n: int,
                    keep: Callable[[Evidence], bool] | None = None,
                    similarity: Callable[[list[str]], list[float]] | None = None,
                    dense_share: float = 0.0) -> list[Evidence]:
    """Best few sentences of the retrieved chunks for these query renderings, best first; `keep` may
    refuse a sentence (one about another place than the question's). `similarity` scores sentences by
    meaning (the embedder), weighted `dense_share` against word overlap: paraphrased and English
    questions share few words with the sentence that answers them."""
    candidates = [(rank, hit.chunk, c) for rank, hit in enumerate(hits) for c in sentence_candidates(hit.chunk)]
    terms = idf_weighted(question_terms(queries), [c[2] for _, _, c in candidates])
    dense = similarity([c[2] for _, _, c in candidates]) if similarity and dense_share > 0 else None
    scored: list[Evidence] = []
    for i, (rank, chunk, (start, end, norm)) in enumerate(candidates):
        brevity = min(1.0, 0.5 + len(norm) / 40)  # a bare heading rarely answers anything
        lexical = sentence_score(norm, terms, queries)
        if dense is not None:
            lexical = (1 - dense_share) * lexical + dense_share * dense[i]
        score = lexical * brevity + 0.05 / (rank + 1)
        scored.append(Evidence(chunk.doc, chunk.title, start, end, _raw_slice(chunk, start, end), norm,
                               round(score, 4)))
    scored.sort(key=lambda e: -e.score)
    return pick_diverse(scored[:60], terms, max_n, keep)


def pick_diverse(scored: list[Evidence], terms: dict[str, float], max_n: int,
                 keep: Callable[[Evidence], bool] | None = None) -> list[Evidence]:
    """Greedy choice: each next sentence is the one whose score, discounted by how much of its question
    coverage the chosen sentences already give, is highest (maximal marginal relevance). A question
    about two things (英特尔和英伟达的营收) gets a sentence for each, not four about the first."""
    chosen: list[Evidence] = []
    covered: set[str] = set()
    pool = list(scored)

    def gain(ev: Evidence) -> float:
        held = {t for t in terms if t in ev.norm}
        weight = sum(terms[t] for t in held) or 1.0
        return ev.score * (1 - 0.5 * sum(terms[t] for t in held & covered) / weight)

    while pool and len(chosen) < max_n:
        ev = max(pool, key=gain)
        pool.remove(ev)
        if any(ev.doc == c.doc and ev.start < c.end and c.start < ev.end for c in chosen):
            continue
        if any(_said_by(ev, c) for c in chosen):
            continue
        if keep and not keep(ev):
            continue
        chosen.append(ev)
        covered |= {t for t in terms if t in ev.norm}
    return chosen


_PLAIN = re.compile(r"[\W_]+")  # punctuation and spaces: copies differ in them (, and ，)


def _said_by(ev: Evidence, chosen: Evidence) -> bool:
    """Is everything this sentence says already in a chosen one? News is syndicated: the same sentence
    comes from three pages, and three copies would fill the evidence the model sees with one fact."""
    return _PLAIN.sub("", ev.norm) in _PLAIN.sub("", chosen.norm)


def page_head(chunk: Chunk, score: float, n: int = 3) -> list[Evidence]:
    """The first lines of a page (title, byline, dateline) as evidence: where an author or date is."""
    return [Evidence(chunk.doc, chunk.title, a, b, _raw_slice(chunk, a, b), norm, score)
            for a, b, norm in sentence_candidates(chunk)[:n]]


def _raw_slice(chunk: Chunk, start: int, end: int) -> str:
    return chunk.text[start - chunk.start:end - chunk.start]


# ---------------------------------------------------------------- verification

_SENT = re.compile(r"[^。！？!?]*?(?:[。！？!?]|\.(?=\s|\[|$))(?:\s*\[\d{1,2}\])*|[^。！？!?]+$")


def split_answer(answer: str) -> list[str]:
    """Answer sentences, each keeping the [n] markers written right after it."""
    parts = [m.group().strip() for m in _SENT.finditer(_MARKER_LIST.sub("", answer.strip()))]
    out: list[str] = []
    for p in parts:
        if not p:
            continue
        if _MARKER.sub("", p).strip(" .。") == "" and out:
            out[-1] += p  # markers alone belong to the sentence before
        else:
            out.append(p)
    return out


@dataclass(frozen=True)
class Grounding:
    """What an answer sentence is checked against: the share of its new wording its cited sentence must
    hold, the question (whose words are never support), and for a sentence with no Chinese words, a
    cross-lingual similarity to the cited sentence (rescaled 0..1) with its threshold."""

    min_support: float
    given: str = ""
    meaning: Callable[[str, str], float] | None = None
    min_meaning: float = 0.5
    alternatives: tuple[str, ...] = ()  # the sides of a question about several things (rag.question)
    echo: Callable[[str, list[Evidence]], float] | None = None  # share of echoed question words held
    min_echo: float = 0.0
    recite_margin: float = 1.0  # how much closer in meaning another sentence must be to take an English citation


def supports(sentence: str, cited: list[Evidence], check: Grounding) -> bool:
    """Does the cited evidence hold what this answer sentence adds to the question? Every figure must be
    in the cited evidence (echoing one from the question is no exception: the question may be wrong),
    and so must every name it gives; most of the sentence's other wording that the question did not supply
    must be in it too, and most of the things (nouns) each of its clauses adds (nouns_held). Words echoed
    from the question are never support by themselves: a sentence that adds nothing claims nothing; and
    what it does repeat from the question (东吴证券's 净利润) is a claim about the cited sentence that it must
    hold too, read with its context (`check.echo`). An English sentence is held by its figures or, failing
    those, by its similarity in meaning to the cited Chinese sentence; with neither it cannot be checked."""
    text = "".join(e.norm for e in cited)
    norm = normalize(sentence).text
    titled = "".join(normalize(e.title).text for e in cited) + text  # a page's title names its subject
    if unsupported_numbers(norm, text) or unsupported_names(norm, titled, check.given) or \
            about_another(norm, text, check.alternatives):
        return False
    if check.echo is not None and check.echo(norm, cited) < check.min_echo:
        return False  # it restates the question about a sentence that is about something else
    english = is_english(sentence)
    if english and check.meaning is not None and check.meaning(sentence, text) < check.min_meaning:
        return False
    new_figures = numbers_in(norm) - numbers_in(check.given)
    new = new_words(norm, check.given)
    if new:
        return share_held(new, text, norm) >= check.min_support and \
            all(nouns_held(clause, text, check.given) >= check.min_support for clause in clauses_of(norm))
    # A Chinese sentence adding only the question's words claims nothing; an English one is held by meaning.
    return bool(new_figures) or (english and check.meaning is not None)


def clauses_of(sentence: str) -> list[str]:
    """The clauses of a sentence (cut at ，；), without their commas."""
    return [c for c in re.split(f"[{CLAUSE_MARKS}]", sentence) if c.strip()]


def nouns_held(clause: str, text: str, given: str) -> float:
    """The share (by length) of the nouns a clause adds to the question that the cited text holds; 1.0 for
    a clause that adds none. Per clause, so a clause copied from the source cannot carry one whose thing is
    not in it ("Wordle是一种数字猜谜游戏，它会明确指出哪些字母猜中了": 数字 is in no source); nouns only, so a
    clause reworded around the source's things (根据 for the source's 依据) stands."""
    nouns = set(nouns_in(clause))
    new = [w for w in new_words(clause, given) if w in nouns]
    return share_held(new, text, clause) if new else 1.0


def share_held(words: list[str], text: str, sentence: str) -> float:
    """The share (by length) of these words of `sentence` that the cited text holds; a measure word is held
    with its figure (_counts_figure)."""
    return sum(len(w) for w in words if holds_word(text, w) or _counts_figure(w, sentence)) / sum(map(len, words))


def about_another(sentence: str, cited: str, alternatives: tuple[str, ...]) -> bool:
    """A sentence about one side of "A和B" citing a sentence that names the other side and not this one
    (英伟达's revenue cited to a sentence about 英特尔): the fact belongs to the other."""
    said = {a for a in alternatives if a in sentence}
    if len(said) != 1:
        return False
    return any(a in cited for a in alternatives if a not in said) and not any(a in cited for a in said)


def unsupported_names(sentence: str, cited: str, given: str) -> list[str]:
    """Names in the sentence that neither the cited text nor the question holds: like figures, a name is
    a fact on its own, however much of the rest of the sentence the source supports."""
    return [n for n in names_in(sentence) + latin_words(sentence) if n not in cited and not _from_question(n, given)]


def latin_words(sentence: str) -> list[str]:
    """The Latin words of a sentence written in Chinese (Sibyte, Bard, MIPS): there they are names, which
    jieba does not tag as such; a company named in a sentence about a designer's move is the claim itself.
    Two-letter words are left out (km, mw: units, read with their figures). A sentence with more Latin
    letters than Chinese characters is English, however many Chinese names it quotes ("five zones:
    天府粮仓 core示范区, …"): its words are its language, not names."""
    if len(LATIN.findall(sentence)) > sum(map(len, CJK_RUN.findall(sentence))):
        return []
    return [w for w in dict.fromkeys(LATIN_WORD.findall(sentence)) if len(w) > 2]


def _from_question(word: str, given: str) -> bool:
    """The question's word, or a place it names written with its suffix (荥经县 for 荥经)."""
    return holds_word(given, word) or (len(word) > 2 and word[-1] in PLACE_SUFFIX and word[:-1] in given)


def holds_word(text: str, word: str) -> bool:
    """Does the text hold this word? A single character may be a piece of a common word (因 of 因为) but
    not of a name: the 王 of 高句丽王 is not in a text that only says 王莽."""
    if len(word) > 1:
        return word in text
    return word in text and any(word in w for w in tokenize(text) if w == word or not is_proper_name(w))


def _counts_figure(word: str, sentence: str) -> bool:
    """A measure word written after a digit (44人) belongs to its figure, which the figure check has
    read with its measure (44人 and 44名 agree): held when the figure is, even if the source says 名."""
    return word in MEASURES and re.search(rf"\d\s*{re.escape(word)}", sentence) is not None


def new_words(sentence: str, given: str) -> list[str]:
    """The Chinese words a sentence adds to the question (words, not character pairs: a pair spanning two
    of the question's words is nothing new). A place the question names without its suffix (荥经) is
    not new as 荥经县. In a sentence written in Chinese its Latin words count too: COMAC919 answering
    "C919的全称" is the claim itself. An English sentence's words are never in Chinese sources, so they
    are left out."""
    latin = bool(CJK_RUN.search(sentence)) and not is_english(sentence)
    return [w for w in dict.fromkeys(tokenize(sentence))
            if (CJK_RUN.search(w) or (latin and len(w) > 1 and LATIN.search(w))) and not _from_question(w, given)
            and not recut_question(w, given)]


def recut_question(word: str, given: str) -> bool:
    """A word jieba guessed (not in its dictionary) out of the question's own characters: "从2017年起共签了"
    cuts as 起共签, which adds nothing to "从2017年起一共签了". A guessed word with a character of its own
    (a name: 钟颖轩) is new."""
    return len(word) > 1 and word not in jieba.dt.FREQ and all(ch in given for ch in word)


def verify_answer(answer: str, evidence: list[Evidence], min_support: float, question: str = "",
                  meaning: Callable[[str, str], float] | None = None, min_meaning: float = 0.5,
                  alternatives: tuple[str, ...] = (),
                  echo: Callable[[str, list[Evidence]], float] | None = None, min_echo: float = 0.0,
                  recite_margin: float = 1.0) -> Verified:
    """Keep supported sentences, re-cite misattributed ones, drop the rest; renumber citations 1..m.
    `meaning` (a cross-lingual similarity) is how a sentence with no Chinese words is checked; `echo`
    measures how much of what a sentence repeats from the question its cited sentences hold."""
    check = Grounding(min_support, without_yes_no(normalize(question).text), meaning, min_meaning, alternatives, echo,
                      min_echo, recite_margin)
    kept: list[tuple[str, list[int]]] = []
    dropped: list[str] = []
    repaired = 0
    for sentence in split_answer(answer):
        body = _MARKER.sub("", sentence).strip()
        if not body or re.fullmatch(r"[\W_]*", body):
            continue
        if body.rstrip(" .。")[-1:] in ("?", "？"):  # a question (often the user's, echoed) claims nothing
            dropped.append(sentence)
            continue
        cited = sorted({int(n) - 1 for n in _MARKER.findall(sentence) if 0 < int(n) <= len(evidence)})
        if cited and not is_english(body):
            body = as_the_source_counts(body, "".join(evidence[i].norm for i in cited))
        if cited and _holds(body, [evidence[i] for i in cited], check):
            better = _says_it_better(body, cited, evidence, check)
            kept.append((body, [better] if better is not None else cited))  # the sentence that says it
            repaired += better is not None
            continue
        fix = _best_support(body, evidence, check)
        if fix is not None:
            kept.append((body, [fix]))
            repaired += 1
            continue
        # A sentence joining facts from two sources ("A did 86, B did 276") may stand clause by clause,
        # or, listing one fact from each ("A和B被禁赛"), on the two sources together.
        clauses = [c for c in re.split(f"(?<=[{CLAUSE_MARKS}])", body) if c.strip(" " + CLAUSE_MARKS)]
        fixes = [_best_support(c, evidence, check) for c in clauses] if len(clauses) > 1 else [None]
        pair = _joint_support(body, evidence, check) if None in fixes else None
        if None in fixes and pair is None:
            dropped.append(sentence)
            continue
        kept += [(body, pair)] if pair else [(c.rstrip(" " + CLAUSE_MARKS), [i]) for c, i in zip(clauses, fixes, strict=True)]
        repaired += 1
    order: list[int] = []
    for _, cited in kept:
        for i in cited:
            if i not in order:
                order.append(i)
    number = {i: k + 1 for k, i in enumerate(order)}
    text = "".join(_attach(_as_cited(body, [evidence[i] for i in cited]), [number[i] for i in cited])
                   for body, cited in kept)
    citations = [Citation(number[i], evidence[i].doc, evidence[i].title, evidence[i].start, evidence[i].end,
                          evidence[i].quote) for i in order]
    return Verified(text.strip(), citations, dropped, repaired)


def _as_cited(body: str, cited: list[Evidence]) -> str:
    """A Chinese sentence's figures as its sources write them; an English sentence keeps its reading of
    500万 (5 million)."""
    return body if is_english(body) else as_the_source_writes(body, "".join(e.quote for e in cited))


def _holds(body: str, cited: list[Evidence], check: Grounding) -> bool:
    return supports(body, cited, check)


def _says_it_better(body: str, cited: list[int], evidence: list[Evidence], check: Grounding) -> int | None:
    """The one sentence to cite instead, when another says far more of it. Only with wording enough to
    tell (an English sentence naming only 古蔺县 would move to any sentence that names the county); an
    English sentence, which shares no wording with its sources, by meaning (_closer_in_meaning)."""
    if is_english(body) and check.meaning is not None:
        return _closer_in_meaning(body, cited, evidence, check)
    if len(bigrams(body)) < 4:
        return None
    best = _best_support(body, evidence, check)
    if best is None or best in cited:
        return None
    norm = normalize(body).text
    said = coverage(norm, "".join(evidence[i].norm for i in cited))
    return best if coverage(norm, evidence[best].norm) >= said + 0.2 else None


def _closer_in_meaning(body: str, cited: list[int], evidence: list[Evidence], check: Grounding) -> int | None:
    """The evidence sentence an English sentence means, when the model numbered another: "the western
    half was called New Holland [2]" citing a sentence about a settlement while [1] names 新荷兰. Taken
    only when clearly closer (`check.recite_margin`, rescaled similarity) and holding the sentence too."""
    assert check.meaning is not None
    meanings = [check.meaning(body, e.norm) for e in evidence]
    best = max(range(len(evidence)), key=meanings.__getitem__)
    if best in cited or meanings[best] < max(meanings[i] for i in cited) + check.recite_margin:
        return None
    return best if _holds(body, [evidence[best]], check) else None


def _best_support(text: str, evidence: list[Evidence], check: Grounding) -> int | None:
    """Index of the evidence sentence that alone supports text, preferring the closest wording."""
    norm = normalize(text).text
    ranked = sorted(range(len(evidence)), key=lambda i: -coverage(norm, evidence[i].norm))
    return next((i for i in ranked if _holds(text, [evidence[i]], check)), None)


def _joint_support(text: str, evidence: list[Evidence], check: Grounding) -> list[int] | None:
    """Two evidence sentences that together hold a sentence listing names from each ("梁文博和李行被终身禁赛",
    each sentence naming one of them): each must hold a name of the answer, not of the question, that the
    other lacks. Only names: a sentence summing up figures from several sources ("2808棵古树…1124模式")
    is a summary, not the answer to the question, and a figure from one sentence joined to the question's
    words from another is how a sentence about something else is made to answer."""
    norm = normalize(text).text
    names = {n for n in names_in(norm) if not _from_question(n, check.given)}
    if len(names) < 2 or numbers_in(norm) - numbers_in(check.given):
        return None
    pairs = [(i, j) for i in range(len(evidence)) for j in range(i + 1, len(evidence))]
    for i, j in sorted(pairs, key=lambda p: -coverage(norm, evidence[p[0]].norm + evidence[p[1]].norm)):
        a, b = ({n for n in names if n in evidence[k].norm} for k in (i, j))
        if a - b and b - a and _holds(text, [evidence[i], evidence[j]], check):
            return [i, j]
    return None


def _attach(body: str, numbers: list[int]) -> str:
    """The sentence with its markers before its full stop; a sentence in Chinese ends with 。 even where the
    model wrote "." (two sentences would otherwise run together as "…本科生[1].2022年…")."""
    marks = "".join(f"[{n}]" for n in numbers)
    chinese = bool(bigrams(body)) and not is_english(body)
    body, end = (body[:-1], body[-1]) if body[-1] in "。！？!?." else (body, ".")
    if end == "." and chinese:
        end = "。"
    space = " " if end == "." else ""
    return f"{body}{marks}{end}{space}"
