"""Check a briefing's JSON (from `rag brief --out FILE.md`, written beside it) against issue 19's acceptance.

    .venv/bin/python eval/brief_check.py FILE.json CORPUS_DIR

Independent of rag/brief.py's own checks: quotes are re-read from the corpus files, and coverage,
topic restating and repeated stories are measured here again. Prints one line per property.
"""

from __future__ import annotations

import json
import re
import sys
from itertools import combinations
from pathlib import Path

from rag.cite import bigrams
from rag.clean import normalize
from rag.load import read_raw


def _norm(text: str) -> str:
    return normalize(re.sub(r"\[\d+\]", "", text)).text


def check(data: dict, corpus: Path) -> dict:
    topic = bigrams(_norm(data["topic"]))
    sources = {s["n"]: s for s in data["sources"]}
    exact = all(read_raw(corpus / s["doc"])[s["start"]:s["end"]] == s["quote"] for s in sources.values())
    claims = [(i, c) for i, s in enumerate(data["sections"]) for c in s["claims"]] + [(-1, c) for c in data["summary"]]
    coverages = []
    restating = []
    for _, c in claims:
        own = bigrams(_norm(c["text"])) - topic
        held = bigrams("".join(_norm(sources[n]["quote"]) for n in c["cites"]))
        coverages.append(len(own & held) / len(own) if own else 0.0)
        first = bigrams(re.split(r"[，,：:；;]|包括", _norm(c["text"]))[0])
        quotes = "".join(_norm(sources[n]["quote"]) for n in c["cites"])
        if first and len(first & topic) >= max(2, 0.5 * len(first)) or _topic_opening(c["text"], data["topic"], quotes):
            restating.append(c["text"])
    repeats = [(a["text"], b["text"]) for (i, a), (j, b) in combinations(claims, 2)
               if i != j and i >= 0 and j >= 0 and _shared(a["text"], b["text"], topic) >= 0.5]
    return {
        "sections": len(data["sections"]), "sentences": len(claims), "sources": len(sources),
        "exact quotes": exact,
        "min coverage": round(min(coverages, default=0.0), 3),
        "sentences below 0.8": sum(c < 0.8 for c in coverages),
        "sentences restating the topic": restating,
        "documents cited": len({sources[n]["doc"] for _, c in claims for n in c["cites"]}),
        "headings": [s["heading"] for s in data["sections"]],
        "longest heading": max((len(s["heading"]) for s in data["sections"]), default=0),
        "sentence pairs of different sections sharing >= 50% of their own wording": repeats,
        "summary": data.get("summary_text", ""),
        "seconds": data["seconds"], "errors": data["errors"],
    }


def _topic_opening(text: str, topic: str, quotes: str) -> bool:
    """Opens with 4+ characters of the topic's own text that its quotes do not open a phrase with."""
    text, topic = _norm(text), _norm(topic)
    n = next((k for k in range(len(text), 3, -1) if text[:k] in topic), 0)
    return n >= 4 and text[:n + 4] not in quotes


def _shared(a: str, b: str, topic: set[str]) -> float:
    """Share of the shorter sentence's wording (beyond the topic's own) that the other repeats."""
    ga, gb = bigrams(_norm(a)) - topic, bigrams(_norm(b)) - topic
    return len(ga & gb) / min(len(ga), len(gb)) if ga and gb else 0.0


if __name__ == "__main__":
    report = check(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")), Path(sys.argv[2]))
    for key, value in report.items():
        print(f"{key}: {value}")
