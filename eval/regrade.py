"""Grade a finished `rag eval` run again with the current grader, without generating anything.

    .venv/bin/python eval/regrade.py reports/<run>/<time>

Reads each suite's report.json (the answers as the product gave them), judges every answer again, and
prints the combined table. For grader changes only: the answers themselves are not re-run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.eval import combined_table, evidence_spans, judge_answer, load_qa, summarize  # noqa: E402


def regrade(folder: Path) -> dict:
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    corpus = Path(report["meta"]["corpus"])
    items = {item.id: item for item in load_qa(Path(report["meta"]["qa"]))}
    for row in report["questions"]:
        if "verdict" in row and row["id"] in items:
            item = items[row["id"]]
            row["verdict"] = judge_answer(item, row, evidence_spans(item, corpus), corpus)
    return summarize(report["questions"])


def main() -> None:
    run = Path(sys.argv[1])
    suites = sorted(p for p in run.iterdir() if (p / "report.json").is_file())
    print(combined_table({p.name: regrade(p) for p in suites}))


if __name__ == "__main__":
    main()
