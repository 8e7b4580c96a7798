"""Word tokens for BM25: jieba on normalised (Simplified, lower-case) text.

`cut_for_search` also emits the sub-words of long words (荥经县 -> 荥经, 荥经县), so a question that
says 荥经 still meets a document that says 荥经县. Punctuation and whitespace are dropped; numbers stay
whole (4.72, 2808) so figures match exactly.
"""

from __future__ import annotations

import logging
import re

import jieba

from rag.patterns import CJK

jieba.setLogLevel(logging.WARNING)

_WORD = re.compile(r"[\w\u3400-\u9fff]", re.UNICODE)
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 并 等 对 从 把 被 让 这 那 其 之 为 以 于 由 中 上 下 个 吗 呢 啊 吧 "
    "什么 多少 如何 怎么 怎样 哪些 哪个 哪里 为什么 几 有 有没有 是否 请问 "
    "the a an of to in on for and or is are was were be by with what which how many much did does do why "
    "who when where its it this that as at from".split()
)


def tokenize(text: str) -> list[str]:
    return [t for t in jieba.cut_for_search(text) if _WORD.search(t) and t not in STOPWORDS]


def pinyin_keys(word: str, limit: int = 8) -> list[str]:
    """Toneless pinyin spellings of a Chinese word, every reading of each character: 荥经 -> xingjing, yingjing."""
    from itertools import islice, product

    from pypinyin import Style, pinyin

    readings = pinyin(word, style=Style.NORMAL, heteronym=True)
    return ["".join(combo).lower() for combo in islice(product(*readings), limit)]


_HANZI_WORD = re.compile(f"^[{CJK}]{{2,4}}$")
_NAME_TAGS = ("nr", "ns", "nt", "nz")  # jieba: person, place, organisation, other proper noun


def is_proper_name(word: str) -> bool:
    """jieba tags the word as a name (荥经 ns, 常德 nr), not a common word (背景 n, 伤害 a, 我们 r)."""
    import jieba.posseg

    flag = jieba.posseg.dt.word_tag_tab.get(word)
    if flag is None:
        pairs = jieba.posseg.lcut(word, HMM=True)
        flag = pairs[0].flag if len(pairs) == 1 else ""
    return flag.startswith(_NAME_TAGS)


def pinyin_names(words) -> dict[str, list[str]]:
    """pinyin -> corpus proper names spelled that way, for romanised names in English questions. Only
    names, so an ordinary English word never turns into Chinese (Beijing is 北京, never 背景); sorted, so
    the same corpus always gives the same table."""
    table: dict[str, list[str]] = {}
    for word in sorted(words):
        if _HANZI_WORD.match(word) and is_proper_name(word):
            for key in pinyin_keys(word):
                table.setdefault(key, []).append(word)
    return table


_LATIN_WORD = re.compile(r"[A-Za-z]+")


def romanised_names(question: str, table: dict[str, list[str]]) -> dict[str, list[str]]:
    """Latin words (or two adjacent ones: 'Ying jing') of a question that spell a corpus word in pinyin."""
    words = [m.group() for m in _LATIN_WORD.finditer(question)]
    found: dict[str, list[str]] = {}
    for i, word in enumerate(words):
        for span in (words[i:i + 2], [word]):
            key = "".join(span).lower()
            if len(key) >= 5 and key in table and key not in STOPWORDS:
                found[" ".join(span)] = table[key]
                break
    return found


def names_in(text: str) -> list[str]:
    """Proper names (people, places, organisations, other proper nouns) jieba tags in a text."""
    import jieba.posseg

    return [t.word for t in jieba.posseg.cut(text) if t.flag in ("nr", "ns", "nt", "nz") and len(t.word) > 1]


_NOUN_TAGS = ("n", "s", "eng")  # jieba: nouns and names (n, nr, ns, nt, nz), place words (s), Latin words


def nouns_in(text: str) -> list[str]:
    """The nouns and names of a Chinese text, by jieba's part-of-speech tags: what can say who or where.
    "将在8月26日至9月11日进行" holds none; "在斯洛文尼亚和波兰举行" holds two."""
    import jieba.posseg

    return [p.word for p in jieba.posseg.lcut(text) if p.flag.startswith(_NOUN_TAGS) and _WORD.search(p.word)]
