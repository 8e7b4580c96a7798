"""Cited briefings: a topic planned by theme, each section written from its own evidence and checked.

Planning is deterministic (rag.themes): passages about the topic, gathered across the collection, the
same story from several pages kept once, grouped into themes. The model writes each section from its
theme's numbered sentences only. Then every sentence is held to its quotes, more strictly than a chat
answer: the Chinese character bigrams it adds beyond the topic's own must be at least MIN_COVERAGE inside
the sentences it cites, and its figures must be there too. A failing sentence is re-cited, split into
clauses that each stand on a quote, or dropped; a sentence that opens by restating the topic loses that
opening. The result is one structure (Briefing) rendered as Markdown, Word and JSON.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from difflib import SequenceMatcher
from itertools import combinations

from tqdm import tqdm

from rag.cite import bigrams, clauses_of
from rag.clean import TONE_VOWELS, normalize
from rag.patterns import CLAUSE_MARKS
from rag.themes import Passage, Theme, headings, plan, same_story, topic_terms

log = logging.getLogger("rag.brief")
MIN_COVERAGE = 0.8  # share of a sentence's own bigrams (beyond the topic's) found in its cited quotes
MIN_NEW_BIGRAMS = 3  # a sentence adding fewer says nothing the topic did not
CLAUSE_FLOOR = 0.5  # every clause of a kept sentence must be at least this much inside its quotes


@dataclass
class Claim:
    """One sentence of the briefing, with the sources that hold it (briefing-wide numbers)."""

    text: str  # without markers, ending in its punctuation
    cites: list[int]
    coverage: float  # share of its bigrams beyond the topic's inside the cited quotes


@dataclass
class Section:
    heading: str
    claims: list[Claim]
    docs: list[str]  # documents cited, in order

    @property
    def text(self) -> str:
        return "".join(_marked(c) for c in self.claims)


@dataclass
class Source:
    n: int
    doc: str
    title: str
    start: int
    end: int
    quote: str  # raw[start:end]
    also: list[str] = field(default_factory=list)  # documents telling the same story


@dataclass
class Briefing:
    topic: str
    summary: list[Claim]  # one cited line, or empty
    sections: list[Section]
    sources: list[Source] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line per section that failed
    seconds: float = 0.0


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    note: str


def _marked(c: Claim) -> str:
    """The sentence with its markers before the full stop (after a closing quotation mark: 。”[1])."""
    marks = "".join(f"[{n}]" for n in c.cites)
    if c.text[-1:] in "”’」』)）":
        return c.text + marks + ("" if c.text[-2:-1] in "。！？" else "。")
    body, end = (c.text[:-1], c.text[-1]) if c.text[-1:] in "。！？" else (c.text, "。")
    return body + marks + end


# ---------------------------------------------------------------- checking sentences against quotes

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MARK = re.compile(r"\s*\[(\d{1,2})\]")
_SENTENCE = re.compile(r"[^。！？!?\n]+(?:[。！？!?]+[”’」』)）]*|$)(?:\s*\[\d{1,2}\])*")
_CLAUSE = re.compile(f"[^{CLAUSE_MARKS}]+(?:[{CLAUSE_MARKS}]|$)(?:\\s*\\[\\d{{1,2}}\\])*")
_LIST_MARK = re.compile(r"^(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[)）]|\d+[、.．])\s*")
_OPENING = re.compile(r"^(.{2,40}?)(?:[，,：:；;]|(?:主要)?包括|主要有|有以下|如下)")


def _norm(text: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3})", "", normalize(text).text)


def claim_coverage(text: str, quotes: list[str], topic: str) -> float:
    """Share of the sentence's bigrams beyond the topic's that the quotes hold; 0.0 when it adds almost
    nothing to the topic or states a figure the quotes lack."""
    said = _norm(_MARK.sub("", text))
    grams = bigrams(said) - bigrams(_norm(topic))
    if len(grams) < MIN_NEW_BIGRAMS:
        return 0.0
    held = "".join(_norm(q) for q in quotes)
    if set(_NUMBER.findall(said)) - set(_NUMBER.findall(held)):
        return 0.0
    return len(grams & bigrams(held)) / len(grams)


def holds(text: str, quotes: list[str], topic: str) -> float:
    """The sentence's coverage when it stands on these quotes, else 0.0. Besides the whole sentence, no
    clause may lean on the others: a clause of its own words the quotes barely hold (…, and a new hospital)
    sinks the sentence, which is then split and re-cited clause by clause."""
    cov = claim_coverage(text, quotes, topic)
    clauses = clauses_of(_MARK.sub("", text))
    weakest = min((claim_coverage(c, quotes, topic) for c in clauses
                   if len(bigrams(_norm(c)) - bigrams(_norm(topic))) >= MIN_NEW_BIGRAMS), default=1.0)
    return cov if cov >= MIN_COVERAGE and weakest >= CLAUSE_FLOOR else 0.0


def restating_opening(text: str, topic: str) -> int:
    """Length of an opening that only restates the topic (各地推进循环经济的措施包括…), else 0."""
    m = _OPENING.match(text)
    if not m:
        return 0
    grams, shared = bigrams(_norm(m.group(1))), bigrams(_norm(m.group(1))) & bigrams(_norm(topic))
    return m.end() if len(shared) >= 2 and len(shared) >= 0.5 * len(grams) else 0


def inserted_topic(text: str, topic: str, evidence: list[Passage]) -> int:
    """Length of an opening copied from the topic (2022年北京冬奥会火炬接力…) where no quote has it, else 0:
    the model prefixing every sentence with the topic is restating it, not reporting."""
    t = _norm(topic)
    pairs = {t[i:i + 2] for i in range(len(t) - 1)}
    n = 0
    while n + 1 < len(text) and text[n:n + 2] in pairs:
        n += 1
    n = n + 1 if n else 0
    if n < 4 or any(text[:n + 4] in e.norm for e in evidence):
        return 0
    return n + (text[n:n + 1] == "的")


def snap(text: str, quote: str) -> str:
    """A near-verbatim copy with a slip (紧紧围绕 → 紧围绕) takes the quote's own wording: the quote from its
    first to its last character matched, widened to the clause start when the slip is at the very front."""
    body = text.rstrip("。！？")
    blocks = [b for b in SequenceMatcher(None, body, quote, autojunk=False).get_matching_blocks() if b.size]
    if len(body) < 8 or not blocks or sum(b.size for b in blocks) < 0.9 * len(body):
        return text
    start, end = blocks[0].b, blocks[-1].b + blocks[-1].size
    front = quote[max(0, start - 2):start]
    if blocks[0].a == 0 and front and not re.search(r"[，,。；;：:、“”\s]", front):
        if start <= 2 or re.search(r"[，,。；;：:、“\s]", quote[start - 3]):
            start -= len(front)
    span = quote[start:end].strip().rstrip("，,；;：:")
    return span if len(span) <= 1.2 * len(body) else text


def recite(text: str, evidence: list[Passage], topic: str) -> tuple[list[int], float] | None:
    """The fewest evidence sentences (one, else two) that hold the text, best covered first."""
    singles = [([i], holds(text, [e.norm], topic)) for i, e in enumerate(evidence)]
    pairs = [([i, j], holds(text, [evidence[i].norm, evidence[j].norm], topic))
             for i, j in combinations(range(len(evidence)), 2)]
    for options in (singles, pairs):
        best = max(options, key=lambda o: o[1], default=None)
        if best and best[1] >= MIN_COVERAGE:
            return best
    return None


def hold(sentence: str, evidence: list[Passage], topic: str) -> list[tuple[str, list[int], float]]:
    """A drafted sentence as claims its evidence holds: as cited, re-cited, or clause by clause ([] if
    none). Markers are 1-based into `evidence`; the claims' cites are 0-based."""
    cites = sorted({int(n) - 1 for n in _MARK.findall(sentence) if 0 < int(n) <= len(evidence)})
    body = _LIST_MARK.sub("", _MARK.sub("", sentence).strip())  # 二、聚焦… : the source's list numbering
    body = body[restating_opening(body, topic):].lstrip("，,：:；; ")
    body = body[inserted_topic(body, topic, evidence):].lstrip("，,：:；; ").rstrip("，,；;：: ")
    if cites:
        cov = holds(body, [evidence[i].norm for i in cites], topic)
        if cov:
            return [(body, cites, cov)]
    found = recite(body, evidence, topic)
    if found:
        return [(body, *found)]
    clauses = [c.group() for c in _CLAUSE.finditer(sentence) if _MARK.sub("", c.group()).strip(" ，,；;。")]
    if len(clauses) < 2:
        return []
    return _joined([claim for c in clauses for claim in hold(c, evidence, topic)], evidence, topic)


