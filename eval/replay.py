"""A/B a verification change on a finished `rag eval` run, without generating anything.

    .venv/bin/python eval/replay.py reports/<run>/<time> [suite ...]

Every recorded draft is put back through today's pipeline (retrieval, evidence, refusal signals,
verification and the decision) in place of the generator, and graded again; a question answered in
parts gets its parts' drafts back in order. Generation is ~95% of an eval's time, so a change to the
checks after generation is measured on whole suites in minutes. Valid only while retrieval, evidence
selection and the prompt are those the run was made with (otherwise the drafts belong to other
evidence). Questions that failed, and parts whose drafts ran over one line, are kept as recorded.
The model's yes/no on its cited sources (rag.ask.confirmed) is asked live, ~1 s per answer.
Prints every question whose verdict or refusal changed, then one line per suite.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rag.ask as ask  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.eval import counts, evidence_spans, judge_answer, known_suites, load_qa  # noqa: E402
from rag.service import Runtime  # noqa: E402


def replay_suite(run: Path, name: str) -> dict[str, int]:
    """rag.eval.counts of one suite's rows, each regraded on its recorded draft."""
    suite = known_suites()[name]
    rows = json.loads((run / name / "report.json").read_text(encoding="utf-8"))["questions"]
    items = {item.id: item for item in load_qa(suite.qa)}
    rt = Runtime.open(Config(corpus=suite.corpus), progress=False)
    replayed = []
    for row in rows:
        item = items[row["id"]]
        drafts = recorded_drafts(row)
        if drafts is not None:
            pending = iter(drafts)
            ask.stream_chat = lambda *args, pending=pending, **kwargs: iter([next(pending, "")])  # as recorded
            out = ask.answer_json(ask.answer(rt, item.q))
            verdict = judge_answer(item, out, evidence_spans(item, suite.corpus), suite.corpus)
            if verdict["correct"] != row["verdict"]["correct"] or verdict["refused"] != row["verdict"]["refused"]:
                print(f"{name} {item.id} correct {row['verdict']['correct']} -> {verdict['correct']}, refused "
                      f"{row['verdict']['refused']} -> {verdict['refused']}: {item.q} {item.facts}\n"
                      f"    draft: {row['draft'][:160]!r}\n    now:   {out['answer'][:160]!r} ({out['reason']})",
                      flush=True)
            row = {**row, "verdict": verdict}
        replayed.append(row)
    return counts(replayed)


def recorded_drafts(row: dict) -> list[str] | None:
    """The drafts the generator wrote for this row, in order, or None when they cannot be told apart.
    A question answered in parts recorded its parts' drafts joined by newlines (a part refused before
    generating wrote ''); only when each part's draft is one line can they be split again."""
    if row.get("error"):
        return None
    parts = row.get("timings", {}).get("parts")
    if not parts:
        return [row["draft"]]
    drafts = row["draft"].split("\n")
    return [d for d in drafts if d] if len(drafts) == parts else None


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    run = Path(argv[0])
    names = argv[1:] or sorted(p.parent.name for p in run.glob("*/report.json"))
    for name in names:
        t = replay_suite(run, name)
        print(f"{name}: correct {t['correct']}/{t['answerable']} · unanswerable refused "
              f"{t['refused_unanswerable']}/{t['unanswerable']} · answerable refused "
              f"{t['refused_answerable']}/{t['answerable']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
