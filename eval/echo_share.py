"""Calibrate the echo check (Config.min_echo) on a finished `rag eval` run, without generating anything.

    .venv/bin/python eval/echo_share.py reports/<run>/<time>

For every answer the product gave (not refused), each answer sentence's echo share is recomputed: how much
of what it repeats from the question its cited sentences hold, read with their context (rag.ask
.echoed_held). The lowest share over an answer's sentences decides whether that answer would survive a
threshold. Prints, per threshold, how many answers to unanswerable questions would be withdrawn (good)
against correct answers lost (bad), per suite.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.ask import echoed_held, gather  # noqa: E402
from rag.cite import Evidence, split_answer, strip_markers  # noqa: E402
from rag.clean import normalize  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.service import Runtime  # noqa: E402

THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def lowest_share(rt, row: dict) -> float:
    """The lowest echo share over the answer's sentences (1.0 when nothing is echoed)."""
    g = gather(rt, row["q"])
    share = echoed_held(rt, g.weights, g.question.names)
    cited = {c["n"]: Evidence(c["doc"], c["title"], c["start"], c["end"], c["quote"], "", 0.0)
             for c in row["citations"]}
    lowest = 1.0
    for sentence in split_answer(row["answer"].split("\nSources:")[0]):
        marks = [int(n) for n in re.findall(r"\[(\d{1,2})\]", sentence)]
        evidence = [cited[n] for n in marks if n in cited]
        if evidence:
            lowest = min(lowest, share(normalize(strip_markers(sentence)).text, evidence))
    return lowest


def suite_rows(folder: Path) -> list[tuple[str, bool, float]]:
    """(kind, correct, lowest echo share) for each answered question of one suite; with --show T, the
    answers a threshold T would withdraw are printed."""
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    rt = Runtime.open(replace(Config(), corpus=Path(report["meta"]["corpus"])), progress=False)
    out = []
    for row in report["questions"]:
        if row["refused"] or row.get("error"):
            continue
        correct = bool(row.get("verdict", {}).get("correct"))
        out.append((row["kind"], correct, lowest_share(rt, row)))
        if SHOW and out[-1][2] < SHOW:
            print(f"  {row['id']} {'correct' if correct else row['kind']} {out[-1][2]:.2f} {row['q']} -> {row['answer'][:90]}")
    return out


SHOW = float(sys.argv[sys.argv.index("--show") + 1]) if "--show" in sys.argv else 0.0


def main() -> None:
    run = Path(sys.argv[1])
    for folder in sorted(p for p in run.iterdir() if (p / "report.json").is_file()):
        rows = suite_rows(folder)
        print(f"\n{folder.name}: {len(rows)} answered")
        for t in THRESHOLDS:
            withdrawn_neg = sum(k == "unanswerable" and s < t for k, _, s in rows)
            lost_correct = sum(k != "unanswerable" and c and s < t for k, c, s in rows)
            withdrawn_wrong = sum(k != "unanswerable" and not c and s < t for k, c, s in rows)
            print(f"  min_echo {t}: unanswerable withdrawn {withdrawn_neg}, correct lost {lost_correct}, "
                  f"wrong answers withdrawn {withdrawn_wrong}")


if __name__ == "__main__":
    main()