def _joined(claims: list[tuple[str, list[int], float]], evidence: list[Passage], topic: str) -> list[tuple]:
    """Neighbouring clauses that stand on the same quotes become one sentence again."""
    out: list[tuple[str, list[int], float]] = []
    for text, cites, cov in claims:
        if out and out[-1][1] == cites:
            joined = f"{out[-1][0].rstrip('。')}，{text}"
            out[-1] = (joined, cites, claim_coverage(joined, [evidence[i].norm for i in cites], topic))
        else:
            out.append((text, cites, cov))
    return out


def claims_from(draft: str, evidence: list[Passage], topic: str) -> list[tuple[str, list[int], float]]:
    """Every sentence of a model draft that survives `hold`, in order; copies on one quote snapped to it."""
    out = []
    for m in _SENTENCE.finditer(draft):
        for text, cites, cov in hold(m.group().strip(), evidence, topic):
            fixed = snap(text, evidence[cites[0]].norm) if len(cites) == 1 else text
            fixed_cov = claim_coverage(fixed, [evidence[cites[0]].norm], topic) if fixed != text else 0.0
            out.append((fixed, cites, fixed_cov) if fixed_cov >= cov else (text, cites, cov))
    return out


# ---------------------------------------------------------------- writing

SYSTEM = ("你为一份简报写其中一节。只用编号资料里的内容，照抄资料中的名称、数字和说法，不要补充资料以外的内容。"
          "写2到4句话，每句话末尾用方括号标出资料编号，如[1]。不要复述主题，不要写开场白或总结，直接写具体事实。")
