"""Answer or refuse: one decision over a few named signals, each thresholded in Config.

A small model given sources about the question's topic writes a confident sentence whether or not the
sources answer it. Word overlap between the answer and the sources cannot tell the two apart (the
answer echoes the question). What can: does the best evidence sentence, read with the sentence before
it, hold the question's *informative* words — weighted by how rare each is in the collection, so a
topic word every page repeats says little and the one word that pins the question down says most — and
does it hold the kind of fact asked (a figure for 多少, a date for 什么时候)? The thresholds are
calibrated on the development sets (README "Refusal").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import jieba.posseg

from rag.attribute import core
from rag.patterns import CJK_RUN, CN_FIGURE, DATE, NUMBER, RELATIVE_YEAR, YEAR
from rag.question import INTERROGATIVE, Question
from rag.tokens import is_proper_name, names_in, tokenize

# Words that say what kind of answer is wanted, not what it is about.
_ASKING = frozenset("哪 哪个 哪些 哪里 哪儿 哪位 哪年 哪一年 谁 何 何时 何地 为何 多 多大 多久 几 是 指 称为 被称为 叫 叫做 "
                    "名称 名字 时候 什么时候 主要 分别 各自 一个 目前 当时 曾经 为什么 原因".split())


@dataclass(frozen=True)
class Signals:
    """Why the evidence does or does not answer a question; all in [0, 1] or booleans."""

    coverage: float  # rarity-weighted share of the question's words in the best evidence (with context)
    holds_kind: bool  # the best evidence states the kind of fact asked (figure, date), or none is asked
    similarity: float = 0.0  # dense cosine of question and best evidence (cross-lingual questions)
    absent: tuple[str, ...] = ()  # names the question asks about that no document of the collection holds


def content_words(question: Question) -> list[str]:
    """The words a question is about: its tokens less interrogatives and function words."""
    return list(dict.fromkeys(t for t in tokenize(question.chinese) if t not in _ASKING))


def word_weights(words: list[str], document_frequency: Callable[[str], tuple[int, int]]) -> dict[str, float]:
    """Inverse document frequency of each word in the collection. A word no chunk holds is rare: when
    it names something (有期徒刑, 宋仁宗) it weighs most, so a question about what the collection never
    mentions scores low; when it is how the question is asked (签了, 帮忙, 一共, 哪家, 定于: a verb, an
    adverb, an interrogative) no source could hold it, and it is left out (README "Refusal")."""
    weights = {}
    for word in words:
        df, n = document_frequency(word)
        if df or names_what_is_asked_about(word):
            weights[word] = idf(df, n)
    return weights


# jieba: nouns and names, verbal nouns, place and time words, idioms. Here rather than beside nouns_in in
# rag/tokens.py, whose source is part of the index's parameters: a refusal signal must not force a rebuild.
_THING_TAGS = ("n", "vn", "s", "t", "l", "eng")


def names_a_thing(word: str) -> bool:
    """Does a word name something (a noun, name, place, time or idiom: 有期徒刑, 宋仁宗, 水果) rather than
    say how it is asked (签了, 帮忙, 一共, 定于)? By jieba's part-of-speech tags of its pieces."""
    return any(p.flag.startswith(_THING_TAGS) for p in jieba.posseg.lcut(word))


def names_what_is_asked_about(word: str) -> bool:
    """A name (何鸿燊), or a thing word that is not an interrogative (几何 is tagged one: left out)."""
    return is_proper_name(word) or (names_a_thing(word) and not INTERROGATIVE.search(word))


