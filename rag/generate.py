"""The generator: llama-cpp-python over the bundled GGUF, deterministic, streamed, with short prompts.

On two cores every prompt token costs ~12 ms before the first answer token, so prompts carry only a
few numbered evidence sentences, and the fixed instruction comes first so llama.cpp's prompt cache can
reuse its KV state from one question to the next. Decoding is greedy with a fixed seed, so evaluation
runs repeat exactly.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.config import Config


@dataclass
class Usage:
    """What one generation cost; filled in as the stream runs."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float = 0.0
    total_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        gen = self.total_s - self.ttft_s
        return self.completion_tokens / gen if gen > 0 and self.completion_tokens > 1 else 0.0


@contextlib.contextmanager
def _quiet_stderr():
    """llama.cpp prints load chatter straight to fd 2; users should not see it."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
        os.close(devnull)


def load_llm(path: Path, cfg: Config):
    from llama_cpp import Llama

    from rag.models import ModelError

    try:
        with _quiet_stderr():
            return Llama(model_path=str(path), n_ctx=cfg.n_ctx, n_threads=cfg.n_threads, n_batch=512,
                         seed=cfg.seed, verbose=False)
    except ValueError as exc:  # right size, wrong bytes: the size check at start-up cannot see it
        raise ModelError(f"model file {path.name} cannot be loaded (corrupt?); run `rag models fetch` "
                         "to repair it") from exc


def stream_chat(llm, messages: list[dict], cfg: Config, usage: Usage, max_tokens: int | None = None,
                stop: list[str] | None = None) -> Iterator[str]:
    """Yield answer text pieces as they are generated; usage is updated in place."""
    started = time.perf_counter()
    usage.prompt_tokens = len(llm.tokenize(
        "".join(m["content"] for m in messages).encode("utf-8"), add_bos=False, special=False))
    stream = llm.create_chat_completion(
        messages=messages, stream=True, temperature=cfg.temperature, top_k=cfg.top_k, seed=cfg.seed,
        max_tokens=max_tokens or cfg.max_tokens, stop=stop or [], repeat_penalty=cfg.repeat_penalty,
    )
    for part in stream:
        piece = part["choices"][0]["delta"].get("content") or ""
        if not piece:
            continue
        if usage.completion_tokens == 0:
            usage.ttft_s = time.perf_counter() - started
        usage.completion_tokens += 1
        yield piece
    usage.total_s = time.perf_counter() - started


def complete(llm, messages: list[dict], cfg: Config, max_tokens: int | None = None,
             stop: list[str] | None = None) -> tuple[str, Usage]:
    usage = Usage()
    text = "".join(stream_chat(llm, messages, cfg, usage, max_tokens, stop))
    return text, usage


TRANSLATE_SYSTEM = ("Translate the user's English question into Simplified Chinese. Keep any Chinese words exactly "
                    "as written. Output only the Chinese question.")
# Two neutral examples (no place names, which the model would copy into unrelated questions).
TRANSLATE_SHOTS = [
    ("How much money did the county invest in rural roads in 2021?", "该县2021年在农村公路上投资了多少钱？"),
    ("What measures were taken to protect the lake?", "采取了哪些措施保护湖泊？"),
]


def translate_to_chinese(llm, question: str, cfg: Config) -> str:
    """A Chinese rendering of an English question, so BM25 and the embedder can meet Chinese text."""
    messages = [{"role": "system", "content": TRANSLATE_SYSTEM}]
    for english, chinese in TRANSLATE_SHOTS:
        messages += [{"role": "user", "content": english}, {"role": "assistant", "content": chinese}]
    messages.append({"role": "user", "content": question.strip()[:400]})
    text, _ = complete(llm, messages, cfg, max_tokens=60, stop=["\n"])
    return text.strip()


CONFIRM_SYSTEM = "你判断资料是否回答了问题。只回答“是”或“否”。"


def chatml(messages: list[dict]) -> str:
    """The Qwen chat format the GGUF's template writes (llama-cpp-python's own ChatML formatter), ending
    where the assistant's reply begins."""
    from llama_cpp.llama_chat_format import format_chatml

    return format_chatml(messages).prompt


@functools.lru_cache(maxsize=4)
def answer_tokens(llm) -> tuple[int, int, int]:
    """The first token ids of 是, 否 and 不 in this model's vocabulary (looked up once per model)."""
    return tuple(llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)[0] for w in ("是", "否", "不"))


def next_token_logits(llm, tokens: list[int]):
    """The model's logits for the token after `tokens`, reusing the cached prefix of the last prompt."""
    import numpy as np
    from llama_cpp import llama_get_logits_ith

    cached = 0
    for old, new in zip(llm.input_ids[: llm.n_tokens], tokens[:-1], strict=False):
        if old != new:
            break
        cached += 1
    llm.n_tokens = cached
    llm.eval(tokens[cached:])
    return np.ctypeslib.as_array(llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()


def yes_probability(llm, question: str, sources: list[str]) -> tuple[float, Usage]:
    """How sure the generator is, asked apart from its answer, that these sources answer the question:
    P(是) against P(否)+P(不) for its first token. Asked apart, the model that wrote "海底捞的新任首席执行官是蒂姆•库克"
    from a sentence about Apple's CEO gives 0.29. A probability rather than the word it would write, so
    one threshold keeps an answer (`Config.min_confirm`) and a stricter one lets the best evidence be quoted
    after a failed answer (`Config.quote_confirm`); both calibrated on the bench (README "Refusal")."""
    import numpy as np

    started = time.perf_counter()
    messages = [{"role": "system", "content": CONFIRM_SYSTEM},
                {"role": "user", "content": f"资料：{' '.join(sources)}\n问题：{question.strip()[:400]}\n"
                                            "资料是否回答了这个问题？"}]
    prompt = llm.tokenize(chatml(messages).encode("utf-8"), add_bos=False, special=True)
    logits = next_token_logits(llm, prompt)
    probs = np.exp(logits - logits.max())
    yes, no, not_ = (float(probs[token]) for token in answer_tokens(llm))
    seconds = time.perf_counter() - started
    usage = Usage(prompt_tokens=len(prompt), completion_tokens=1, ttft_s=seconds, total_s=seconds)
    return yes / (yes + no + not_), usage
