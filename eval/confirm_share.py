"""Calibrate the model's confirmation (Config.min_confirm, min_confirm_en) on a finished `rag eval` run.

    .venv/bin/python eval/confirm_share.py reports/<run>/<time>[:suite] ...

For every question the product answered (not refused), the generator is asked apart, as the
pipeline asks it (rag.generate.yes_probability on the cited sentences, each read with the one before),
how sure it is that they answer the question. Prints each answer's probability and verdict, then, per
threshold and for English and Chinese questions apart, how many wrong answers would become refusals
(good) against correct answers lost (bad).
A question answered in parts is asked here as a whole, so its figure can differ from the pipeline's;
eval/replay.py gives the exact effect of a threshold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.ask import in_context  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.eval import known_suites  # noqa: E402
from rag.generate import yes_probability  # noqa: E402
from rag.question import question_lang  # noqa: E402
from rag.service import Runtime  # noqa: E402

THRESHOLDS = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


def probabilities(run: Path, name: str) -> list[tuple[str, bool, float]]:
    """(language, correct, probability) for each answer the run kept in one suite."""
    rows = json.loads((run / name / "report.json").read_text(encoding="utf-8"))["questions"]
    rt = Runtime.open(Config(corpus=known_suites()[name].corpus), progress=False)
    llm = rt.llm(rt.cfg.confirm_with, role="confirm")
    out = []
    for row in rows:
        if row.get("error") or row["refused"] or not row["citations"]:
            continue
        contexts = [in_context(rt, SimpleNamespace(doc=c["doc"], start=c["start"], end=c["end"]))
                    for c in row["citations"]]
        p, _ = yes_probability(llm, row["q"], contexts)
        lang = "en" if question_lang(row["q"]) == "en" else "zh"
        out.append((lang, bool(row["verdict"]["correct"]), p))
        print(f"{name} {row['id']} {lang} {'correct' if out[-1][1] else 'wrong'} {p:.3f}", flush=True)
    return out


def main(args: list[str]) -> None:
    answers = []
    for arg in args:
        run, _, only = arg.partition(":")
        names = [only] if only else [p.name for p in Path(run).iterdir() if (p / "report.json").exists()]
        for name in names:
            answers += probabilities(Path(run), name)
    for lang in ("en", "zh"):
        kept = [(c, p) for answer_lang, c, p in answers if answer_lang == lang]
        right = sum(c for c, _ in kept)
        print(f"\n{lang}: {len(kept)} answers kept, {right} correct, {len(kept) - right} wrong")
        print("| threshold | wrong answers refused | correct answers lost |\n|---|---|---|")
        for t in THRESHOLDS:
            print(f"| {t} | {sum(not c and p < t for c, p in kept)} | {sum(c and p < t for c, p in kept)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
