"""Read corpus files into Documents: raw text exactly as the contract defines it, plus a title.

For .txt/.md the raw text is the file read as UTF-8, so citation offsets index the file itself. A file that
is not valid UTF-8 but reads as Chinese text in GB18030 (GB2312/GBK) or Big5 is decoded with that encoding,
and its offsets index the decoded text (the JSON output names the encoding).
HTML, PDF and DOCX have no character offsets of their own; their extracted text *is* their raw text.
A file that cannot be read raises LoadError with a one-line reason; callers skip it and go on.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = {".txt", ".md", ".html", ".htm", ".pdf", ".docx"}
MAX_BYTES = 64 * 1024 * 1024


class LoadError(ValueError):
    """A file that cannot be indexed; the message is shown to the user as is."""


@dataclass(frozen=True)
class Document:
    doc: str  # path relative to the corpus folder
    raw: str
    sha256: str
    encoding: str = "utf-8"  # of a .txt/.md/.html file; citation offsets index the text decoded with it


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def list_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(corpus).parts))


# Older Chinese systems wrote GB2312/GBK (read as their superset GB18030) or Big5; UTF-16 has a byte-order mark.
LEGACY = ("gb18030", "big5")
MIN_COMMON_SHARE = 0.8  # share of frequent characters a reading needs (see _is_common)


def _decode(data: bytes, name: str) -> tuple[str, str]:
    """(text, encoding): UTF-8 when it is valid (the contract), else the legacy encoding whose strict
    reading looks like Chinese text. Newlines are universal, as open(path, encoding=...).read() gives them."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return _universal(data.decode("utf-16")), "utf-16"
    if b"\x00" in data[:8192]:
        raise LoadError(f"{name}: looks binary (NUL bytes), skipped")
    try:
        return _universal(data.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    readings = {}
    for encoding in LEGACY:
        try:
            readings[encoding] = data.decode(encoding)
        except UnicodeDecodeError:
            continue
    # Big5 bytes often decode as GB18030 too, into rare characters: the reading with more common ones wins.
    scored = {enc: common_share(text[:100_000]) for enc, text in readings.items()}
    best = max(scored, key=scored.get, default=None)  # ties: gb18030
    if best is None or scored[best] < MIN_COMMON_SHARE:
        raise LoadError(f"{name}: not valid UTF-8, and not Chinese text in GB18030 or Big5 either, skipped")
    return _universal(readings[best]), best


def _universal(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


_USUAL_RANGES = (("\u0000", "\u024f"), ("\u2000", "\u218f"), ("\u3000", "\u303f"), ("\uff00", "\uffef"))
_HANZI_BLOCKS = (("gb2312", b"\xb0\xa1", b"\xd7\xf9"), ("big5", b"\xa4\x40", b"\xc6\x7e"))


def _is_common(c: str) -> bool:
    """Latin (pinyin tone marks too), general, CJK or full-width punctuation, or a frequent character:
    GB2312 level 1 (the 3,755 most used Simplified ones) or Big5's frequent block (5,401 Traditional ones).
    On 850 news pages the right reading scored >= 0.92, a wrong one (Big5 read as GB18030 or back) <= 0.65."""
    if any(low <= c <= high for low, high in _USUAL_RANGES):
        return True
    for encoding, low, high in _HANZI_BLOCKS:
        try:
            if low <= c.encode(encoding) <= high:
                return True
        except UnicodeEncodeError:
            continue
    return False


def common_share(text: str) -> float:
    """Share of a text's non-ASCII characters that are common in Chinese writing (1.0 for pure ASCII)."""
    wide = [c for c in text if not c.isascii()]
    return sum(map(_is_common, wide)) / len(wide) if wide else 1.0


_TAGS = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.S | re.I)


def _html_text(markup: str) -> str:
    blocks = re.sub(r"<(br|/p|/div|/li|/h\d|/tr)[^>]*>", "\n", markup, flags=re.I)
    return html.unescape(_TAGS.sub("", blocks))


def read_raw(path: Path) -> str:
    """Raw text of one file (see module docstring)."""
    return read_text(path)[0]


def read_text(path: Path) -> tuple[str, str]:
    """(raw text, the encoding it was decoded with): 'utf-8', 'gb18030', 'big5', 'utf-16'; '' for PDF/DOCX."""
    name = path.name
    size = path.stat().st_size
    if size == 0:
        raise LoadError(f"{name}: empty file, skipped")
    if size > MAX_BYTES:
        raise LoadError(f"{name}: {size // 2**20} MB is over the {MAX_BYTES // 2**20} MB limit, skipped")
    suffix = path.suffix.lower()
    encoding = ""
    try:
        if suffix == ".pdf":
            from pypdf import PdfReader

            text = "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
        elif suffix == ".docx":
            import docx

            text = "\n".join(p.text for p in docx.Document(str(path)).paragraphs)
        elif suffix in (".html", ".htm"):
            text, encoding = _decode(path.read_bytes(), name)
            text = _html_text(text)
        else:
            text, encoding = _decode(path.read_bytes(), name)
    except LoadError:
        raise
    except Exception as exc:  # a broken PDF/DOCX raises anything; the user needs one line, not a trace
        raise LoadError(f"{name}: cannot be read as {suffix[1:]} ({type(exc).__name__}), skipped") from exc
    if not text.strip():
        raise LoadError(f"{name}: no text found, skipped")
    return text, encoding


def load_document(corpus: Path, path: Path) -> Document:
    raw, encoding = read_text(path)
    return Document(doc=path.relative_to(corpus).as_posix(), raw=raw, sha256=file_hash(path), encoding=encoding)
