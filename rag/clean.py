"""Normalise scraped Chinese text for matching, keeping a map back to every raw character.

Search and verification compare normalised text (NFKC, Simplified script, lower case, no pinyin
annotations, no page furniture, collapsed whitespace), but citations must point at the raw file.
So normalisation never edits a string blindly: it carries, for every output character, the raw span
[start, end) it came from. Any normalised span i..j maps back to raw[starts[i]:ends[j-1]].

Noise is recognised by *classes* (navigation words, copyright/ICP footers, letter-spaced banners,
gambling spam, encoding debris) rather than by the strings of any one site, and is only excluded from
the normalised view; the corpus file is never touched.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc

from rag.patterns import CJK

_T2S = opencc.OpenCC("t2s")

TONE_VOWELS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"


@dataclass(frozen=True)
class Normalized:
    """Normalised text plus, per character, the raw span it stands for."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def raw_span(self, i: int, j: int) -> tuple[int, int]:
        """Raw [start, end) covering normalised characters i..j (j exclusive, j > i)."""
        return self.starts[i], self.ends[j - 1]


@lru_cache(maxsize=65536)
def _fold_char(ch: str) -> str:
    """NFKC + case fold one character; Traditional->Simplified is done on whole runs later."""
    return unicodedata.normalize("NFKC", ch).casefold()


def _to_simplified(text: str) -> str:
    """OpenCC phrase-level conversion when it keeps the length (almost always), else per character."""
    converted = _T2S.convert(text)
    if len(converted) == len(text):
        return converted
    return "".join(c if len(c := _T2S.convert(ch)) == 1 else ch for ch in text)


def _delete(text: str, starts: list[int], ends: list[int], pattern: re.Pattern[str]):
    """Remove every match of pattern, keeping the map of what remains."""
    spans = [m.span() for m in pattern.finditer(text) if m.end() > m.start()]
    if not spans:
        return text, starts, ends
    keep = [True] * len(text)
    for a, b in spans:
        for i in range(a, b):
            keep[i] = False
    idx = [i for i, k in enumerate(keep) if k]
    return "".join(text[i] for i in idx), [starts[i] for i in idx], [ends[i] for i in idx]


# Encoding debris: U+FFFD, '?' standing in for a lost CJK character, masked words (**思想).
_DEBRIS = re.compile(rf"[\ufffd\ue000-\uf8ff]+|(?<=[{CJK}])\?+(?=[{CJK}(])|\?+(?=\()|\*{{2,}}")
# Pinyin annotation after a character: 態(tài), 區(qū). Needs a tone mark so real parentheses survive.
_PINYIN = re.compile(rf"(?<=\S)\((?=[a-z{TONE_VOWELS}]*[{TONE_VOWELS}])[a-z{TONE_VOWELS}]{{1,7}}\)")
# Page furniture, matched on the Simplified, folded text. Patterns whose words also occur in body text
# (责任编辑, 主办单位, 相关信息, 彩票…) match only a line of their own: inside a sentence they are news.
_LINE = r"(?:^|(?<=[\n】|]))[ \t]*"  # at a line start, or right after other furniture (【打印】 分享到)
_FURNITURE = re.compile(
    "|".join(
        [
            r"(?:您的|当前)?位置\s*[:：][^\n。]{0,80}?(?=\n|$)",  # breadcrumbs
            r"首页\s*(?:>|&gt;|›|»)[^\n。]{0,80}",
            r"【[^】\n]{0,12}(?:字体|打印|关闭|收藏|大中小)[^】\n]{0,20}】?",
            r"(?:字体|字号)\s*[:：]\s*(?:[大中小]\s*){1,3}",
            _LINE + r"(?:分享到|扫一扫|打印本页|关闭窗口|返回顶部|上一篇|下一篇|责任编辑|浏览次数|阅读次数)"
            r"[^\n]{0,40}(?=\n|$)",
            r"[(（【\[]\s*(?:资料)?图片(?:来源|仅供参考)[^)）】\]\n]{0,20}[)）】\]]",
            _LINE + r"天气预报[^\n]{0,20}(?=\n|$)",
            _LINE + r"(?:相关(?:信息|新闻|阅读|链接|文章)|流量统计|访问量|技术支持|网站地图|联系我们|主办单位|承办单位)"
            r"[^\n]{0,80}(?=\n|$)",
            r"因篇幅问题不能全部显示[^\n]*",
            r"(?:copyright|©|版权所有|all rights reserved)[^\n]{0,120}",
            r"[^\n。]{0,40}icp[备证]?\s*\d+号?[^\n]{0,40}",
            r"[^\n。]{0,20}公网安备\s*\d+号?[^\n]{0,20}",
            rf"(?:[{CJK}] ){{3,}}[{CJK}]",  # letter-spaced banners: 吉 林 城 乡 网
        ]
    )
)
# Gambling/casino spam injected into pages: a run of its vocabulary opened by a word only ads use
# (开云真人官网); ordinary words (彩票, 体育, 平台) alone never start one, so news about the lottery stays.
_AD_WORDS = r"开云|娱乐城|博彩|棋牌|百家乐|bet365|葡京|威尼斯人|赌场|老虎机"
_SPAM = re.compile(rf"(?:{_AD_WORDS})(?:[^\n。，,]{{0,4}}?(?:{_AD_WORDS}|真人|官网|娱乐|app|下载|平台|入口|注册))+")
_SPACES = re.compile(r"[ \t\u3000\xa0]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")


