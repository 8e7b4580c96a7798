"""A batch of questions on stdin never loses work: one question's failure is that question's "error" field.

The command line runs in-process (click's runner) on the session Runtime, so faults can be injected into the
generator and the retriever with monkeypatch; everything else is the real pipeline with the 0.5B model.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from rag.cli import MAX_QUESTION_CHARS, cli

SMALL = "qwen2.5-coder-0.5b"
POISON = "河长?"  # the injected faults fire on a question ending so (ASCII "?"; the GOOD ones end in "？")
GOOD = ["青禾县设立了多少名河长？", "松岭市2022年旅游收入是多少？", "城东新区设置了多少个智能回收站？",
        "青禾县建成了几座污水处理厂？", "城东新区居民参与垃圾分类的比例是多少？", "松嶺市新增綠道多少公里？",
        "火星上有多少个河长？", "青禾县2030年的GDP是多少？", "What is the tourism income of Songling city?"]
POISON_LINES = [  # (the line's bytes, a word its error must hold)
    (("青禾县河长" * 400).encode(), "too long"),  # 2,000 characters
    (b"\x01\x02\x1b[2J \xe6\xb2\xb3\xe9\x95\xbf", "control characters"),
    (b"\xff\xfe\xe6\xb2", "UTF-8"),
    (f"青禾县设立了多少名{POISON}".encode(), "RuntimeError"),
    (f"青禾县共设立了多少名{POISON}".encode(), "ValueError"),
]
FAULTS = [RuntimeError("llama_decode returned -3"), ValueError("Requested tokens (2100) exceed context window of 2048")]


def make_batch(n: int, poisoned: dict[int, int]) -> tuple[bytes, dict[int, tuple[bytes, str]]]:
    """n lines on stdin; poisoned maps a line number to an entry of POISON_LINES, the rest cycle GOOD."""
    lines, good = [], iter(GOOD * (n // len(GOOD) + 1))
    for i in range(n):
        lines.append(POISON_LINES[poisoned[i]][0] if i in poisoned else next(good).encode())
    return b"\n".join(lines) + b"\n", {i: POISON_LINES[j] for i, j in poisoned.items()}


@pytest.fixture
def shared_runtime(runtime, monkeypatch):
    """`rag ask`/`rag search` get the session Runtime instead of loading the models again."""
    monkeypatch.setattr("rag.service.Runtime.open", classmethod(lambda cls, cfg, progress=True: runtime))
    return runtime


def run_batch(args: list[str], stdin: bytes) -> tuple[int, list[dict], str]:
    result = CliRunner().invoke(cli, args, input=stdin, catch_exceptions=False)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return result.exit_code, lines, result.stderr


def check_ask_batch(runtime, monkeypatch, n: int, poisoned: dict[int, int]) -> None:
    """Run `rag ask --json` over the batch with the generator failing on the POISON questions."""
    import rag.ask

    stdin, bad = make_batch(n, poisoned)
    real, faults = rag.ask.stream_chat, iter(FAULTS)

    def faulty(llm, messages, *args, **kwargs):
        if messages[-1]["content"].rstrip().endswith(POISON):
            raise next(faults)
        return real(llm, messages, *args, **kwargs)

    monkeypatch.setattr(rag.ask, "stream_chat", faulty)
    code, lines, err = run_batch(["ask", "--json", "--model", SMALL], stdin)
    assert code == 0 and "Traceback" not in err, err
    assert len(lines) == n
    errors = {i: obj["error"] for i, obj in enumerate(lines) if "error" in obj}
    assert set(errors) == set(bad), errors
    for i, (line, word) in bad.items():
        assert word in errors[i] and "\n" not in errors[i], errors[i]
        assert lines[i]["question"] == line.decode("utf-8", "replace")
        assert lines[i]["answer"] == "" and lines[i]["citations"] == []
    answers = [obj for obj in lines if "error" not in obj]
    assert len(answers) == n - len(bad) and all(obj["answer"].strip() for obj in answers)
    print(f"\n{len(lines)} lines: {len(answers)} answers ({sum(a['refused'] for a in answers)} refusals), "
          f"{len(errors)} errors, exit {code}")
    for obj in answers:
        for c in obj["citations"]:
            assert (runtime.cfg.corpus / c["doc"]).read_text(encoding="utf-8")[c["start"]:c["end"]] == c["quote"]
    river = [obj for obj in answers if obj["question"] == GOOD[0]]
    assert len({json.dumps(obj["answer"]) for obj in river}) == 1, river  # the same question, the same answer


def test_ask_batch_goes_on_past_failing_questions(shared_runtime, monkeypatch):
    """6 lines: a 2,000-character question, a generator fault and control bytes among 3 real questions."""
    check_ask_batch(shared_runtime, monkeypatch, 6, {1: 0, 3: 3, 4: 1})


@pytest.mark.skipif(not os.environ.get("RAG_ACCEPTANCE"),
                    reason="45 real answers take ~8 minutes on 2 shared cores; set RAG_ACCEPTANCE=1")
def test_ask_batch_of_50_with_5_poisoned(shared_runtime, monkeypatch):
    """Issue 20's acceptance run: 50 lines, 5 poisoned -> 45 answers, 5 errors, exit 0."""
    check_ask_batch(shared_runtime, monkeypatch, 50, {7: 0, 15: 1, 23: 2, 31: 3, 44: 4})


def test_search_batch_goes_on_past_a_failing_question(shared_runtime, monkeypatch):
    import rag.ask

    real = rag.ask.search

    def faulty(index, embedder, question, *args, **kwargs):
        if question.rstrip().endswith(POISON):
            raise OSError(28, "No space left on device")
        return real(index, embedder, question, *args, **kwargs)

    monkeypatch.setattr(rag.ask, "search", faulty)
    stdin, bad = make_batch(50, {7: 0, 15: 1, 23: 2, 31: 3, 44: 4})
    code, lines, err = run_batch(["search", "--json", "--no-translate", "--k", "3"], stdin)
    assert code == 0 and "Traceback" not in err, err
    assert len(lines) == 50
    errors = {i for i, obj in enumerate(lines) if "error" in obj}
    assert errors == set(bad)
    assert "No space left" in lines[31]["error"] and lines[31]["hits"] == []
    assert all(lines[i]["hits"] for i in range(50) if i not in errors)


def test_question_limit_leaves_room_in_the_context(runtime):
    """The longest question accepted, with the instruction and the most evidence, fits the context."""
    from rag.ask import build_messages
    from rag.cite import MAX_QUOTE_CHARS, Evidence
    from rag.question import analyse

    llm = runtime.llm(SMALL)
    question = "青禾县" * (MAX_QUESTION_CHARS // 3)
    longest = "河长制" * (2 * MAX_QUOTE_CHARS // 3)  # the longest evidence window rag.cite makes
    evidence = [Evidence("d.txt", "t", 0, len(longest), longest, longest, 1.0)] * runtime.cfg.evidence_sentences
    subjects = ["青禾县"] * len(evidence)  # each shown after the place it is about (rag.ask.unstated_subjects)
    text = "".join(m["content"] for m in build_messages(analyse(question), evidence, subjects))
    tokens = len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
    assert tokens + runtime.cfg.max_tokens + 64 < runtime.cfg.n_ctx, tokens
