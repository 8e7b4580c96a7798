"""Retrieval sweep over every QA suite: chunk size/overlap, BM25:dense fusion weights, English variants.

Retrieval only (no generator unless --translate): the embedder is loaded once, each suite is indexed once
per chunk setting (indexes are kept under --index-root, so a second run reuses them), and each fusion
setting re-runs the questions. Prints one row per setting and suite (R@1, R@5, MRR) and the combined
row: the mean over suites, each suite counting once. README "Retrieval" comes from this script:

    .venv/bin/python eval/sweep.py                       # chunk sizes x weights, all suites
    .venv/bin/python eval/sweep.py --english-ablation    # English variants at the chosen settings
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from rag.config import Config
from rag.eval import load_qa, run_eval, summarize
from rag.index import build_index, current_index, is_stale
from rag.service import Runtime, load_embedder
from rag.store import FaissStore

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench"
SUITES = {"qa-tune": (ROOT / "eval" / "qa.jsonl", ROOT / "corpus")} | {
    name: (BENCH / name / "qa.jsonl", BENCH / name / "corpus") for name in ("rgb-news", "rgb-multi", "drcd-zht", "xquad-en")}
CHUNKS = [(240, 60), (320, 80), (400, 100)]
WEIGHTS = [(1.0, 0.0), (1.0, 0.3), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0), (0.3, 1.0), (0.0, 1.0)]
ENGLISH = {  # English questions: what the question's own BM25 words weigh, and which variants are searched
    "BM25 words as Chinese": {"bm25_weight_en": None},
    "BM25 words 0.3": {"bm25_weight_en": 0.3}, "BM25 words 0.1": {"bm25_weight_en": 0.1},
    "no BM25 words": {"bm25_weight_en": 0.0}, "0 +pinyin names": {"bm25_weight_en": 0.0, "pinyin_names": True},
    "0.1 +pinyin names": {"bm25_weight_en": 0.1, "pinyin_names": True},
    "0 +pinyin +translation": {"bm25_weight_en": 0.0, "pinyin_names": True, "translate_queries": True}}


class MemoEmbedder:
    """The real embedder, remembering query vectors: each fusion setting re-asks the same questions."""

    def __init__(self, inner):
        self.inner, self.dim, self.memo = inner, inner.dim, {}

    def embed(self, texts: list[str], prompt: str):
        if prompt != "query":
            return self.inner.embed(texts, prompt)
        missing = [t for t in dict.fromkeys(texts) if (t, prompt) not in self.memo]
        for text, vector in zip(missing, self.inner.embed(missing, prompt), strict=True):
            self.memo[text, prompt] = vector
        return np.stack([self.memo[t, prompt] for t in texts])


def runtime_for(cfg: Config, embedder, embedder_id: str) -> Runtime:
    index = current_index(cfg)
    if is_stale(cfg, index, embedder_id):
        started = time.perf_counter()
        index = build_index(cfg, embedder, embedder_id, progress=False)
        seconds = time.perf_counter() - started
        print(f"# indexed {cfg.corpus.parent.name}/{cfg.corpus.name} ({cfg.chunk_size}/{cfg.chunk_overlap}): "
              f"{len(index.chunks)} chunks in {seconds:.1f} s ({len(index.chunks) / seconds:.1f} chunks/s)", flush=True)
    return Runtime(cfg, embedder, embedder_id, index, store=FaissStore(index.dense))


def measure(rt: Runtime, items, only_en: bool = False) -> dict:
    rows = run_eval(rt, [i for i in items if i.lang == "en"] if only_en else items, True, None, progress=False)
    a = summarize(rows)["all"]
    return {"R@1": a["R@1"], "R@5": a["R@5"], "MRR": a["MRR"], "n": a.get("n", len(rows)),
            "s_per_q": round(sum(r["timings"]["retrieval_s"] for r in rows) / max(len(rows), 1), 4)}


def questions(name: str, qa: Path):
    items = load_qa(qa)
    return [i for i in items if i.split == "tune"] if name == "qa-tune" else items


def combined(rows: dict[str, dict]) -> dict:
    return {m: round(sum(r[m] for r in rows.values()) / len(rows), 4) for m in ("R@1", "R@5", "MRR")}


def line(label: str, r: dict) -> str:
    return f"| {label} | {r['R@1']:.3f} | {r['R@5']:.3f} | {r['MRR']:.3f} |"


def sweep(args, embedder, embedder_id: str) -> list[dict]:
    results = []
    for size, overlap in args.chunks:
        suites = {name: SUITES[name] for name in args.suites}
        rts = {name: runtime_for(Config(corpus=corpus, index_root=args.index_root / f"{size}-{overlap}", chunk_size=size,
                                        chunk_overlap=overlap), embedder, embedder_id)
               for name, (_, corpus) in suites.items()}
        items = {name: questions(name, qa) for name, (qa, _) in suites.items()}
        for bm25_w, dense_w in args.weights:
            en_w = bm25_w if args.en_bm25 is None else args.en_bm25
            per = {name: measure(dataclasses.replace(rt, cfg=dataclasses.replace(
                rt.cfg, bm25_weight=bm25_w, dense_weight=dense_w, bm25_weight_en=en_w)), items[name])
                for name, rt in rts.items()}
            row = {"chunk": f"{size}/{overlap}", "weights": f"{bm25_w}:{dense_w}", "suites": per,
                   "combined": combined(per)}
            results.append(row)
            print(line(f"{row['chunk']} {row['weights']} combined", row["combined"]), " ".join(
                f"{n}={r['R@1']:.2f}/{r['R@5']:.2f}/{r['MRR']:.3f}" for n, r in per.items()), flush=True)
    return results


def english_ablation(args, embedder, embedder_id: str) -> list[dict]:
    size, overlap = args.chunks[0]
    bm25_w, dense_w = args.weights[0]
    results = []
    for name in ("qa-tune", "xquad-en"):
        qa, corpus = SUITES[name]
        base = runtime_for(Config(corpus=corpus, index_root=args.index_root / f"{size}-{overlap}", chunk_size=size,
                                  chunk_overlap=overlap,
                                  bm25_weight=bm25_w, dense_weight=dense_w), embedder, embedder_id)
        for label, switches in ENGLISH.items():
            if "translate_queries" in switches and not args.translate:
                continue
            if switches["bm25_weight_en"] is None:
                switches = {**switches, "bm25_weight_en": bm25_w}
            r = measure(dataclasses.replace(base, cfg=dataclasses.replace(base.cfg, **switches)),
                        questions(name, qa), only_en=True)
            results.append({"suite": name, "variant": label, **r})
            print(line(f"{name} en {label}", r), f"n={r['n']} {r['s_per_q']} s/q", flush=True)
    return results


def pairs(text: str) -> list[tuple]:
    return [tuple(float(x) if "." in x else int(x) for x in p.split(":")) for p in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-root", type=Path, default=Path("/tmp/rag-sweep-index"))
    parser.add_argument("--chunks", type=pairs, default=CHUNKS, help="size:overlap,… e.g. 320:80,400:100")
    parser.add_argument("--weights", type=pairs, default=WEIGHTS, help="bm25:dense,… e.g. 1.0:0.5")
    parser.add_argument("--en-bm25", type=float, default=None,
                        help="BM25 weight of English questions' own words (default: the same as Chinese)")
    parser.add_argument("--suites", type=lambda t: t.split(","), default=list(SUITES), help="comma-separated")
    parser.add_argument("--english-ablation", action="store_true")
    parser.add_argument("--translate", action="store_true", help="include the 1.5B translation (slow)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    embedder, embedder_id = load_embedder(Config())
    embedder = MemoEmbedder(embedder)
    print("| setting | R@1 | R@5 | MRR | per suite R@1/R@5/MRR")
    rows = english_ablation(args, embedder, embedder_id) if args.english_ablation else sweep(args, embedder, embedder_id)
    if args.out:
        args.out.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
