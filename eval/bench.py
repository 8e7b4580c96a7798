"""Benchmark: generation speed, time to first token, retrieval at scale, indexing and model loads.

    .venv/bin/python eval/bench.py                 # full mode (`make bench`): ~12-15 min on 2 idle cores
    .venv/bin/python eval/bench.py --quick         # small sizes, one run each: checks the script works
    .venv/bin/python eval/bench.py --model qwen2.5-coder-0.5b

The machine this runs on is often busy with other work, so absolute timings are noisy. Every comparison
is therefore made side by side in one process, with the variants interleaved run by run, and reported as
a ratio. Writes reports/bench-<YYYYmmdd-HHMMSS>.json and .md and prints the .md.

Sections run in the order that keeps them honest: model loads first (a cold load has to be the
process's first), then indexing (which also gives sections 1 and 2 an index in a temporary folder, so
the project's .index is never touched), generation and TTFT, and retrieval at scale last (it needs the
most memory).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rag.config import PROJECT_ROOT as ROOT  # light imports only: section 5 times the heavy ones
from rag.config import Config
from rag.models import embedder_spec, model_path

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
GEN_QUESTION = "q008"  # a real question with a typical prompt (~420 tokens with its evidence)
TTFT_MAX_TOKENS = 4  # TTFT runs stop soon after the first token: the prompt, not the answer, sets TTFT
GOAL_P50_MS, GOAL_RECALL = 20.0, 0.95


class Sizes:
    """What full and quick mode run."""

    def __init__(self, quick: bool):
        self.gen_runs = 1 if quick else 3
        self.gen_tokens = 48 if quick else 96
        self.ttft_questions = 4 if quick else 16
        self.dense = [10_000, 50_000] if quick else [10_000, 100_000, 1_000_000]
        self.bm25 = [10_000, 50_000] if quick else [10_000, 100_000]
        self.queries = 200
        self.synthetic_files = 30 if quick else 300


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: Iterable[float], q: float) -> float:
    values = list(values)
    return float(np.percentile(values, q)) if values else float("nan")


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# ---------------------------------------------------------------- 5. model loads (run first)

def drop_page_cache() -> tuple[bool, str]:
    """Ask the kernel to drop clean page cache, so the first load reads the model from disk."""
    result = subprocess.run("sync; echo 3 > /proc/sys/vm/drop_caches", shell=True, capture_output=True, text=True)
    if result.returncode == 0:
        return True, "dropped"
    return False, (result.stderr.strip().splitlines() or ["failed"])[-1]


def cached_share(paths: list[Path]) -> float | None:
    """Share of the files' bytes in the page cache (util-linux fincore), or None without fincore."""
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE",
                              *map(str, paths)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    rows = [line.split() for line in out.splitlines() if line.strip()]
    res, size = sum(int(r[0]) for r in rows), sum(int(r[1]) for r in rows)
    return round(res / size, 3) if size else None


def time_embedder_load(path: Path) -> dict:
    """Import, construct and embed one sentence: all of it is what a user waits for on start."""
    started = time.perf_counter()
    import sentence_transformers  # noqa: F401

    imported = time.perf_counter()
    from rag.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(path)
    loaded = time.perf_counter()
    embedder.embed(["长寿经开区划定的建设用地面积有多大?"], "query")
    done = time.perf_counter()
    return {"import_s": imported - started, "load_s": loaded - imported, "first_call_s": done - loaded}


def time_llm_load(path: Path, cfg: Config) -> dict:
    """Import, load, then generate one token: llama.cpp maps the file, so some reading may wait for first use."""
    started = time.perf_counter()
    import llama_cpp  # noqa: F401

    imported = time.perf_counter()
    from rag.generate import load_llm

    llm = load_llm(path, cfg)
    loaded = time.perf_counter()
    llm.create_completion("你好", max_tokens=1, temperature=0)
    done = time.perf_counter()
    llm.close()
    return {"import_s": imported - started, "load_s": loaded - imported, "first_call_s": done - loaded}


def keep_fastest(slot: dict, phase: str, row: dict) -> None:
    """Store a load's timings; of several warm loads keep the fastest (other work only ever adds time)."""
    old = slot.get(phase)
    total = row["import_s"] + row["load_s"] + row["first_call_s"]
    if old is None or total < old["import_s"] + old["load_s"] + old["first_call_s"]:
        slot[phase] = row


def bench_load(cfg: Config, generators: list[str], drop: bool) -> dict:
    """Cold (first in this process, page cache dropped if the kernel lets us) and warm (fastest of two
    more) loads of the embedder and the generators."""
    spec = embedder_spec(cfg.models_dir)
    emb_path = cfg.models_dir / spec["dir"]
    gen_paths = {name: model_path(cfg.models_dir, name) for name in generators}
    emb_files = sorted(emb_path.glob("*.safetensors"))
    dropped, why = drop_page_cache() if drop else (False, "not attempted (--no-drop-caches)")
    log(f"load: page cache {why}")
    out: dict = {"drop_caches": dropped, "drop_caches_note": why, "models": {}}
    for phase in ("cold", "warm", "warm"):
        log(f"load: embedder {phase}")
        cached = cached_share(emb_files)
        timing = time_embedder_load(emb_path)
        keep_fastest(out["models"].setdefault(spec["name"], {}), phase,
                     {**{k: round(v, 3) for k, v in timing.items()}, "cached_before": cached})
        for name, path in gen_paths.items():
            log(f"load: {name} {phase}")
            cached = cached_share([path])
            timing = time_llm_load(path, cfg)
            keep_fastest(out["models"].setdefault(name, {}), phase,
                         {**{k: round(v, 3) for k, v in timing.items()}, "cached_before": cached})
            gc.collect()
    return out


