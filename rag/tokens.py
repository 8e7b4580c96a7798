"""Word tokens for BM25: jieba on normalised (Simplified, lower-case) text.

`cut_for_search` also emits the sub-words of long words (荥经县 -> 荥经, 荥经县), so a question that
says 荥经 still meets a document that says 荥经县. Punctuation and whitespace are dropped; numbers stay
whole (4.72, 2808) so figures match exactly.
"""

from __future__ import annotations

import logging
import re

import jieba

jieba.setLogLevel(logging.WARNING)

_WORD = re.compile(r"[\w\u3400-\u9fff]", re.UNICODE)
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 并 等 对 从 把 被 让 这 那 其 之 为 以 于 由 中 上 下 个 吗 呢 啊 吧 "
    "什么 多少 如何 怎么 怎样 哪些 哪个 哪里 为什么 几 有 有没有 是否 请问 "
    "the a an of to in on for and or is are was were be by with what which how many much did does do why "
    "who when where its it this that as at from".split()
)


def tokenize(text: str) -> list[str]:
    return [t for t in jieba.cut_for_search(text) if _WORD.search(t) and t not in STOPWORDS]
