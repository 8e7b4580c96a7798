"""Whose fact is this? Attributing an evidence sentence to the place a question names.

Reports on several places write one section per place and name the place once, at the top: "2023年空气
质量优良率达96.4%" belongs to 荥经 only because 荥经 was named a few sentences earlier. A question about
长宁 that meets this sentence is the classic near-miss: right measure, right year, wrong place. Word
overlap cannot see it, so the sentence is attributed by reading back from it to the nearest mention of
the asked place or of a place listed beside it ("崇州、古蔺、苍溪、长宁、荥经": those lists are how a
document tells us which names are rivals). The nearest mention wins; a document that never names a
surely-placed name (荥经县, 深圳市) is not about it.

The check is deliberately lenient where it cannot tell: a question with no recognisable place name, or a
place the document names with no rival nearer, keeps its evidence, and a sentence about any one of the
question's names is kept. Names are found with jieba's part-of-speech tags, which also tag common words
as names (容纳, 乔木), so only rare words count, and only sure places (tagged ns, or ending in 县/市/区…)
may rule out a whole document.
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass

import jieba
import jieba.posseg

from rag.chunk import Chunk
from rag.clean import normalize
from rag.patterns import CJK

jieba.setLogLevel(logging.WARNING)

_NAME_TAGS = {"ns", "nr", "nrt"}
_ADMIN_SUFFIX = re.compile(r"(?<=..)(?:省|市|县|区|镇|乡|村|州|旗)$")
_PLACE = re.compile(f"^[{CJK}]{{2,8}}(?:省|市|县|区|镇|乡|州)$")
_COMMON = 1000  # words more frequent than this in jieba's dictionary are ordinary words (美丽, 城市, 新建)
_LIST = re.compile(f"[{CJK}]{{1,12}}(?:、[{CJK}]{{1,12}})+")


def core(name: str) -> str:
    """The name without its administrative suffix: 荥经县 -> 荥经, which is how documents often write it."""
    return _ADMIN_SUFFIX.sub("", name)


def is_name(word: str, flag: str) -> bool:
    if len(word) < 2:
        return False
    if _PLACE.match(word):
        return True
    return flag in _NAME_TAGS and jieba.dt.FREQ.get(word, 0) < _COMMON


def question_names(question: str) -> dict[str, bool]:
    """Place and organisation names of a (normalised, Chinese) question, as cores, in order, each with
    whether it is surely a place (tagged ns or ending in 县/市/区…): jieba also tags common words as
    person names (容纳, 乔木), so only sure places may rule out a document that never names them."""
    names: dict[str, bool] = {}
    for t in jieba.posseg.cut(question):
        if is_name(t.word, t.flag):
            name = core(t.word)
            names[name] = names.get(name, False) or t.flag == "ns" or bool(_PLACE.match(t.word))
    return names


@dataclass(frozen=True)
class DocumentView:
    """A document's normalised text, the same with its lists blanked out, its lists of names, and raw
    offsets per character."""

    text: str
    unlisted: str  # lists of names ("崇州、古蔺、苍溪") name none of them in particular
    lists: tuple[frozenset[str], ...]  # the names of each such list, as cores
    starts: tuple[int, ...]

    def offset(self, raw: int) -> int:
        """Normalised position of a raw offset."""
        return bisect.bisect_left(self.starts, raw)

    def rivals(self, name: str) -> set[str]:
        """Names the document lists beside `name` ("崇州、古蔺、苍溪": the rivals of 古蔺)."""
        return {other for names in self.lists if name in names for other in names} - {name}


def document_view(chunks: list[Chunk]) -> DocumentView:
    """One document rebuilt from its chunks (gaps between them were whitespace) and normalised."""
    chars = [" "] * max((c.end for c in chunks), default=0)
    for c in chunks:
        chars[c.start:c.end] = c.text
    norm = normalize("".join(chars))
    unlisted = _LIST.sub(lambda m: " " * len(m.group()), norm.text)
    lists = tuple(names for run in _LIST.finditer(norm.text) if len(names := listed_names(run.group())) > 1)
    return DocumentView(norm.text, unlisted, lists, norm.starts)


def listed_names(run: str) -> frozenset[str]:
    """The names in one 、-separated list; the first and last items carry the words around the list, so
    only their words next to the 、 count."""
    words = [list(jieba.posseg.cut(item)) for item in run.split("、")]
    edge = [w[-1] if i == 0 else w[0] for i, w in enumerate(words) if w]
    return frozenset(core(t.word) for t in edge if is_name(t.word, t.flag))


def is_about(name: str, view: DocumentView, start: int, end: int, sure: bool = True) -> bool:
    """Is the sentence at raw [start, end) of this document about `name`? Read back from it to the nearest
    mention of the name or of a rival; with no mention before it, the document must name a sure place
    somewhere."""
    if not name:
        return True
    a, b = view.offset(start), view.offset(end)
    sentence = view.text[a:b]
    if name in sentence:
        return True
    others = view.rivals(name)
    if any(other in sentence for other in others):
        return False
    before = view.unlisted[:a]
    last = {n: before.rfind(n) for n in (name, *others)}
    nearest = max(last, key=lambda n: last[n])
    if last[nearest] >= 0:
        return nearest == name
    return name in view.unlisted or not sure