# ---------------------------------------------------------------- 4. indexing

def corpus_sentences(corpus: Path) -> list[str]:
    """Sentences (with their end marks) of the real corpus, for recombining into synthetic documents."""
    parts = []
    for path in sorted(corpus.glob("*.txt")):
        parts += re.split(r"(?<=[。！？\n])", path.read_text(encoding="utf-8"))
    return [p for p in parts if p.strip()]


def write_synthetic_corpus(corpus: Path, folder: Path, n_files: int, seed: int = 0) -> int:
    """n_files documents as long as the real ones on average, each a random draw of real sentences."""
    sentences = corpus_sentences(corpus)
    sizes = [len(p.read_text(encoding="utf-8")) for p in corpus.glob("*.txt")]
    target = int(statistics.mean(sizes))
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(n_files):
        text, length = [], 0
        while length < target:
            s = sentences[rng.integers(len(sentences))]
            text.append(s)
            length += len(s)
        (folder / f"syn_{i:04d}.txt").write_text("".join(text), encoding="utf-8")
        total += length
    return total


def time_build(corpus: Path, index_root: Path, embedder, embedder_id: str) -> tuple[float, int]:
    from rag.index import build_index

    cfg = Config(corpus=corpus, index_root=index_root)
    started = time.perf_counter()
    index = build_index(cfg, embedder, embedder_id, rebuild=True, progress=False)
    return time.perf_counter() - started, index.manifest["n_chunks"]


def bench_indexing(corpus: Path, index_root: Path, embedder, embedder_id: str, n_files: int,
                   scratch: Path) -> dict:
    """From-scratch index builds: the five documents, then a larger synthetic corpus for chunks/s."""
    from rag.tokens import tokenize

    tokenize("预热分词词典")  # jieba loads its dictionary once per process; not an indexing cost
    log("index: five documents")
    five_s, five_chunks = time_build(corpus, index_root, embedder, embedder_id)
    syn = scratch / "synthetic-corpus"
    chars = write_synthetic_corpus(corpus, syn, n_files)
    log(f"index: {n_files} synthetic documents ({chars / 1e6:.2f} M characters)")
    syn_s, syn_chunks = time_build(syn, scratch / "synthetic-index", embedder, embedder_id)
    return {"five_docs_s": round(five_s, 3), "five_docs_chunks": five_chunks,
            "five_docs_chunks_per_s": round(five_chunks / five_s, 1),
            "synthetic_files": n_files, "synthetic_chars": chars, "synthetic_chunks": syn_chunks,
            "synthetic_s": round(syn_s, 3), "chunks_per_s": round(syn_chunks / syn_s, 1)}


# ---------------------------------------------------------------- 1. generation throughput

def timed_stream(pieces: Iterator[str]) -> dict:
    """Time one streamed generation the same way for every path: first piece, last piece, piece count,
    and the median gap between pieces (robust to a load spike in the middle of a run)."""
    started = time.perf_counter()
    stamps = [time.perf_counter() for piece in pieces if piece]
    total = time.perf_counter() - started
    n = len(stamps)
    decode = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 and stamps[-1] > stamps[0] else 0.0
    gaps = np.diff(stamps) * 1000 if n > 1 else [float("nan")]
    return {"pieces": n, "ttft_s": (stamps[0] if stamps else started) - started, "total_s": total,
            "decode_tok_s": decode, "p50_ms_per_token": float(np.median(gaps))}


def end_of_text_bias(llm) -> dict[int, float]:
    """A logit bias that forbids the end-of-generation tokens, so every run decodes max_tokens tokens."""
    eog = {llm.token_eos()}
    for text in (b"<|im_end|>", b"<|endoftext|>"):
        eog.update(llm.tokenize(text, add_bos=False, special=True))
    return {t: -1e9 for t in eog}


class WithBias:
    """A Llama whose create_chat_completion always gets this logit_bias: stream_chat runs unchanged on it,
    and the raw path passes the very same bias, so both pay the same for it."""

    def __init__(self, llm, bias: dict[int, float]):
        self.llm, self.bias = llm, bias

    def __getattr__(self, name: str):
        return getattr(self.llm, name)

    def create_chat_completion(self, **kwargs):
        return self.llm.create_chat_completion(logit_bias=self.bias, **kwargs)


def raw_pieces(llm, messages: list[dict], max_tokens: int, bias: dict[int, float], cfg: Config) -> Iterator[str]:
    """llama-cpp-python as its README shows it, with nothing of ours around it, but with the product's
    sampling settings and the shared bias: both paths then decode the very same tokens."""
    for part in llm.create_chat_completion(messages=messages, stream=True, temperature=cfg.temperature,
                                           top_k=cfg.top_k, seed=cfg.seed, repeat_penalty=cfg.repeat_penalty,
                                           max_tokens=max_tokens, logit_bias=bias):
        yield part["choices"][0]["delta"].get("content") or ""