# One worked example with invented places, fixed so it sits in the cached prompt prefix.
EXAMPLE = ("主题：各地如何推进垃圾分类\n资料：\n[1] 白石镇在全镇设置智能回收站120个,居民参与率达到80%。\n"
           "[2] 青山区建成餐厨垃圾处理厂1座,日处理能力200吨。\n[3] 白石镇计划到2025年实现生活垃圾回收利用率35%。",
           "白石镇设置智能回收站120个，居民参与率达到80%[1]。青山区建成餐厨垃圾处理厂1座，日处理能力200吨[2]。"
           "白石镇计划到2025年实现生活垃圾回收利用率35%[3]。")
SUMMARY_CHARS = 90
SUMMARY_ASK = "用一句不超过50字的话概括上面资料的共同要点，只用资料里的说法，句末标出资料编号。"


def section_messages(topic: str, evidence: list[Passage], ask: str = "") -> list[dict]:
    sources = "\n".join(f"[{i}] {p.norm}" for i, p in enumerate(evidence, 1))
    user = f"主题：{_norm(topic)}\n资料：\n{sources}" + (f"\n\n{ask}" if ask else "")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": EXAMPLE[0]},
            {"role": "assistant", "content": EXAMPLE[1]}, {"role": "user", "content": user}]


def draft(rt, model: str | None, messages: list[dict], max_tokens: int = 140) -> str:
    from rag.generate import complete

    text, usage = complete(rt.llm(model or rt.cfg.generator), messages, rt.cfg, max_tokens=max_tokens)
    log.debug("draft (%d prompt, %d new tokens, %.1f s): %s", usage.prompt_tokens, usage.completion_tokens,
              usage.total_s, text)
    return text


