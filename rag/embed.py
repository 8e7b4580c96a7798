"""Dense embeddings: a static multilingual embedder distilled from the bundled Qwen GGUF.

No multilingual sentence-transformers model can be downloaded here, but the Qwen2.5 generator's
token-embedding table is multilingual. We dequantise it, centre it, project it to a small dimension with
PCA and weight each token by an estimated rarity (SIF weighting on the BPE rank, which tracks frequency),
then save it as a sentence-transformers StaticEmbedding so `SentenceTransformer(path)` loads it offline.
It is crude next to a trained encoder, but costs microseconds per query; BM25 carries exact names and
numbers beside it. The build is deterministic (float64 maths, float16 weights) so its hash is checkable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...


class SentenceTransformerEmbedder:
    """Any model `SentenceTransformer(path)` can load, with batching."""

    def __init__(self, path: Path, batch_size: int = 256):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device="cpu")
        dim_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim_of())
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def dir_hash(path: Path) -> str:
    """SHA-256 over the files of a model folder (names and bytes), order-independent of the filesystem."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _token_table(gguf_path: Path) -> np.ndarray:
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(gguf_path))
    tensor = next(t for t in reader.tensors if t.name == "token_embd.weight")
    table = dequantize(tensor.data, tensor.tensor_type)
    return np.asarray(table, dtype=np.float64).reshape(-1, table.shape[-1])


def build_static_embedder(gguf_path: Path, out_dir: Path, dim: int = 256, sif_a: float = 1e-4) -> None:
    """Write a StaticEmbedding sentence-transformers model to out_dir (see module docstring)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import StaticEmbedding
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    table = _token_table(gguf_path)
    n_vocab = min(table.shape[0], tokenizer.backend_tokenizer.get_vocab_size(with_added_tokens=True))
    table = table[:n_vocab]
    centred = table - table.mean(axis=0)
    _, eigvecs = np.linalg.eigh(centred.T @ centred)
    components = eigvecs[:, ::-1][:, :dim]
    components *= np.sign(components[np.abs(components).argmax(axis=0), range(dim)])  # fixed signs
    reduced = centred @ components
    reduced /= np.linalg.norm(reduced, axis=1, keepdims=True) + 1e-9
    rank = np.arange(n_vocab, dtype=np.float64) + 1.0
    prob = (1.0 / rank) / np.sum(1.0 / rank)
    weights = sif_a / (sif_a + prob)
    vectors = (reduced * weights[:, None]).astype(np.float16).astype(np.float32)
    static = StaticEmbedding(tokenizer.backend_tokenizer, embedding_weights=vectors)
    SentenceTransformer(modules=[static], device="cpu").save(str(out_dir))
