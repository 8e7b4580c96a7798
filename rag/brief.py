"""Cited briefings: one topic, answered per document, assembled into Markdown or Word.

Planning is deterministic rather than left to the small model: the topic is searched widely, hits are
grouped by document, and each of the best documents becomes a section whose sub-question is the topic
asked of that document alone. Each section goes through the same answer-and-verify path as `rag ask`,
so a briefing sentence survives only with a supporting quote, and every source is an exact raw slice.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from rag.ask import Retrieval, answer, question_lang, retrieve_for
from rag.cite import Citation
from rag.clean import TONE_VOWELS, normalize


@dataclass
class Section:
    heading: str
    doc: str
    question: str
    text: str
    citations: list[Citation]


@dataclass
class Briefing:
    topic: str
    summary: str
    sections: list[Section]
    sources: list[Citation] = field(default_factory=list)  # renumbered across the whole briefing
    seconds: float = 0.0


def plan(rt, topic: str, docs: int) -> list[tuple[str, Retrieval]]:
    """The best `docs` documents for the topic, each with its own hits (at least one passage per document)."""
    wide = retrieve_for(rt, topic, k=max(30, rt.cfg.k * 6))
    by_doc: dict[str, list] = {}
    for hit in wide.hits:
        by_doc.setdefault(hit.chunk.doc, []).append(hit)
    chosen = list(by_doc.items())[:docs]
    return [(doc, Retrieval(hits[: rt.cfg.k], wide.variants, wide.seconds)) for doc, hits in chosen]


# A title cut at 60 characters can end inside a pinyin annotation: 當(dāng
_CUT_ANNOTATION = re.compile(rf"\((?:[a-z{TONE_VOWELS}]*[{TONE_VOWELS}][a-z{TONE_VOWELS}]*)?$")
# Emoji, pictographs and their joiners, variation selectors, skin tones and tags: decoration, not title.
_EMOJI = re.compile("[\u200d\u2600-\u27bf\u2b00-\u2bff\ufe00-\ufe0f\U0001f000-\U0001faff\U000e0000-\U000e007f]")
_HEADING_EDGES = " ,，。、;；:：-—_|·"


def section_heading(title: str, doc: str) -> str:
    """The title without scraping noise (pinyin, furniture, debris, emoji), in the source's own script.

    Titles are raw slices, so they carry what the normalised view drops; the heading keeps the raw
    characters the normalisation kept (Traditional stays Traditional), else falls back to the file name.
    """
    title = _CUT_ANNOTATION.sub("", title or "")
    norm = normalize(title)
    kept, end = [], 0
    for ch, a, b in zip(norm.text, norm.starts, norm.ends, strict=True):
        if ch.isspace() or a < end:  # spacing is taken from the raw gap; NFKC may expand one character
            continue
        if any(c.isspace() for c in title[end:a]):
            kept.append(" ")
        kept.append(title[a:b])
        end = b
    heading = " ".join(_EMOJI.sub("", "".join(kept)).split()).strip(_HEADING_EDGES)
    return _shorten(heading) or doc


def _shorten(heading: str, limit: int = 30) -> str:
    """A page without a real title lends its first sentence: keep its first clause, or cut with an ellipsis."""
    if len(heading) <= limit:
        return heading
    clause = re.match(rf"(.{{8,{limit}}}?)[,，。;；:：]", heading)
    return clause.group(1) if clause else heading[:limit].rstrip() + "…"


def write_briefing(rt, topic: str, docs: int = 5, model: str | None = None, progress: bool = True,
                   on_section: Callable[[int, int], None] | None = None) -> Briefing:
    """on_section(done, total) is called before each section, for callers with their own progress display."""
    started = time.perf_counter()
    sections: list[Section] = []
    planned = plan(rt, topic, docs)
    for i, (doc, retrieval) in enumerate(tqdm(planned, desc="briefing", unit="section", disable=not progress,
                                              file=sys.stderr)):
        if on_section is not None:
            on_section(i, len(planned))
        result = answer(rt, topic, model, retrieval, strict=False)
        if result.refused or not result.citations:
            continue
        heading = section_heading(result.citations[0].title, doc)
        sections.append(Section(heading, doc, topic, result.answer, result.citations))
    briefing = Briefing(topic, "", sections)
    _renumber(briefing)
    briefing.summary = _summary(briefing, question_lang(topic))
    briefing.seconds = round(time.perf_counter() - started, 2)
    return briefing


def _renumber(b: Briefing) -> None:
    """Section-local [n] markers become briefing-wide source numbers."""
    for s in b.sections:
        local = {}
        for c in s.citations:
            key = (c.doc, c.start, c.end)
            existing = next((x for x in b.sources if (x.doc, x.start, x.end) == key), None)
            if existing is None:
                existing = Citation(len(b.sources) + 1, c.doc, c.title, c.start, c.end, c.quote)
                b.sources.append(existing)
            local[c.n] = existing.n
        s.text = re.sub(r"\[(\d+)\]", lambda m, table=local: f"[{table.get(int(m.group(1)), m.group(1))}]", s.text)
        s.citations = [x for x in b.sources if x.n in local.values()]


def _summary(b: Briefing, lang: str) -> str:
    n_docs = len({s.doc for s in b.sections})
    if lang == "en":
        return f"{len(b.sections)} sections from {n_docs} documents; every statement cites its source sentence."
    return f"本简报从{n_docs}份文件中整理出{len(b.sections)}个部分，每句均附原文出处。"


def to_markdown(b: Briefing) -> str:
    lines = [f"# {b.topic}", "", b.summary, ""]
    for s in b.sections:
        lines += [f"## {s.heading}", "", s.text, ""]
    lines += ["## Sources", ""]
    for c in b.sources:
        lines.append(f"{c.n}. {section_heading(c.title, c.doc)} (`{c.doc}`, characters {c.start}–{c.end}): “{c.quote}”")
    return "\n".join(lines) + "\n"


def to_docx(b: Briefing, path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading(b.topic, level=0)
    d.add_paragraph(b.summary)
    for s in b.sections:
        d.add_heading(s.heading, level=1)
        d.add_paragraph(s.text)
    d.add_heading("Sources", level=1)
    for c in b.sources:
        p = d.add_paragraph(style="List Number")
        p.add_run(f"{section_heading(c.title, c.doc)} ").bold = True
        p.add_run(f"({c.doc}, characters {c.start}–{c.end}): ")
        p.add_run(f"“{c.quote}”").italic = True
    d.save(str(path))


def to_json(b: Briefing) -> dict:
    return asdict(b)