def normalize(raw: str) -> Normalized:
    """Normalised, noise-free view of raw text with its offset map."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, ch in enumerate(raw):
        folded = _fold_char(ch)
        for c in folded:
            chars.append(c)
            starts.append(i)
            ends.append(i + 1)
    text = _to_simplified("".join(chars))
    text = text.replace("\r", "\n")
    for pattern in (_DEBRIS, _PINYIN, _FURNITURE, _SPAM):
        text, starts, ends = _delete(text, starts, ends, pattern)
    text, starts, ends = _collapse_whitespace(text, starts, ends)
    return Normalized(text, tuple(starts), tuple(ends))


def _collapse_whitespace(text: str, starts: list[int], ends: list[int]):
    """Runs with a line break become one '\\n', other runs one ' '; space between CJK characters goes."""
    out, s_out, e_out = [], [], []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            j = i
            while j < n and text[j].isspace():
                j += 1
            run = text[i:j]
            prev = out[-1] if out else ""
            nxt = text[j] if j < n else ""
            if "\n" in run:
                rep = "\n"
            elif re.match(rf"[{CJK}]", prev or "a") and re.match(rf"[{CJK}]", nxt or "a"):
                rep = ""
            else:
                rep = " "
            if rep and out and j < n:
                out.append(rep)
                s_out.append(starts[i])
                e_out.append(ends[j - 1])
            i = j
            continue
        out.append(ch)
        s_out.append(starts[i])
        e_out.append(ends[i])
        i += 1
    return "".join(out), s_out, e_out


def readable(raw: str) -> str:
    """Raw text as a reader should see it: pinyin annotations gone and whitespace collapsed, but the
    source's own characters kept (Ⅱ类, ％, full-width digits, its script), unlike the folded view."""
    text = _PINYIN.sub("", raw)
    text = re.sub(rf"(?<=[{CJK}])\s+(?=[{CJK}])", "", text)
    return _SPACES.sub(" ", _BLANK_LINES.sub(" ", text)).strip()


def normalize_query(question: str) -> str:
    """Questions get exactly the corpus normalisation, so both sides meet in one script."""
    return normalize(question).text


_SENTENCE_END = re.compile(r"[。！？；!?;]+[”’」』)）]*|\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) spans of sentences in normalised text, enders kept, blanks dropped."""
    spans, begin = [], 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end() if m.group() != "\n" else m.start()
        if text[begin:end].strip():
            spans.append((begin, end))
        begin = m.end()
    if text[begin:].strip():
        spans.append((begin, len(text)))
    return [_strip_span(text, a, b) for a, b in spans]


def _strip_span(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b