def gen_prompt(rt, qa_path: Path) -> tuple[str, list[dict]]:
    """A real question with its selected evidence, exactly as answer_stream would prompt for it."""
    from rag.ask import build_messages, gather
    from rag.eval import load_qa

    item = next(i for i in load_qa(qa_path) if i.id == GEN_QUESTION)
    found = gather(rt, item.q)
    return item.q, build_messages(found.question, found.evidence)


def bench_generation(llm, cfg: Config, messages: list[dict], runs: int, max_tokens: int) -> dict:
    """Raw llama-cpp streaming vs rag.generate.stream_chat: same instance, prompt, threads, max_tokens.

    Runs alternate (raw first in even rounds, ours first in odd ones) and the KV cache is reset before
    each, so load spikes and cached prefixes favour neither. End-of-text is forbidden on both paths, so
    every run decodes max_tokens tokens; decode speed counts streamed pieces after the first over their
    time, so prompt evaluation does not enter it."""
    from rag.generate import Usage, stream_chat

    bias = end_of_text_bias(llm)
    llm.reset()
    for _ in raw_pieces(llm, messages, 4, bias, cfg):  # warm-up: the first run after a load pays for page-ins
        pass
    results: dict[str, list[dict]] = {"raw": [], "ours": []}
    for r in tqdm(range(runs), desc="generation", unit="round", file=sys.stderr):
        order = ("raw", "ours") if r % 2 == 0 else ("ours", "raw")
        for path in order:
            llm.reset()
            if path == "raw":
                row = timed_stream(raw_pieces(llm, messages, max_tokens, bias, cfg))
            else:
                usage = Usage()
                row = timed_stream(stream_chat(WithBias(llm, bias), messages, cfg, usage, max_tokens=max_tokens))
                row["usage_tokens_per_s"] = round(usage.tokens_per_s, 2)
                row["prompt_tokens"] = usage.prompt_tokens
            results[path].append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    med = {p: statistics.median(r["decode_tok_s"] for r in rows) for p, rows in results.items()}
    gap = {p: statistics.median(r["p50_ms_per_token"] for r in rows) for p, rows in results.items()}
    return {"runs": results, "raw_tok_s": round(med["raw"], 2), "ours_tok_s": round(med["ours"], 2),
            "gen_ratio": round(med["ours"] / med["raw"], 3) if med["raw"] else None,
            "gen_ratio_median_gap": round(gap["raw"] / gap["ours"], 3) if gap["ours"] else None,
            "max_tokens": max_tokens, "n_threads": cfg.n_threads,
            "prompt_tokens": results["ours"][0].get("prompt_tokens")}


# ---------------------------------------------------------------- 2. time to first token

def full_chunk_evidence(hits: list) -> list:
    """The retrieved chunks whole, shaped as evidence: the prompt before sentence selection existed."""
    from rag.cite import Evidence

    return [Evidence(h.chunk.doc, h.chunk.title, h.chunk.start, h.chunk.end, quote=h.chunk.text,
                     norm=h.chunk.norm, score=0) for h in hits]


def ttft_questions(rt, qa_path: Path, n: int) -> tuple[list, list, int]:
    """The first n answerable questions that the product sends to the model (it refuses some before
    generating, from evidence alone: those have no TTFT), with their retrievals; plus one spare for the
    warm-up and how many were skipped."""
    from rag.ask import before_generating, gather
    from rag.eval import load_qa

    chosen, skipped = [], 0
    for item in load_qa(qa_path):
        if not item.answerable:
            continue
        found = gather(rt, item.q)
        retrieval = found.retrieval
        if before_generating(found, rt.cfg, strict=True):
            skipped += 1
            continue
        chosen.append((item, retrieval))
        if len(chosen) == n + 1:
            break
    return chosen[:n], chosen[n:], skipped