def write_section(rt, model: str | None, topic: str, theme: Theme, said: list[str]) -> list[tuple]:
    """Claims (text, evidence indexes, coverage) for one theme. When no drafted sentence holds, the best
    evidence sentence is quoted; a claim telling what an earlier one (in `said`) told is left out."""
    evidence = theme.passages
    claims = claims_from(draft(rt, model, section_messages(topic, evidence)), evidence, topic)
    if not claims:
        claims = hold(f"{evidence[0].norm}[1]", evidence, topic)
    kept = []
    for claim in claims:
        if not any(same_story(claim[0], s, 0.6) for s in said):
            kept.append(claim)
            said.append(claim[0])
    return kept


def write_summary(rt, model: str | None, topic: str, b: Briefing) -> list[Claim]:
    """One cited line over the sections' first sources, or [] when no sentence of it holds."""
    firsts = [b.sources[s.claims[0].cites[0] - 1] for s in b.sections[:5]]
    evidence = [Passage(x.doc, x.title, x.start, x.end, x.quote, _norm(x.quote)) for x in firsts]
    if len(evidence) < 2:
        return []
    claims = claims_from(draft(rt, model, section_messages(topic, evidence, SUMMARY_ASK), 64), evidence, topic)
    short = [c for c in claims[:1] if len(c[0]) <= SUMMARY_CHARS]  # a copied paragraph is no summary
    return [Claim(text, [firsts[i].n for i in cites], round(cov, 3)) for text, cites, cov in short]


# ---------------------------------------------------------------- assembling

def _number(b: Briefing, p: Passage) -> int:
    """The briefing-wide source number of a passage (sources are numbered in order of first citation)."""
    for s in b.sources:
        if (s.doc, s.start, s.end) == (p.doc, p.start, p.end):
            return s.n
    b.sources.append(Source(len(b.sources) + 1, p.doc, p.title, p.start, p.end, p.quote, list(p.also)))
    return len(b.sources)


def briefing_stream(rt, topic: str, sections: int = 5, model: str | None = None) -> Iterator[Progress | Briefing]:
    """Progress before each step, then the Briefing. A failing section is noted in `errors` and skipped."""
    started = time.perf_counter()
    b = Briefing(topic, [], [])
    yield Progress(0, 1, "planning sections")
    themes = plan(rt, topic, sections)
    if not themes:
        b.errors.append("the documents hold nothing on this topic")
    said: list[str] = []
    cited: list[list[Passage]] = []
    for i, theme in enumerate(themes):
        yield Progress(i, len(themes) + 1, f"section {i + 1} of {len(themes)}: {theme.heading}")
        try:
            claims = write_section(rt, model, topic, theme, said)
        except Exception as exc:  # one section's failure (model, memory, a bug) never sinks the briefing
            b.errors.append(f"section {i + 1} ({theme.heading}): {type(exc).__name__}: {exc}")
            log.warning("%s", b.errors[-1])
            continue
        if claims:
            kept = [Claim(text, [_number(b, theme.passages[j]) for j in cites], round(cov, 3))
                    for text, cites, cov in claims]
            docs = list(dict.fromkeys(b.sources[n - 1].doc for c in kept for n in c.cites))
            b.sections.append(Section(theme.heading, kept, docs))
            cited.append(list(dict.fromkeys(theme.passages[j] for _, cites, _ in claims for j in cites)))
    # Headed by what each section ended up saying, not by all its theme gathered.
    for section, heading in zip(b.sections, headings(cited, topic_terms(topic)), strict=True):
        section.heading = heading
    if b.sections:
        yield Progress(len(themes), len(themes) + 1, "summary line")
        try:
            b.summary = write_summary(rt, model, topic, b)
        except Exception as exc:
            b.errors.append(f"summary: {type(exc).__name__}: {exc}")
    b.seconds = round(time.perf_counter() - started, 2)
    yield b


