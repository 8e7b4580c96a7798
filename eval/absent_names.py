"""Ablation of the absent-names refusal (rag.decide.absent_names) on every suite, without generating.

    .venv/bin/python eval/absent_names.py [reports/<run>/<time>]

For each question: the proper names it asks about that no chunk of its collection writes (with or without
an administrative suffix). Such a question is refused before the model runs. Prints, per suite, how many
answerable and unanswerable questions the signal refuses, and lists them; given a finished `rag eval` run,
it also says whether the product had refused each of them anyway (so the gain is the rest).
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.config import Config  # noqa: E402
from rag.decide import absent_names  # noqa: E402
from rag.eval import known_suites, load_qa  # noqa: E402
from rag.index import current_index, writes  # noqa: E402
from rag.question import analyse  # noqa: E402


def refused_before(run: Path | None) -> dict[str, bool]:
    """Question text -> refused, from a finished run's per-suite report.json files."""
    if run is None:
        return {}
    return {row["q"]: row["refused"] for report in run.glob("*/report.json")
            for row in json.loads(report.read_text(encoding="utf-8"))["questions"]}


def main() -> None:
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    refused = refused_before(run)
    for name, suite in known_suites().items():
        index = current_index(Config(corpus=suite.corpus))
        if index is None:
            print(f"{name}: no index (run `rag index --corpus {suite.corpus}` first)")
            continue
        counts = {True: [0, 0], False: [0, 0]}  # answerable? -> [questions, refused by the signal]
        for item in load_qa(suite.qa):
            absent = absent_names(analyse(item.q), partial(writes, index))
            counts[bool(item.facts)][0] += 1
            counts[bool(item.facts)][1] += bool(absent)
            if absent:
                kind = "answerable" if item.facts else "unanswerable"
                print(f"  {name} {kind}: {item.q} -> never named: {', '.join(absent)}"
                      f"{'' if item.q not in refused else f' (refused in the run: {refused[item.q]})'}")
        (n_ans, ans), (n_neg, neg) = counts[True], counts[False]
        print(f"{name}: refused {neg}/{n_neg} unanswerable, {ans}/{n_ans} answerable")


if __name__ == "__main__":
    main()
