"""Chunks: the one record every stage passes on, cut at Chinese sentence boundaries.

Splitting runs on the normalised text (so a chunk's size counts meaningful characters, not pinyin
annotations or page furniture) and each chunk is mapped back to its exact raw span. The splitter tries
line breaks first, then sentence enders, then list markers (一是/二是…), then clause commas, and only
then characters: scraped pages often hold 3,000-character paragraphs with no line break at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.clean import Normalized, normalize
from rag.load import Document

SEPARATORS = [
    "\n",
    r"(?<=[。！？!?])",
    r"(?<=[；;])",
    r"(?=[一二三四五六七八九十]是)",
    r"(?<=[，,、：:])",
    "",
]


@dataclass(frozen=True)
class Chunk:
    id: str
    doc: str
    title: str
    start: int  # raw offsets: raw[start:end] == text
    end: int
    text: str
    norm: str


def title_of(doc: Document, norm: Normalized) -> str:
    """First meaningful line of the page, else the file name."""
    for line in norm.text.split("\n"):
        line = line.strip(" ,，。-—")
        if len(line) >= 4:
            i = norm.text.index(line)
            a, b = norm.raw_span(i, i + len(line))
            return doc.raw[a:b][:60]
    return doc.doc


def chunk_document(doc: Document, size: int, overlap: int) -> list[Chunk]:
    norm = normalize(doc.raw)
    if not norm.text.strip():
        return []
    splitter = RecursiveCharacterTextSplitter(
        separators=SEPARATORS, is_separator_regex=True, keep_separator="end",
        chunk_size=size, chunk_overlap=overlap, add_start_index=True, strip_whitespace=True,
    )
    title = title_of(doc, norm)
    chunks = []
    for piece in splitter.create_documents([norm.text]):
        i = piece.metadata["start_index"]
        j = i + len(piece.page_content)
        if i < 0 or not piece.page_content.strip():
            continue
        a, b = norm.raw_span(i, j)
        chunks.append(Chunk(id=f"{doc.doc}:{a}-{b}", doc=doc.doc, title=title, start=a, end=b,
                            text=doc.raw[a:b], norm=piece.page_content))
    return chunks
