"""Refusal signals on every suite, without generating: the data the thresholds in Config are chosen from.

    .venv/bin/python eval/signals.py [--suite NAME ...] [--out reports/signals.jsonl]

For each question: retrieve and select evidence as `rag ask` does, then record the signals of
rag/decide.py for the best evidence sentence, and whether the answerable question's fact is in the
evidence at all. `--sweep` prints, per threshold, how many answerable and unanswerable questions each
suite would refuse.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.ask import gather  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.eval import fact_found, load_qa, pick_suites  # noqa: E402
from rag.service import Runtime  # noqa: E402


def suite_rows(suite, limit: int | None) -> list[dict]:
    rt = Runtime.open(Config(corpus=suite.corpus, translate_queries=False))  # English: judged by similarity
    rows = []
    for item in load_qa(suite.qa)[:limit]:
        found = gather(rt, item.q)
        evidence_text = " ".join(e.norm for e in found.evidence)
        rows.append({"suite": suite.name, "id": item.id, "kind": item.kind, "answerable": item.answerable,
                     "asks": found.question.asks, "lang": found.question.lang,
                     "coverage": round(found.signals.coverage, 4), "holds_kind": found.signals.holds_kind,
                     "similarity": round(found.signals.similarity, 4),
                     "fact_in_evidence": bool(item.facts) and all(fact_found(f, evidence_text) for f in item.facts)})
    return rows


def sweep(rows: list[dict], key: str, thresholds: list[float]) -> str:
    suites = sorted({r["suite"] for r in rows})
    lines = [f"{key:>8} " + " ".join(f"{s[:14]:>22}" for s in suites)]
    for t in thresholds:
        cells = []
        for s in suites:
            sel = [r for r in rows if r["suite"] == s and (r["lang"] == "en") == (key == "similarity")]
            ans = [r for r in sel if r["answerable"]]
            una = [r for r in sel if not r["answerable"]]
            refuse = [r for r in sel if r[key] < t or not r["holds_kind"]]
            cells.append(f"{sum(not r['answerable'] for r in refuse)}/{len(una)} neg, "
                         f"{sum(r['answerable'] for r in refuse)}/{len(ans)} pos")
        lines.append(f"{t:>8.2f} " + " ".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--suite", action="append", default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", default="reports/signals.jsonl")
    parser.add_argument("--sweep", action="store_true", help="only read --out and print the sweep")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.sweep:
        rows = [r for suite in pick_suites(args.suite or ["all"]) for r in suite_rows(suite, args.limit)]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(sweep(rows, "coverage", [0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]))
    print(sweep(rows, "similarity", [0.5, 0.6, 0.7, 0.75, 0.8, 0.85]))


if __name__ == "__main__":
    main()
