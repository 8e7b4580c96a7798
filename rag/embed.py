"""Dense embeddings: multilingual-e5-small (built by `rag models fetch`, see rag.e5) through
sentence-transformers.

E5 was trained with a role prefix on every text, so questions and passages are embedded differently:
`embed(texts, "query")` for questions, `embed(texts, "passage")` for chunks. The prefixes live in the
model folder's config_sentence_transformers.json, not in code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    dim: int

    def embed(self, texts: list[str], prompt: str) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text; prompt is "query" or "passage"."""
        ...


class SentenceTransformerEmbedder:
    """A model folder `SentenceTransformer(path)` loads, with its named prompts."""

    def __init__(self, path: Path, batch_size: int = 32):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        dim_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim_of())
        self.batch_size = batch_size

    def embed(self, texts: list[str], prompt: str) -> np.ndarray:
        """Questions run on one thread: a short text's matrices are too small to share, and a second
        thread waiting on a busy machine made one question 10x slower (2.9 s against 0.19 s, measured)."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        threads = torch.get_num_threads()
        torch.set_num_threads(1 if prompt == "query" else threads)
        try:
            vectors = self.model.encode(texts, prompt_name=prompt, batch_size=self.batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        finally:
            torch.set_num_threads(threads)
        return np.asarray(vectors, dtype=np.float32)


def dir_hash(path: Path) -> str:
    """SHA-256 over the files of a model folder (names and bytes), order-independent of the filesystem."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        with open(file, "rb") as fh:
            while block := fh.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()
