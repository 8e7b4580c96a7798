"""A question analysed once: language, normalised form, names, and the kind of answer it asks for.

Every later stage (evidence selection, refusal, verification) reads this record instead of re-parsing
the text. The kind of answer comes from the interrogative word alone (多少 / 谁 / 什么时候 / where…),
which is how any question in either language says what it wants; nothing here knows a document.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import jieba
import jieba.posseg as pseg
import opencc

from rag.attribute import question_names
from rag.clean import normalize_query
from rag.patterns import CJK_CHAR, CJK_SPAN, LATIN, LATIN_WORD

_T2S = opencc.OpenCC("t2s")

# The interrogative, in Simplified form, says which kind of fact answers the question. Order matters:
# 多少年 asks for a figure, 哪一年 for a date.
_ASKS = [
    ("date", re.compile(r"什么时[候间]|何时|哪[一]?[年月天日]|几[月号点]|几月几[日号]|多久以前|日期|"
                        r"\bwhen\b|what (?:year|date|day|month|time)|which (?:year|date|day|month)", re.I)),
    ("figure", re.compile(r"多少|(?<!哪)几[^月号点何乎种类样]|几成|多[大高长远重久快]|比例|占比|百分之|百分比|增[长速]|"
                          r"how (?:many|much|large|big|long|high|old|far|fast)|"
                          r"what (?:percentage|share|proportion|rate|number|amount)\b|by how much", re.I)),
    ("person", re.compile(r"谁|哪[一]?位|\bwho(?:m|se)?\b", re.I)),
    ("place", re.compile(r"哪里|哪儿|在哪|何[地处]|哪[一]?个(?:城市|国家|省|地方|地区)|\bwhere\b", re.I)),
]
# Any interrogative: a question without one is a bare topic ("2022年全国棉花产量"), as news readers search.
INTERROGATIVE = re.compile(r"\b(?:what|how|which|who|when|where|why)\b|什么|多少|哪|几|如何|怎样|怎么|是否|谁|(?<!任)何", re.I)
# A bare topic asks for what its head noun names: a quantity (产量, 人数, 出生率, 营收, 票房) for that figure,
# 时间 (耶伦访华时间, RCEP生效时间) for a date; 持续时间 is a duration, a figure.
_BARE_HEADS = [
    ("figure", re.compile(r"(?:量|数|率|额|收入|营收|票房|总值|人次|持续时间)\W*$")),
    ("date", re.compile(r"时间\W*$")),
]
_ASKED_SHARE = re.compile(r"比例|占比|百分之|百分比|percentage|what share|what proportion", re.I)
_ASKED_MEASURE = re.compile(r"(?<![第哪])(?:多少|几)[亿万千百]?([^\W\d])(人?)")  # not 第几名, 哪几种
_ABOUT_PAGE = re.compile(r"作者|记者|编辑|撰稿|发布|发表|刊登|来源|出处|\b(?:author|wrote|written|published|"
                         r"publication|byline|reporter|source of (?:this|the) (?:article|report))\b", re.I)


_TITLE = re.compile(r"^《[^》]+》")
_PRONOUN = re.compile(r"^(?:它|他|她|其|该)")


def opening_subject(clause: str) -> str:
    """What a Chinese clause is about, as it opens: a title (《…》), else its words before the first verb
    or interrogative (邓伦 of 邓伦逃税多少钱)."""
    title = _TITLE.match(clause)
    if title:
        return title.group()
    words = []
    for token in pseg.cut(clause):
        if token.flag.startswith("v") or INTERROGATIVE.search(token.word):
            break
        words.append(token.word)
    return "".join(words)


def with_subject(clause: str, subject: str) -> str:
    """A clause that names no subject of its own ("被罚了多少钱", "它的导演是谁") given one."""
    return subject + _PRONOUN.sub("", clause, count=1)


@dataclass(frozen=True)
class Question:
    text: str  # as asked
    lang: str  # "en", "zh" or "zh-Hant"
    norm: str  # normalised like the corpus (Simplified, folded, no pinyin)
    asks: str  # "figure", "date", "person", "place" or "other"
    measure: str = ""  # the measure word a figure question names (个 for 多少个, % for 占比), else ""
    names: dict[str, bool] = field(default_factory=dict)  # asked places/organisations -> surely a place
    about_page: bool = False  # asks for the article's author, date or source: the page head answers
    alternatives: tuple[str, ...] = ()  # the two sides of "A和B" (英特尔, 英伟达): each fact is about one

    @property
    def chinese(self) -> str:
        """The Chinese a question carries (all of it for a Chinese question; names for an English one)."""
        return self.norm if self.lang != "en" else " ".join(CJK_SPAN.findall(self.norm))


def in_asked_letters(text: str, asked: str) -> str:
    """Text cut from the normalised question (u14组, g20峰会) with the asker's letters back (U14组, G20峰会):
    the model copies a half-question's wording into its answer, and the answer should read as asked."""
    forms = {w.casefold(): w for w in LATIN_WORD.findall(unicodedata.normalize("NFKC", asked))}
    return LATIN_WORD.sub(lambda m: forms.get(m.group().casefold(), m.group()), text)


def is_english(text: str) -> bool:
    """Mostly Latin letters."""
    latin, cjk = len(LATIN.findall(text)), len(CJK_CHAR.findall(text))
    return latin >= 8 and latin > 2 * cjk


def question_lang(text: str) -> str:
    if is_english(text):
        return "en"
    return "zh-Hant" if _T2S.convert(text) != text else "zh"


