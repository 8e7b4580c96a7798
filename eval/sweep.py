"""Retrieval sweep on the tuning split: chunk size/overlap and BM25/dense fusion weights.

Runs retrieval only, without English-question translation (so it needs no generator and runs in about a
minute per setting); writes nothing, prints one line per setting. The figures in README "Retrieval"
come from this script: `.venv/bin/python eval/sweep.py`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rag.config import Config
from rag.eval import load_qa, run_eval, summarize
from rag.service import Runtime

SETTINGS = [  # (chunk_size, chunk_overlap, bm25_weight, dense_weight)
    (160, 40, 1.0, 1.0), (240, 60, 1.0, 1.0), (320, 80, 1.0, 1.0), (400, 80, 1.0, 1.0),
    (320, 80, 1.0, 0.5), (320, 80, 1.0, 0.3), (320, 80, 1.0, 0.0), (320, 80, 0.0, 1.0),
]


def main() -> None:
    items = [i for i in load_qa(Path("eval/qa.jsonl")) if i.split == "tune"]
    print("size overlap bm25 dense | R@1 R@5 MRR | R@5 zh zh-Hant en multi-doc")
    with tempfile.TemporaryDirectory() as tmp:
        for size, overlap, bm25_w, dense_w in SETTINGS:
            cfg = Config(index_root=Path(tmp), chunk_size=size, chunk_overlap=overlap, bm25_weight=bm25_w,
                         dense_weight=dense_w, translate_queries=False)
            summary = summarize(run_eval(Runtime.open(cfg, progress=False), items, True, None, progress=False))
            a = summary["all"]
            per_kind = " ".join(str(summary[k]["R@5"]) for k in ("zh", "zh-Hant", "en", "multi-doc"))
            print(f"{size} {overlap} {bm25_w} {dense_w} | {a['R@1']} {a['R@5']} {a['MRR']} | {per_kind}", flush=True)


if __name__ == "__main__":
    main()
