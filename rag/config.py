"""One place for every tunable number; the CLI overrides fields, the index saves the ones it was built with."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _models_dir() -> Path:
    return Path(os.environ.get("RAG_MODELS_DIR", PROJECT_ROOT / "models"))


@dataclass
class Config:
    corpus: Path = field(default_factory=lambda: Path("corpus"))
    models_dir: Path = field(default_factory=_models_dir)
    index_root: Path = field(default_factory=lambda: Path(os.environ.get("RAG_INDEX_DIR", PROJECT_ROOT / ".index")))
    # Chunking (normalised characters): chosen on all five QA suites by eval/sweep.py, see README "Retrieval".
    chunk_size: int = 320
    chunk_overlap: int = 80
    # Retrieval (weights chosen by eval/sweep.py, see README "Retrieval").
    k: int = 5
    candidates: int = 30
    rrf_k: int = 60
    bm25_weight: float = 1.0
    dense_weight: float = 0.3
    bm25_weight_en: float = 0.1  # an English question's own words in BM25 (its Chinese variants keep bm25_weight)
    ann_threshold: int = 200_000  # chunks; exact FAISS search below (~5 ms at 200k), IVF above
    translate_queries: bool = False  # English questions: also search a 1.5B Chinese rendering (ablation)
    pinyin_names: bool = True  # English questions: also search the corpus's proper names their pinyin spells
    store: str = "faiss"  # or "milvus"
    milvus_uri: str = ""  # file path (Milvus Lite) or http://host:19530; default <index_root>/milvus.db
    # Generation.
    generator: str = "qwen2.5-coder-1.5b"
    translator: str = "qwen2.5-coder-1.5b"  # renders English questions in Chinese for search
    n_threads: int = 2
    n_ctx: int = 2048
    max_tokens: int = 160
    seed: int = 0
    temperature: float = 0.0
    top_k: int = 1  # greedy: evaluation runs repeat exactly
    repeat_penalty: float = 1.05  # just enough to stop the small models looping on a list
    # Evidence and refusal (rag/decide.py); thresholds chosen on all development suites, README "Refusal".
    evidence_sentences: int = 4
    dense_evidence: float = 0.3  # share of meaning (embedder) against word overlap when scoring sentences
    dense_evidence_en: float = 1.0  # the same for English questions over Chinese text
    min_support: float = 0.5  # share of an answer sentence's new words its cited sentence must hold
    min_meaning: float = 0.4  # rescaled similarity an English answer sentence needs to its Chinese quote
    recite_margin: float = 0.15  # an English sentence moves to the evidence this much closer in meaning (README "Refusal")
    min_coverage: float = 0.35  # rarity-weighted share of the question the best evidence must hold
    min_similarity: float = 0.1  # rescaled similarity of an English question to its best evidence
    min_echo: float = 0.55  # share of the question's words an answer sentence repeats that its cited context holds (README "Refusal")
    min_cited_coverage: float = 0.35  # the same share, for the evidence an answer actually cites
    confirm_with: str = "qwen2.5-coder-1.5b"  # asked whether the cited sources answer; '' skips (README "Refusal")
    min_confirm: float = 0.5  # its probability of yes below which an answer is refused
    min_confirm_en: float = 0.8  # the same for an English answer, which no word check can hold to its Chinese source
    quote_confirm: float = 0.99  # ... at or above which the best evidence is quoted after a failed answer
    quote_coverage: float = 0.7  # best evidence this complete is quoted when the answer cites a side sentence

    @property
    def index_dir(self) -> Path:
        """One index folder per corpus, outside the corpus so a read-only collection still works."""
        key = hashlib.sha1(str(self.corpus.resolve()).encode()).hexdigest()[:12]
        return self.index_root / f"{self.corpus.resolve().name}-{key}"

    def index_params(self) -> dict:
        """The settings an index depends on: a change in any of them (or in the cleaning, chunking and
        tokenising code itself) means rebuild."""
        code = hashlib.sha1()
        for stage in ("load.py", "clean.py", "chunk.py", "tokens.py"):
            code.update((Path(__file__).parent / stage).read_bytes())
        return {"chunk_size": self.chunk_size, "chunk_overlap": self.chunk_overlap, "code": code.hexdigest()[:12]}

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