def bench_ttft(rt, model: str, qa_path: Path, n: int) -> dict:
    """TTFT of `rag ask`'s path (answer_stream) against two ablations, interleaved question by question.

    - product: answer_stream as is (sentence evidence, KV prefix kept from the previous question);
    - no_trim: the same prompt built from the whole retrieved chunks instead of selected sentences;
    - no_prefix: answer_stream after llm.reset(), so the fixed instruction is evaluated again.
    The no_trim run of step j uses another question than the product run just before it, so it never
    inherits that question's evidence from the KV cache; `reused_tokens` shows what each run inherited.
    Retrieval is done once per question up front and timed separately (it is the same for all three)."""
    from rag.ask import Answer, answer_stream, build_messages
    from rag.generate import Usage, stream_chat
    from rag.question import analyse

    llm = rt.llm(model)
    saved = rt.cfg.max_tokens
    rt.cfg.max_tokens = TTFT_MAX_TOKENS
    questions, spare, skipped = ttft_questions(rt, qa_path, n)
    rows: dict[str, list[dict]] = {"product": [], "no_trim": [], "no_prefix": []}

    def run(variant: str, item, retrieval) -> None:
        if variant == "no_prefix":
            llm.reset()
        before = llm._input_ids.tolist()  # what the KV cache holds now (private, read-only use)
        if variant == "no_trim":
            usage = Usage()
            messages = build_messages(analyse(item.q), full_chunk_evidence(retrieval.hits))
            for _ in stream_chat(llm, messages, rt.cfg, usage):
                pass
        else:
            final = [a for a in answer_stream(rt, item.q, model, retrieval) if isinstance(a, Answer)][0]
            usage = final.usage
        rows[variant].append({"id": item.id, "ttft_s": round(usage.ttft_s, 3), "prompt_tokens": usage.prompt_tokens,
                              "reused_tokens": common_prefix(before, llm._input_ids.tolist())})

    try:
        for item, retrieval in spare:  # warm-up: leaves the shared prefix in the cache, as a running app has
            run("product", item, retrieval)
        rows["product"].clear()
        half = len(questions) // 2
        for j, (item, retrieval) in enumerate(tqdm(questions, desc="ttft", unit="q", file=sys.stderr)):
            run("product", item, retrieval)
            run("no_trim", *questions[(j + half) % len(questions)])
            run("no_prefix", item, retrieval)
    finally:
        rt.cfg.max_tokens = saved
    out: dict = {"questions": [i.id for i, _ in questions], "skipped_refused": skipped,
                 "retrieval_p50_s": round(pct([r.seconds for _, r in questions], 50), 4),
                 "retrieval_p90_s": round(pct([r.seconds for _, r in questions], 90), 4), "runs": rows}
    for variant, vrows in rows.items():
        out[variant] = {"p50": round(pct([r["ttft_s"] for r in vrows], 50), 3),
                        "p90": round(pct([r["ttft_s"] for r in vrows], 90), 3),
                        "prompt_tokens_p50": pct([r["prompt_tokens"] for r in vrows], 50),
                        "prompt_tokens_p90": pct([r["prompt_tokens"] for r in vrows], 90),
                        "reused_tokens_p50": pct([r["reused_tokens"] for r in vrows], 50)}
    base = out["product"]["p50"]
    out["ratio_no_trim_vs_product"] = round(out["no_trim"]["p50"] / base, 2) if base else None
    out["ratio_no_prefix_vs_product"] = round(out["no_prefix"]["p50"] / base, 2) if base else None
    return out


# ---------------------------------------------------------------- 3. retrieval at scale

def clustered(n: int, centres: np.ndarray, spread: float, rng: np.random.Generator,
              block: int = 100_000) -> np.ndarray:
    """n unit vectors around random unit cluster centres (noise norm ~spread), made in blocks.

    Uniform random vectors in 256 dimensions have no near neighbours, which makes every ANN index look
    bad; clustered ones have, like embeddings of real text. With spread 1.0 neighbours never leave their
    cluster and any nprobe finds them (recall 1.0 at nprobe 8); at 1.5 clusters overlap enough that
    nprobe matters (recall@10 ~0.8-0.9 at 50k-100k vectors, rising with vectors per cluster); at 2.0 and
    more, IVF recall collapses."""
    dim = centres.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    for a in range(0, n, block):
        b = min(n, a + block)
        x = centres[rng.integers(len(centres), size=b - a)]
        x += rng.standard_normal((b - a, dim), dtype=np.float32) * np.float32(spread / np.sqrt(dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[a:b] = x
    return out


def single_query_ms(index, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray]:
    """One search call per query, as a user's question makes: latencies in ms and the ids found."""
    for q in queries[:5]:
        index.search(q[None, :], k)  # warm-up
    times, ids = [], []
    for q in queries:
        started = time.perf_counter()
        _, found = index.search(q[None, :], k)
        times.append((time.perf_counter() - started) * 1000)
        ids.append(found[0])
    return times, np.stack(ids)


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth, strict=True)]))


