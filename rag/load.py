"""Read corpus files into Documents: raw text exactly as the contract defines it, plus a title.

For .txt/.md the raw text is the file read as UTF-8, so citation offsets index the file itself.
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


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def list_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(corpus).parts))


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:8192]:
        raise LoadError(f"{name}: looks binary (NUL bytes), skipped")
    try:
        # Universal newlines, exactly as open(path, encoding="utf-8").read() gives them (the contract).
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        pass
    decoded: dict[str, str] = {}
    for encoding in ("gb18030", "big5"):
        try:
            decoded[encoding] = data.decode(encoding)
        except UnicodeDecodeError:
            continue
    if decoded:
        # Big5 bytes usually decode as gb18030 too (into kana, Greek, private-use characters): name the
        # encoding whose reading looks like Chinese text, so the suggested iconv command is the right one.
        encoding = max(decoded, key=lambda e: _usual_share(decoded[e][:100_000]))  # ties: gb18030
        raise LoadError(f"{name}: encoded as {encoding}, not UTF-8; convert it with "
                        f"`iconv -f {encoding} -t utf-8` so citations can point into the file")
    raise LoadError(f"{name}: not valid UTF-8 text, skipped")


def _usual_share(text: str) -> float:
    """Share of characters usual in Chinese text: ASCII, CJK ideographs, CJK and full-width punctuation."""
    usual = sum(1 for c in text if c.isascii() or "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f"
                or "\uff00" <= c <= "\uffef")
    return usual / max(len(text), 1)


_TAGS = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.S | re.I)


def _html_text(markup: str) -> str:
    blocks = re.sub(r"<(br|/p|/div|/li|/h\d|/tr)[^>]*>", "\n", markup, flags=re.I)
    return html.unescape(_TAGS.sub("", blocks))


def read_raw(path: Path) -> str:
    """Raw text of one file (see module docstring)."""
    name = path.name
    size = path.stat().st_size
    if size == 0:
        raise LoadError(f"{name}: empty file, skipped")
    if size > MAX_BYTES:
        raise LoadError(f"{name}: {size // 2**20} MB is over the {MAX_BYTES // 2**20} MB limit, skipped")
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            from pypdf import PdfReader

            text = "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
        elif suffix == ".docx":
            import docx

            text = "\n".join(p.text for p in docx.Document(str(path)).paragraphs)
        elif suffix in (".html", ".htm"):
            text = _html_text(_decode(path.read_bytes(), name))
        else:
            text = _decode(path.read_bytes(), name)
    except LoadError:
        raise
    except Exception as exc:  # a broken PDF/DOCX raises anything; the user needs one line, not a trace
        raise LoadError(f"{name}: cannot be read as {suffix[1:]} ({type(exc).__name__}), skipped") from exc
    if not text.strip():
        raise LoadError(f"{name}: no text found, skipped")
    return text


def load_document(corpus: Path, path: Path) -> Document:
    raw = read_raw(path)
    return Document(doc=path.relative_to(corpus).as_posix(), raw=raw, sha256=file_hash(path))
