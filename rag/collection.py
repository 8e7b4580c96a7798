"""Adding files to a collection: nothing already there is ever overwritten, nothing is left half-copied.

An upload lands in a hidden temporary file inside the corpus folder (the index ignores dot-files) and is
then hard-linked under its final name, which fails if that name exists: two uploads of the same name at the
same moment cannot both take it, and a reader never sees a partly written file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from rag.load import file_hash


def _names(name: str, tries: int = 999):
    """The upload's own name, then name-2.txt, name-3.txt, …"""
    path = Path(name)
    yield name
    for n in range(2, tries + 1):
        yield f"{path.stem}-{n}{path.suffix}"


def add_file(src: Path, corpus: Path, known: dict[str, str]) -> tuple[str | None, str]:
    """Copy src into corpus under its own name, or a new one if that name holds other content.

    known maps each indexed doc to its SHA-256, so a copy under another name is recognised too.
    Returns (the name it was stored under or None, a one-line message for the user)."""
    name = src.name.lstrip(".") or "upload"
    digest = file_hash(src)
    twins = sorted(doc for doc, h in known.items() if h == digest)
    if twins:
        where = "" if twins[0] == name else f" as {twins[0]}"
        return None, f"= {name}: already in the collection{where}"
    tmp = corpus / f".upload-{uuid.uuid4().hex}{Path(name).suffix}"
    shutil.copyfile(src, tmp)
    try:
        for candidate in _names(name):
            target = corpus / candidate
            try:
                os.link(tmp, target)
            except FileExistsError:
                if file_hash(target) == digest:
                    return None, f"= {name}: already in the collection{'' if candidate == name else ' as ' + candidate}"
                continue
            if candidate == name:
                return candidate, f"✓ {name} added"
            return candidate, (f"✓ {name} added as {candidate}: a different file named {name} is already in the "
                               "collection and was kept")
    finally:
        tmp.unlink(missing_ok=True)
    return None, f"✗ {name}: too many files with this name in the collection"