def nprobe_sweep(index, queries: np.ndarray, truth: np.ndarray, k: int) -> list[dict]:
    """Recall@10 and latency for several nprobe values, so the product's setting can be chosen."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    product = ivf.nprobe
    rows = []
    for nprobe in sorted({8, 16, 32, 64, 128, 256, product}):
        if nprobe > ivf.nlist:
            continue
        ivf.nprobe = nprobe
        times, found = single_query_ms(index, queries, k)
        rows.append({"nprobe": nprobe, "recall_at_10": round(recall_at(found, truth), 4),
                     "p50_ms": round(pct(times, 50), 3), "p99_ms": round(pct(times, 99), 3),
                     "product": nprobe == product})
    ivf.nprobe = product
    return rows


def bench_dense(dim: int, sizes: list[int], n_queries: int, k: int, keep: set[int], spread: float,
                kept: dict, n_centres: int = 2000, seed: int = 0) -> dict:
    """The dense index the product builds (rag.index.dense_index) at growing sizes, against exact search.
    Indexes of the sizes in `keep` are left in `kept` (size -> (index, vectors)) for the hybrid test.

    Latency is also taken with FAISS on one thread: on a busy two-core machine, OpenMP threads waiting
    for each other can cost more than the search itself."""
    import faiss

    from rag.index import dense_index

    threshold = Config().ann_threshold
    product_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # the default, against the product's one thread below
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = clustered(n_queries, centres, spread, rng)
    out = {}
    for n in sizes:
        log(f"dense: {n:,} vectors")
        vectors = clustered(n, centres, spread, rng)
        gc.collect()
        rss0 = rss_bytes()
        started = time.perf_counter()
        index = dense_index(vectors, dim, threshold)
        build_s = time.perf_counter() - started
        rss_delta = rss_bytes() - rss0
        size_bytes = len(faiss.serialize_index(index))
        times, found = single_query_ms(index, queries, k)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        times_1t, _ = single_query_ms(index, queries, k)
        faiss.omp_set_num_threads(threads)
        exact = faiss.IndexFlatIP(dim)
        exact.add(vectors)
        cos, truth = exact.search(queries, 10)
        exact_times = None
        if isinstance(index, faiss.IndexIVF):  # what IVF buys: exact search at this size, one query at a time
            faiss.omp_set_num_threads(1)
            exact_times, _ = single_query_ms(exact, queries[:50], k)
            faiss.omp_set_num_threads(threads)
        del exact
        row = {"type": type(index).__name__, "build_s": round(build_s, 3), "p50_ms": round(pct(times, 50), 3),
               "p99_ms": round(pct(times, 99), 3), "p50_ms_1thread": round(pct(times_1t, 50), 3),
               "recall_at_10": round(recall_at(found, truth), 4), "bytes": size_bytes, "rss_delta_bytes": rss_delta,
               "vectors_bytes": vectors.nbytes, "nn1_cos": round(float(cos[:, 0].mean()), 3),
               "nn10_cos": round(float(cos[:, 9].mean()), 3)}
        if isinstance(index, faiss.IndexIVF):
            row.update({"nlist": index.nlist, "nprobe": index.nprobe,
                        "exact_p50_ms_1thread": round(pct(exact_times, 50), 3),
                        "nprobe_sweep": nprobe_sweep(index, queries, truth, k)})
        out[str(n)] = row
        log(f"dense: {n:,}: {row['type']} p50 {row['p50_ms']} ms, recall@10 {row['recall_at_10']}")
        if n in keep:
            kept[n] = (index, vectors)
        del index, vectors
        gc.collect()
    meta = {"dim": dim, "centres": n_centres, "spread": spread, "queries": n_queries, "k": k,
            "ann_threshold": threshold, "faiss_threads": faiss.omp_get_max_threads()}
    faiss.omp_set_num_threads(product_threads)
    return {"meta": meta, **out}


def corpus_tokens(corpus: Path) -> np.ndarray:
    """Every jieba token of the real corpus, repeats kept, so sampling follows the real frequencies."""
    from rag.clean import normalize
    from rag.tokens import tokenize

    tokens = []
    for path in sorted(corpus.glob("*.txt")):
        tokens += tokenize(normalize(path.read_text(encoding="utf-8")).text)
    return np.array(tokens, dtype=object)


def bench_bm25(corpus: Path, sizes: list[int], questions: list[str], n_queries: int, dense: dict,
               embedder, cfg: Config) -> dict:
    """bm25s over synthetic chunks of sampled corpus tokens (~80 each), queried as rag.retrieve does;
    where a dense index of the same size was kept, the whole hybrid search() as well."""
    import bm25s
    import faiss

    from rag.chunk import Chunk
    from rag.clean import normalize_query
    from rag.index import Index
    from rag.retrieve import search
    from rag.tokens import tokenize

    vocab = corpus_tokens(corpus)
    rng = np.random.default_rng(1)
    asked = [questions[i % len(questions)] for i in range(n_queries)]
    out: dict = {"meta": {"corpus_tokens": len(vocab), "distinct": len(set(vocab.tolist())),
                          "queries": n_queries}}
    for n in sizes:
        log(f"bm25: {n:,} chunks")
        lengths = rng.integers(60, 101, size=n)
        chunks = [vocab[rng.integers(len(vocab), size=m)].tolist() for m in lengths]
        started = time.perf_counter()
        bm25 = bm25s.BM25()
        bm25.index(chunks, show_progress=False)
        build_s = time.perf_counter() - started
        depth = min(cfg.candidates, n)
        times = []
        for q in asked:
            started = time.perf_counter()
            tokens = tokenize(normalize_query(q))
            scores = bm25.get_scores(tokens)
            np.argsort(-scores, kind="stable")[:depth]
            times.append((time.perf_counter() - started) * 1000)
        row = {"build_s": round(build_s, 3), "p50_ms": round(pct(times, 50), 3), "p99_ms": round(pct(times, 99), 3)}
        if n in dense:
            dense_index, vectors = dense[n]
            fake = [Chunk(f"syn:{i}", "syn", "", 0, 0, "".join(c), "".join(c)) for i, c in enumerate(chunks)]
            index = Index({}, fake, vectors, dense_index, bm25, {})
            threads = faiss.omp_get_max_threads()
            for key, n_threads in (("hybrid", threads), ("hybrid_1thread", 1)):
                faiss.omp_set_num_threads(n_threads)
                times = []
                for q in asked:
                    started = time.perf_counter()
                    search(index, embedder, q, cfg.k, cfg.candidates, (), (cfg.bm25_weight, cfg.dense_weight),
                           cfg.rrf_k)
                    times.append((time.perf_counter() - started) * 1000)
                row.update({f"{key}_p50_ms": round(pct(times, 50), 3), f"{key}_p99_ms": round(pct(times, 99), 3)})
            faiss.omp_set_num_threads(threads)
            row["hybrid_type"] = type(dense_index).__name__
        out[str(n)] = row
        log(f"bm25: {n:,}: build {row['build_s']} s, query p50 {row['p50_ms']} ms")
    return out


# ---------------------------------------------------------------- report

def fmt(x, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def table(head: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(fmt(c) for c in row) + " |" for row in rows)]


def md_generation(g: dict) -> list[str]:
    rows = [[label, len(g["runs"][key]), g[f"{key}_tok_s"],
             statistics.median(r["pieces"] for r in g["runs"][key]),
             statistics.median(r["p50_ms_per_token"] for r in g["runs"][key]),
             ", ".join(f"{r['decode_tok_s']:.2f}" for r in g["runs"][key])]
            for key, label in (("raw", "raw `create_chat_completion`"), ("ours", "`rag.generate.stream_chat`"))]
    return ["## 1. Generation throughput", "",
            f"One prompt ({g['prompt_tokens']} tokens: question {GEN_QUESTION} with its selected evidence), "
            f"max_tokens {g['max_tokens']} with end-of-text forbidden on both paths (same logit_bias), "
            f"{g['n_threads']} threads, same Llama instance, KV cache reset before each run, runs interleaved. "
            "Decode speed = streamed pieces after the first / their time.", "",
            *table(["path", "runs", "median decode tok/s", "pieces (median)", "median ms/token", "each run (tok/s)"],
                   rows), "",
            f"**gen_ratio (ours / raw) = {fmt(g['gen_ratio'], 3)}** (from the median ms/token, which one stall "
            f"cannot move: {fmt(g.get('gen_ratio_median_gap'), 3)})", ""]


def md_ttft(t: dict) -> list[str]:
    labels = {"product": "product (`answer_stream`)", "no_trim": "no evidence trimming (whole chunks)",
              "no_prefix": "no KV prefix reuse (`llm.reset()`)"}
    rows = [[label, t[v]["p50"], t[v]["p90"], fmt(t[v]["prompt_tokens_p50"], 0), fmt(t[v]["reused_tokens_p50"], 0)]
            for v, label in labels.items()]
    return ["## 2. Time to first token (`rag ask` path)", "",
            f"{len(t['questions'])} answerable questions ({', '.join(t['questions'])}; "
            f"{t['skipped_refused']} skipped: refused from evidence before generation). TTFT = prompt submitted "
            f"to first streamed piece (usage.ttft_s); retrieval is separate: p50 {fmt(t['retrieval_p50_s'], 3)} s, "
            f"p90 {fmt(t['retrieval_p90_s'], 3)} s. Variants interleaved question by question. Prompt tokens = "
            "Usage.prompt_tokens (message text, without the chat template); KV tokens reused = tokens the "
            "run found already evaluated in the cache.", "",
            *table(["variant", "TTFT p50 s", "TTFT p90 s", "prompt tokens p50", "KV tokens reused p50"], rows), "",
            f"**Evidence trimming: no-trim / product p50 = {fmt(t['ratio_no_trim_vs_product'])}x; "
            f"KV prefix reuse: no-prefix / product p50 = {fmt(t['ratio_no_prefix_vs_product'])}x.**", ""]


def md_retrieval(r: dict, b: dict | None) -> list[str]:
    meta = r["meta"]
    sizes = [k for k in r if k != "meta"]
    rows = [[f"{int(n):,}", r[n]["type"] + (f" (nlist {r[n]['nlist']}, nprobe {r[n]['nprobe']})" if "nlist" in r[n]
                                            else ""),
             r[n]["build_s"], r[n]["p50_ms"], r[n]["p99_ms"], r[n]["p50_ms_1thread"], fmt(r[n]["recall_at_10"], 3),
             f"{r[n]['nn1_cos']:.2f} / {r[n]['nn10_cos']:.2f}", fmt(r[n]["bytes"] / 2**20, 1),
             fmt(r[n]["rss_delta_bytes"] / 2**20, 1)] for n in sizes]
    lines = ["## 3. Retrieval at scale", "",
             f"Synthetic clustered vectors: dim {meta['dim']}, {meta['centres']} Gaussian centres, noise norm "
             f"{meta['spread']}, L2-normalised float32; {meta['queries']} queries drawn the same way, one per search "
             f"call, k={meta['k']} (the product's candidate depth); index = `rag.index.dense_index` (exact below "
             f"{meta['ann_threshold']:,}); FAISS threads {meta['faiss_threads']}. Recall@10 against exact "
             "IndexFlatIP.", "",
             *table(["vectors", "index", "build s", "p50 ms", "p99 ms", "p50 ms, 1 FAISS thread", "recall@10",
                     "true 1st / 10th nn cos", "index MB", "RSS delta MB"], rows), ""]
    threads = ", ".join(f"{int(n):,}: {r[n]['p50_ms'] / r[n]['p50_ms_1thread']:.1f}x" for n in sizes
                        if r[n]["p50_ms_1thread"])
    if meta["faiss_threads"] > 1:
        lines += [f"**FAISS on {meta['faiss_threads']} threads vs 1 thread, single-query p50 ratio: {threads}.**", ""]
    else:
        lines += ["FAISS ran on one thread, as the product runs it (`Runtime.open`); the two latency columns repeat "
                  "the same setting.", ""]
    lines += [
              f"Recall depends on the synthetic data: with {meta['centres']} fixed centres, more vectors means "
              "denser clusters, so the true neighbours sit closer to the query's list and recall rises with the "
              "size; the cosine columns show how close the true neighbours are.", ""]
    big = sizes[-1]
    top = r[big]
    if "exact_p50_ms_1thread" in top:
        lines += [f"**IVF vs exact search at {int(big):,} vectors, one FAISS thread: p50 "
                  f"{fmt(top['exact_p50_ms_1thread'])} ms exact vs {fmt(top['p50_ms_1thread'])} ms IVF = "
                  f"{top['exact_p50_ms_1thread'] / top['p50_ms_1thread']:.1f}x faster** (exact timed on 50 "
                  "queries).", ""]
    met = top["p50_ms_1thread"] <= GOAL_P50_MS and top["recall_at_10"] >= GOAL_RECALL
    where = "" if int(big) >= 1_000_000 else " (the goal is set for 1M; quick mode checks its largest size)"
    lines += [f"**Goal at {int(big):,}{where}: p50 <= {GOAL_P50_MS:g} ms and recall@10 >= {GOAL_RECALL}: "
              f"{'met' if met else 'MISSED'}** (p50 {fmt(top['p50_ms_1thread'])} ms on one FAISS thread as the "
              f"product runs it, recall@10 "
              f"{fmt(top['recall_at_10'], 3)}).", ""]
    for n in sizes:
        if "nprobe_sweep" in r[n]:
            lines += [f"nprobe sweep at {int(n):,} vectors (nlist {r[n]['nlist']}; product's value marked *):", "",
                      *table(["nprobe", "recall@10", "p50 ms", "p99 ms"],
                             [[f"{s['nprobe']}{'*' if s['product'] else ''}", fmt(s["recall_at_10"], 3),
                               s["p50_ms"], s["p99_ms"]] for s in r[n]["nprobe_sweep"]]), ""]
    if b:
        bsizes = [k for k in b if k != "meta"]
        lines += [f"BM25 (bm25s) over synthetic chunks of 60-100 tokens sampled from the corpus's "
                  f"{b['meta']['corpus_tokens']:,} jieba tokens ({b['meta']['distinct']:,} distinct); query = "
                  "tokenize + get_scores + argsort as in `rag.retrieve.search`. Hybrid = the whole `search()` "
                  "(embed query, BM25, dense, fusion) over that many chunks, with the dense index of that size "
                  "from above, on FAISS's default threads and on 1 thread.", "",
                  *table(["chunks", "build s", "BM25 query p50 ms", "p99 ms", "hybrid search() p50 ms", "p99 ms",
                          "hybrid p50 ms, 1 FAISS thread"],
                         [[f"{int(n):,}", b[n]["build_s"], b[n]["p50_ms"], b[n]["p99_ms"], b[n].get("hybrid_p50_ms"),
                           b[n].get("hybrid_p99_ms"), b[n].get("hybrid_1thread_p50_ms")] for n in bsizes]), ""]
    return lines


def md_index(x: dict) -> list[str]:
    return ["## 4. Indexing (from scratch, temporary index folder)", "",
            *table(["corpus", "chunks", "seconds", "chunks/s"],
                   [["corpus/ (5 documents)", x["five_docs_chunks"], x["five_docs_s"], x["five_docs_chunks_per_s"]],
                    [f"synthetic, {x['synthetic_files']} files ({x['synthetic_chars'] / 1e6:.2f} M chars)",
                     x["synthetic_chunks"], x["synthetic_s"], x["chunks_per_s"]]]), ""]


def md_load(x: dict) -> list[str]:
    rows = []
    for name, phases in x["models"].items():
        for phase, t in phases.items():
            cached = t["cached_before"]
            rows.append([name, phase, "–" if cached is None else f"{cached:.0%}", t["import_s"], t["load_s"],
                         t["first_call_s"], fmt(t["import_s"] + t["load_s"] + t["first_call_s"])])
    return ["## 5. Model load", "",
            f"Page cache drop before the cold loads: **{'yes' if x['drop_caches'] else 'no'}** "
            f"({x['drop_caches_note']}). 'In page cache' is the share of the weights file resident before the "
            "load (fincore); llama.cpp maps the file, so part of the reading may show in the first call rather than the load. "
            "Cold = first load in the process (imports included); warm = fastest of two more loads.", "",
            *table(["model", "load", "in page cache", "import s", "load s", "first call s", "total s"], rows), ""]


SECTIONS = [("generation", "1. Generation throughput", md_generation), ("ttft", "2. Time to first token", md_ttft),
            ("retrieval", "3. Retrieval at scale", None), ("index", "4. Indexing", md_index),
            ("load", "5. Model load", md_load)]


def markdown(report: dict) -> str:
    m = report["meta"]
    lines = [f"# Benchmark {m['date']}", "",
             f"Machine: {m['nproc']} cores ({m['cpu']}), {m['mem_gb']} GB RAM, Python {m['python']}. "
             f"Generator `{m['model']}`, embedder `{m['embedder']}`. Mode: {'quick' if m['quick'] else 'full'}. "
             f"Load average at start {m['load_start']}, at end {m['load_end']}; {m['elapsed_s']:.0f} s in all. "
             "Other work may share this machine: compare the ratios, not the absolute times.", ""]
    for key, title, render in SECTIONS:
        data = report.get(key)
        if data is None:
            continue
        if "error" in data:
            lines += [f"## {title}", "", f"**Failed:** `{data['error']}` (traceback on stderr).", ""]
        elif render is None:
            bm25 = report.get("bm25")
            lines += md_retrieval(data, bm25 if bm25 and "error" not in bm25 else None)
        else:
            lines += render(data)
    return "\n".join(lines)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gb": round(mem / 2**20, 1), "python": platform.python_version()}


# ---------------------------------------------------------------- main

def attempt(report: dict, key: str, section: Callable[[], dict]) -> bool:
    """Run one section into report[key]; a failure is recorded there and the other sections still run,
    so a broken stage does not cost the results of a 15-minute run."""
    try:
        report[key] = section()
        return True
    except Exception as exc:  # any failure of the code under test is a result to report
        log(f"{key} failed:\n{traceback.format_exc()}")
        report[key] = {"error": f"{type(exc).__name__}: {exc}"}
        return False


def run_model_sections(report: dict, cfg: Config, model: str, sections: set[int], sizes: Sizes) -> None:
    """Sections 1 and 2 share one Runtime (index in scratch) and one loaded generator."""
    from rag.service import Runtime

    qa = ROOT / "eval" / "qa.jsonl"
    keys = [k for n, k in ((1, "generation"), (2, "ttft")) if n in sections]
    try:
        rt = Runtime.open(cfg, progress=False)
        log(f"loading {model}")
        llm = rt.llm(model)
    except Exception as exc:  # as in attempt()
        log(f"runtime failed:\n{traceback.format_exc()}")
        report.update({k: {"error": f"{type(exc).__name__}: {exc}"} for k in keys})
        return

    def generation() -> dict:
        question, messages = gen_prompt(rt, qa)
        return {"question": question, **bench_generation(llm, cfg, messages, sizes.gen_runs, sizes.gen_tokens)}

    if "generation" in keys and attempt(report, "generation", generation):
        report["gen_ratio"] = report["generation"]["gen_ratio"]
    if "ttft" in keys:
        attempt(report, "ttft", lambda: bench_ttft(rt, model, qa, sizes.ttft_questions))
    llm.close()
    rt.llms.clear()
    gc.collect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and one run each (a few minutes)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="generator for sections 1-2 (default: the 1.5B)")
    parser.add_argument("--sections", default="1,2,3,4,5", help="comma-separated subset of 1-5")
    parser.add_argument("--no-drop-caches", action="store_true", help="do not drop the page cache before cold loads")
    parser.add_argument("--spread", type=float, default=1.5, help="noise norm of the synthetic vectors (section 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args(argv)
    sections = {int(s) for s in args.sections.split(",") if s.strip()}
    sizes = Sizes(args.quick)
    os.chdir(ROOT)
    started = time.perf_counter()
    spec = embedder_spec(Config().models_dir)
    model_path(Config().models_dir, args.model)  # fail fast on a missing model
    report: dict = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), **machine(), "model": args.model,
                             "embedder": f"{spec['name']} ({spec['dim']} dim)", "quick": args.quick,
                             "load_start": load_average()}}
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        scratch = Path(tmp)
        cfg = Config(corpus=ROOT / "corpus", index_root=scratch / "index")
        embedder_id = f"{spec['name']}:{(spec.get('sha256') or 'unverified')[:12]}"
        if 5 in sections:  # first: a cold load has to be the process's first
            generators = list(dict.fromkeys([DEFAULT_MODEL, args.model]))
            attempt(report, "load", lambda: bench_load(cfg, generators, not args.no_drop_caches))
        from rag.embed import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(cfg.models_dir / spec["dir"])
        if 4 in sections:
            attempt(report, "index", lambda: bench_indexing(cfg.corpus, cfg.index_root, embedder, embedder_id,
                                                            sizes.synthetic_files, scratch))
        if sections & {1, 2}:
            run_model_sections(report, cfg, args.model, sections, sizes)
        if 3 in sections:
            kept: dict = {}
            attempt(report, "retrieval", lambda: bench_dense(embedder.dim, sizes.dense, sizes.queries,
                                                             cfg.candidates, set(sizes.bm25), args.spread, kept))
            from rag.eval import load_qa

            questions = [i.q for i in load_qa(ROOT / "eval" / "qa.jsonl") if i.lang != "en"]
            attempt(report, "bm25", lambda: bench_bm25(cfg.corpus, sizes.bm25, questions, sizes.queries, kept,
                                                       embedder, cfg))
            kept.clear()
    report["meta"].update({"load_end": load_average(), "elapsed_s": round(time.perf_counter() - started, 1)})
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    Path(f"{stem}.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    text = markdown(report)
    Path(f"{stem}.md").write_text(text + "\n", encoding="utf-8")
    log(f"wrote {stem}.json and {stem}.md")
    print(text)
    return 1 if any(isinstance(v, dict) and "error" in v for v in report.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