def idf(df: int, n: int) -> float:
    """BM25's inverse document frequency of a word found in `df` of `n` chunks."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def word_found(word: str, text: str) -> float:
    """1 when the word is in the text; else the share of its character pairs there (薪资 vs 薪酬 is 0,
    抑郁症 vs 重抑症 is 0.5), so paraphrase earns part of the credit and a wholly absent word none."""
    if word in text:
        return 1.0
    pairs = [word[i:i + 2] for i in range(len(word) - 1)]
    if not pairs or not CJK_RUN.fullmatch(word):
        return 0.0
    return 0.5 * sum(p in text for p in pairs) / len(pairs)


def coverage(weights: dict[str, float], text: str) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(w * word_found(word, text) for word, w in weights.items()) / total


def absent_names(question: Question, present: Callable[[str], bool]) -> tuple[str, ...]:
    """The question's proper names (jieba: person, place, organisation, other) that the collection never
    writes, with or without an administrative suffix (苍溪县 / 苍溪). A question about 华尔街日报 asked of
    pages that never name it cannot be answered from them, however well its other words are covered."""
    return tuple(n for n in dict.fromkeys(names_in(question.chinese)) if not present(n) and not present(core(n)))


def holds_kind(question: Question, text: str) -> bool:
    """Does a sentence state the kind of fact the question asks for? Only figures and dates can be told
    from the text alone; other kinds always pass."""
    if question.asks == "figure":
        if question.measure == "%":
            return any(s in text for s in ("%", "％", "‰", "百分之", "成"))
        return bool(NUMBER.search(text) or CN_FIGURE.search(text))
    if question.asks == "date":
        return bool(DATE.search(text))
    return True


def holds_year(question: Question, context: str) -> bool:
    """Is the year a question pins (2021年香港GDP) the year of the cited context? Held when the context
    writes it, or writes the year as news does (今年, 去年) and so may mean it; a context that names
    only other years (上世纪60年代, 2010年冬奥会) is about another time."""
    asked = set(YEAR.findall(question.norm))
    return not asked or asked <= set(YEAR.findall(context)) or bool(RELATIVE_YEAR.search(context))


# jieba's tags for names: place, person, transliterated person, other proper noun, organisation. Not
# rag.tokens' tags: that module's source is part of the index's parameters (see _THING_TAGS above).
_NAME_FLAGS = frozenset({"ns", "nr", "nrt", "nz", "nt"})
_COUNT_FLAGS = frozenset({"m", "q", "t"})  # numerals, measure words, time words: 温哥华|2010|年|冬奥会


def renamed_subject(question: Question, context: str) -> str:
    """The name a question puts directly before a common noun (北京|冬奥会) when the cited context lacks
    that name and writes the same noun after another name (长野|冬奥会): the context is about another
    event or thing of that kind. Returns "asked->other", or '' when the context may be about the one asked.
    Lenient: a name written without its suffix (荥经 for 荥经县) counts as present, and a noun the context
    writes with no name before it says nothing."""
    tokens = list(jieba.posseg.cut(context))
    for name, noun in named_nouns(question.norm):
        if core(name) in context:
            continue
        other = _name_before(tokens, noun)
        if other and other not in question.norm:
            return f"{name}->{other}"
    return ""


@lru_cache(maxsize=256)
def named_nouns(question: str) -> tuple[tuple[str, str], ...]:
    """The (name, common noun) pairs a question writes side by side: 北京冬奥会 -> (北京, 冬奥会). Cached: an
    answer's every cited sentence is checked against the same question."""
    asked = list(jieba.posseg.cut(question))
    return tuple((name.word, noun.word) for name, noun in pairwise(asked)
                 if _is_name_token(name) and not _is_name_token(noun) and len(noun.word) >= 2
                 and noun.flag.startswith(("n", "j", "v")))


def _is_name_token(token: jieba.posseg.pair) -> bool:
    return token.flag in _NAME_FLAGS and len(token.word) >= 2


def _name_before(tokens: list[jieba.posseg.pair], head: str) -> str:
    """The name written before `head` in these tokens (skipping numerals, measure and time words), or ''."""
    for i, token in enumerate(tokens):
        if token.word != head:
            continue
        j = i - 1
        while j >= 0 and tokens[j].flag in _COUNT_FLAGS:
            j -= 1
        if j >= 0 and _is_name_token(tokens[j]):
            return tokens[j].word
    return ""


def refusal(signals: Signals, question: Question, min_coverage: float, min_similarity: float) -> str:
    """Why the documents do not answer, or '' when they may. Chinese questions are judged by coverage;
    an English question's words never occur in Chinese text, so it is judged by dense similarity."""
    if signals.absent:
        return f"the documents never name {'/'.join(signals.absent)}"
    if question.lang == "en":
        if signals.similarity < min_similarity:
            return f"no evidence is close enough to the question (similarity {signals.similarity:.2f})"
    elif signals.coverage < min_coverage:
        return f"the evidence holds too little of what the question asks ({signals.coverage:.2f})"
    if not signals.holds_kind:
        return f"the best evidence states no {question.asks}"
    return ""