def answer_kind(norm: str) -> str:
    """What kind of fact the question asks for, from its interrogative word, or for a bare topic
    (no interrogative) from its head noun: 2022年特斯拉交付量 asks for a figure as 多少 would."""
    for kind, pattern in _ASKS:
        if pattern.search(norm):
            return kind
    if not INTERROGATIVE.search(norm):
        return next((kind for kind, head in _BARE_HEADS if head.search(norm)), "other")
    return "other"


def asked_measure(norm: str) -> str:
    """The measure word a figure question asks for ('个' for 多少个, '%' for 占比), '' if none is named."""
    from rag.cite import canonical_measure

    if _ASKED_SHARE.search(norm):
        return "%"
    m = _ASKED_MEASURE.search(norm)
    if not m:
        return ""
    return canonical_measure("人" if m.group(2) and m.group(1) == "个" else m.group(1))  # 几个人 counts 人


def analyse(text: str, names: dict[str, bool] | None = None) -> Question:
    """The one record every stage reads. `names` overrides the names found in the text (an English
    question's names come from the caller, which can match them against the corpus)."""
    lang = question_lang(text)
    norm = normalize_query(text)
    asks = answer_kind(norm)
    chinese = norm if lang != "en" else " ".join(CJK_SPAN.findall(norm))
    found = question_names(chinese) if chinese.strip() else {}
    return Question(text, lang, norm, asks, asked_measure(norm) if asks == "figure" else "",
                    {**found, **(names or {})}, bool(_ABOUT_PAGE.search(norm)), alternatives(chinese))


# How a yes/no question is asked (可不可以, 有没有, 是不是, 是否, 能否): the choice the answer makes.
_YES_NO = re.compile(r"(\w)[不没]\1|[是能可]否")


def without_yes_no(norm: str) -> str:
    """The question's words an answer may echo without claiming anything: a yes/no question's A-not-A
    is left out, since "可以连发" answering "可不可以连发" claims exactly the side it picks."""
    return _YES_NO.sub(" ", norm)


CONJUNCTIONS = ("和", "与", "及", "跟", "、", "以及")  # what joins the sides of "A和B"


def alternatives(chinese: str) -> tuple[str, ...]:
    """The words joined by 和/与/及/、 in a question ("英特尔和英伟达全年营收" -> 英特尔, 英伟达): a question
    about several things, each of whose facts must come from a sentence about that one. A name jieba
    cuts into pieces (英 伟达, 生态 城, 2023 年) is joined back on the side away from the conjunction, and
    a word both sides repeat (最佳影片奖和最佳导演奖, 台北市市长和高雄市市长) belongs to each side."""
    return tuple(dict.fromkeys(w for pair in _sides(chinese) for w in pair))


# Words after "A和B" that make the pair one argument of a relation (新城和老城之间, 与自杀风险有关,
# 跟邻水垫江一起): the question asks about the two together, not about each.
_RELATION = frozenset("之间 一起 有关 相关 共同 合作 相比 一样 不同 区别 关系 差别 对比".split())


def joins_one_thing(words: list[str], i: int) -> bool:
    """Is the conjunction at words[i] inside one thing asked about rather than between two? It is when
    a side is what the question asks (鄂伦春族以及哪一个族, 哪种行为与…: the answer is one side) or when
    the pair is the argument of a relation that needs both (之间, 一起, 有关). Such a question has no
    sides at all: it is not split and no fact of it is about one side."""
    near = words[max(0, i - 2):i + 3]
    return any(INTERROGATIVE.search(w) for w in near) or any(w in _RELATION for w in words[i + 2:i + 4])


def _sides(chinese: str) -> list[tuple[str, str]]:
    words = [w for w in jieba.lcut(chinese) if w.strip()]
    pairs: list[tuple[str, str]] = []
    for i in range(1, len(words) - 1):
        if words[i] not in CONJUNCTIONS:
            continue
        if joins_one_thing(words, i):  # so does the list it ends (缆车、索道以及什么)
            return []
        left, right = words[i - 1], words[i + 1]
        if i >= 2 and i + 2 < len(words) and len(left) >= 2 and words[i + 2] == left:
            # each side names its own head noun (台北市 市长 和 高雄市 市长): the sides carry it
            pairs.append((words[i - 2] + left, right + left))
            continue
        if i >= 2 and (len(left) == 1 or words[i - 2] == right):
            left = words[i - 2] + left
        if i + 2 < len(words) and (len(right) == 1 or (right.isdigit() and words[i + 2] in "年月日")
                                   or words[i - 2:i - 1] == [right]):
            right += words[i + 2]
        if len(left) >= 2 and len(right) >= 2 and all(CJK_CHAR.search(w) or w[0].isdigit() for w in (left, right)):
            pairs.append((left, right))
    return pairs


# jieba's word classes, coarsened: two sides of a pair are parallel when their last words share one.
_KIND_OF_TAG = {"ns": "name", "nr": "name", "nrt": "name", "nt": "name", "nz": "name", "j": "name",
                "eng": "name", "m": "number", "mq": "number", "t": "number", "n": "noun", "vn": "noun"}


def parallel(left: str, right: str) -> bool:
    """Two sides of the same kind (中国/美国, 女子/男子, 2022年/2023年): each can stand in for the pair
    in the question. 建设用地和常德经开区 are not: the pair joins two longer clauses."""
    def kind(side: str) -> str:
        tag = pseg.lcut(side)[-1].flag
        return _KIND_OF_TAG.get(tag, tag)
    return kind(left) == kind(right)