def write_briefing(rt, topic: str, sections: int = 5, model: str | None = None, progress: bool = True,
                   on_section: Callable[[Progress], None] | None = None) -> Briefing:
    """The whole briefing; progress per section on stderr (tqdm) or through on_section."""
    bar = tqdm(total=1, desc="briefing", unit="step", disable=not progress, file=sys.stderr)
    result = None
    for item in briefing_stream(rt, topic, sections, model):
        if isinstance(item, Briefing):
            result = item
            continue
        bar.total, bar.n = item.total, item.done
        bar.set_description(item.note)
        if on_section is not None:
            on_section(item)
    bar.n = bar.total
    bar.close()
    assert result is not None
    return result


# ---------------------------------------------------------------- rendering

# A title cut at 60 characters can end inside a pinyin annotation: 當(dāng
_CUT_ANNOTATION = re.compile(rf"\((?:[a-z{TONE_VOWELS}]*[{TONE_VOWELS}][a-z{TONE_VOWELS}]*)?$")
# Emoji, pictographs and their joiners, variation selectors, skin tones and tags: decoration, not title.
_EMOJI = re.compile("[\u200d\u2600-\u27bf\u2b00-\u2bff\ufe00-\ufe0f\U0001f000-\U0001faff\U000e0000-\U000e007f]")
_HEADING_EDGES = " ,，。、;；:：-—_|·"


def clean_title(title: str, doc: str) -> str:
    """A source's title without scraping noise (pinyin, furniture, debris, emoji), in the source's own script.

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




def _source_line(s: Source) -> str:
    also = f" (also in {', '.join(f'`{d}`' for d in s.also)})" if s.also else ""
    return f"{clean_title(s.title, s.doc)} (`{s.doc}`, characters {s.start}–{s.end}): “{s.quote}”{also}"


def to_markdown(b: Briefing) -> str:
    lines = [f"# {b.topic}", ""]
    if b.summary:
        lines += ["".join(_marked(c) for c in b.summary), ""]
    for s in b.sections:
        lines += [f"## {s.heading}", "", s.text, ""]
    if b.errors:
        lines += ["## Not included", "", *(f"- {e}" for e in b.errors), ""]
    if b.sources:
        lines += ["## Sources", "", *(f"{s.n}. {_source_line(s)}" for s in b.sources), ""]
    return "\n".join(lines)


CJK_FONT = "Noto Serif CJK SC"  # East Asian font named in the Word file; Word and LibreOffice substitute
# a installed CJK font when it is missing, as long as the text is marked East Asian (w:eastAsia).


def _cjk_styles(d) -> None:
    """Every style used names an East Asian font and language, so CJK never falls back to a Latin face."""
    from docx.oxml.ns import qn

    for name in ("Normal", "Title", "Heading 1"):
        rpr = d.styles[name].element.get_or_add_rPr()
        fonts = rpr.get_or_add_rFonts()
        for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
            fonts.attrib.pop(qn(attr), None)
        fonts.set(qn("w:eastAsia"), CJK_FONT)
        lang = rpr.find(qn("w:lang"))
        if lang is None:
            lang = rpr.makeelement(qn("w:lang"), {})
            rpr.append(lang)
        lang.set(qn("w:eastAsia"), "zh-CN")


def to_docx(b: Briefing, path) -> None:
    import docx

    d = docx.Document()
    _cjk_styles(d)
    d.add_heading(b.topic, level=0)
    if b.summary:
        d.add_paragraph("".join(_marked(c) for c in b.summary))
    for s in b.sections:
        d.add_heading(s.heading, level=1)
        d.add_paragraph(s.text)
    if b.sources:
        d.add_heading("Sources", level=1)
    for s in b.sources:
        p = d.add_paragraph(style="List Number")  # numbered 1, 2, … as the sources are
        p.add_run(f"{clean_title(s.title, s.doc)} ").bold = True
        p.add_run(f"({s.doc}, characters {s.start}–{s.end}): ")
        p.add_run(f"“{s.quote}”").italic = True
        if s.also:
            p.add_run(f" (also in {', '.join(s.also)})")
    d.save(str(path))


def to_json(b: Briefing) -> dict:
    out = asdict(b)
    for section, s in zip(out["sections"], b.sections, strict=True):
        section["text"] = s.text
    out["summary_text"] = "".join(_marked(c) for c in b.summary)
    return out
