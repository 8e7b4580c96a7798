"""Scale run: the 846-page rgb-news collection plus a synthetic noisy one, through the real command line.

    .venv/bin/python eval/scale.py                      # full size: 5,000 synthetic files, 20 kills, 8 chats
    .venv/bin/python eval/scale.py --synthetic 100 --kills 3 --concurrent 0   # what tests/test_scale.py runs

Measures: the first build (`rag index`), an incremental update after touching 10 files (how many chunks
were embedded again, against the chunks those 10 files hold), SIGKILL at a random moment of such an update
(is the index still usable, and is it the previous or the new one), and N chat requests sent at once to a
real `ui.py` with the 0.5B model. Writes reports/scale-<time>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
NEWS = PROJECT.parent / "shared" / "bench" / "rgb-news"
SMALL = "qwen2.5-coder-0.5b"
FURNITURE = ["您的位置: 首页 > 新闻中心 > 地方动态", "【字体:大 中 小】 分享到: 微信 微博 QQ空间", "开云真人 官网 点击进入",
             "责任编辑：王小明", "Copyright©2023 版权所有 京ICP备12345678号", "扫一扫在手机上查看当前页面", "🔥热门推荐🔥",
             "上一篇：无 下一篇：无", "（资料图片仅供参考）"]


def news_sentences() -> list[str]:
    """Sentences of the real news pages, the raw material of the synthetic collection."""
    import re

    out = []
    for path in sorted((NEWS / "corpus").iterdir()):
        out += [s for s in re.split(r"(?<=[。！？])", path.read_text(encoding="utf-8")) if 8 <= len(s.strip()) <= 200]
    return out


def synthetic_page(rng: random.Random, sentences: list[str], s2t) -> tuple[str, str]:
    """(text, encoding): furniture around shuffled real sentences; some pages Traditional, GB18030 or CRLF."""
    body = [rng.choice(sentences).strip() for _ in range(rng.randint(4, 30))]
    lines = rng.sample(FURNITURE, 3) + ["".join(body[i:i + 3]) for i in range(0, len(body), 3)] + rng.sample(FURNITURE, 2)
    text = "\n".join(lines) + "\n"
    roll = rng.random()
    if roll < 0.1:
        return s2t.convert(text), "utf-8"
    if roll < 0.15:
        return text, "gb18030"
    if roll < 0.2:
        return text.replace("\n", "\r\n"), "utf-8"
    return text, "utf-8"


def make_corpus(root: Path, n_synthetic: int, seed: int = 0) -> Path:
    import opencc

    corpus = root / "corpus"
    shutil.copytree(NEWS / "corpus", corpus / "rgb-news")
    rng, s2t, sentences = random.Random(seed), opencc.OpenCC("s2t"), news_sentences()
    (corpus / "synthetic").mkdir()
    for i in range(n_synthetic):
        text, encoding = synthetic_page(rng, sentences, s2t)
        (corpus / "synthetic" / f"page-{i:05d}.txt").write_bytes(text.encode(encoding))
    (corpus / "synthetic" / "empty.txt").write_bytes(b"")
    (corpus / "synthetic" / "binary.txt").write_bytes(rng.randbytes(2048) + b"\x00")
    return corpus


def rag(args: list[str], env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rag", *args], cwd=PROJECT, env={**os.environ, **env},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def touch(corpus: Path, rng: random.Random, n: int, round_: int) -> list[str]:
    """Append a sentence to n random UTF-8 pages; returns their doc names."""
    pages = sorted((corpus / "rgb-news").iterdir())
    chosen = rng.sample(pages, n)
    for path in chosen:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"\n第{round_}轮更新：本页补充说明{rng.randint(1, 10**6)}。\n")
    return [p.relative_to(corpus).as_posix() for p in chosen]


def check_usable(cfg, docs_before: dict, docs_after: dict, sample: int = 300) -> str:
    """'previous' or 'new' if the index loads, agrees with its manifest and slices exactly; raises otherwise."""
    from rag.index import current_index
    from rag.load import read_raw

    index = current_index(cfg)
    m = index.manifest
    assert m["n_chunks"] == len(index.chunks) == index.dense.ntotal == len(index.vectors)
    outcome = "previous" if m["docs"] == docs_before else "new" if m["docs"] == docs_after else "mixed"
    assert outcome != "mixed", "the index holds neither the previous nor the new corpus state"
    for c in random.Random(len(index.chunks)).sample(index.chunks, min(sample, len(index.chunks))):
        assert read_raw(cfg.corpus / c.doc)[c.start:c.end] == c.text, c.id
    return outcome


class Watched:
    """A `rag index` run whose stderr is read as it comes, noting when its build starts."""

    def __init__(self, corpus: Path, env: dict):
        import threading

        self.proc = rag(["index", "--corpus", str(corpus)], env, start_new_session=True)
        self.started, self.build_at, self.err = time.perf_counter(), None, b""
        self.build = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in iter(self.proc.stderr.readline, b""):
            self.err += line
            if b"indexing " in line and not self.build.is_set():
                self.build_at = time.perf_counter()
                self.build.set()

    def finish(self) -> int:
        rc = self.proc.wait()
        self.reader.join(30)
        return rc


def first_build(corpus: Path, env: dict) -> dict:
    run = Watched(corpus, env)
    rc = run.finish()
    assert rc == 0, run.err.decode("utf-8", "replace")[-2000:]
    return {"seconds": round(time.perf_counter() - run.started, 1), "log": run.err.decode("utf-8", "replace")}


def incremental(cfg, env: dict, rng: random.Random) -> dict:
    """Touch 10 files, update through `rag index`; the log says how many chunks it embedded."""
    import re

    from rag.index import current_index

    touched = touch(cfg.corpus, rng, 10, 0)
    run = Watched(cfg.corpus, env)
    assert run.finish() == 0, run.err.decode("utf-8", "replace")[-2000:]
    log = run.err.decode("utf-8", "replace")
    embedded = re.search(r"embedding (\d+) chunks from (\d+) new or changed", log)
    index = current_index(cfg)
    held = sum(1 for c in index.chunks if c.doc in touched)
    return {"touched": 10, "files_embedded": int(embedded.group(2)), "chunks_embedded": int(embedded.group(1)),
            "chunks_of_touched_files": held, "total_chunks": len(index.chunks),
            "seconds": round(time.perf_counter() - run.started, 1),
            "build_seconds": round(time.perf_counter() - run.build_at, 1)}


def kill_loop(cfg, env: dict, rng: random.Random, runs: int, window: float) -> dict:
    """SIGKILL `rag index` at a random moment of an update (touching 10 files each time), then check."""
    from rag.index import corpus_state, current_index

    outcomes, failures = [], []
    for r in range(1, runs + 1):
        before = current_index(cfg).manifest["docs"]
        touch(cfg.corpus, rng, 10, r)
        after = {k: v for k, v in corpus_state(cfg.corpus).items() if k in before}  # skipped files stay out
        run = Watched(cfg.corpus, env)
        while not run.build.wait(1) and run.proc.poll() is None:
            pass
        if not run.build.is_set():  # it ended before building: say why (its last line)
            tail = run.err.decode("utf-8", "replace").strip().splitlines()[-1:]
            failures.append(f"run {r}: no build started (exit {run.proc.returncode}: {tail})")
        time.sleep(rng.uniform(0, 1.5 * window))  # a third of the runs may finish first
        killed = run.proc.poll() is None
        if killed:
            os.killpg(run.proc.pid, signal.SIGKILL)
        run.finish()
        try:
            outcome = check_usable(cfg, before, after)
        except Exception as exc:  # reported in the figures, then repaired by a normal run
            outcome = f"unusable: {type(exc).__name__}: {exc}"
            failures.append(f"run {r}: {outcome}")
            assert Watched(cfg.corpus, env).finish() == 0
        outcomes.append({"run": r, "killed": killed, "index": outcome})
        print(f"kill run {r}: {'killed' if killed else 'finished'}, index {outcome}", file=sys.stderr)
    usable = sum(1 for o in outcomes if not o["index"].startswith("unusable"))
    return {"runs": runs, "usable": usable, "killed": sum(o["killed"] for o in outcomes),
            "previous": sum(o["index"] == "previous" for o in outcomes),
            "new": sum(o["index"] == "new" for o in outcomes), "failures": failures, "outcomes": outcomes}


def concurrent_chats(corpus: Path, env: dict, n: int, timeout: float = 1800) -> dict:
    """Start ui.py on the collection and send n questions of the rgb-news QA set at the same moment."""
    import socket
    import threading
    import urllib.request

    from gradio_client import Client

    questions = [json.loads(line)["q"] for line in (NEWS / "qa.jsonl").read_text(encoding="utf-8").splitlines()][:n]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "ui.py", "--port", str(port), "--corpus", str(corpus), "--model", SMALL],
                              cwd=PROJECT, env={**os.environ, **env, "NO_PROXY": "127.0.0.1"},
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url, opener = f"http://127.0.0.1:{port}/", urllib.request.build_opener(urllib.request.ProxyHandler({}))
    results: dict[int, object] = {}
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                opener.open(url, timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "ui.py did not start"
                time.sleep(2)
        start = threading.Barrier(n)

        def worker(i: int) -> None:
            try:
                client = Client(url, verbose=False)
                start.wait(120)
                began = time.perf_counter()
                history, *_ = client.submit(questions[i], [], SMALL, 5, api_name="/ask").result(timeout=timeout)
                content = history[-1]["content"]
                text = content if isinstance(content, str) else str(content)
                results[i] = (text, round(time.perf_counter() - began, 1))
            except BaseException as exc:  # counted as unanswered
                results[i] = exc

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 180)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
    answered = [r for r in results.values() if isinstance(r, tuple) and r[0].strip() and not r[0].startswith("⚠")]
    waits = sorted(r[1] for r in answered)
    return {"sent": n, "answered": len(answered), "seconds_first": waits[0] if waits else None,
            "seconds_last": waits[-1] if waits else None,
            "errors": [repr(r) for r in results.values() if not isinstance(r, tuple)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=PROJECT / "reports")
    args = parser.parse_args()
    figures = run(args.synthetic, args.kills, args.concurrent, args.work)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"scale-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")
    stem.with_suffix(".md").write_text(markdown(figures), encoding="utf-8")
    print(markdown(figures))
    print(f"report: {stem}.json", file=sys.stderr)


def run(n_synthetic: int, kills: int, concurrent: int, work: Path | None = None) -> dict:
    from rag.config import Config
    from rag.index import current_index

    root = Path(tempfile.mkdtemp(prefix="rag-scale-")) if work is None else work
    rng = random.Random(20)
    corpus = make_corpus(root, n_synthetic)
    env = {"RAG_INDEX_DIR": str(root / "index")}
    cfg = Config(corpus=corpus, index_root=root / "index")  # what `rag index --corpus` builds
    figures: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "files": sum(1 for _ in corpus.rglob("*.txt")),
                     "load_average": os.getloadavg()}
    build = first_build(corpus, env)
    m = current_index(cfg).manifest
    figures["build"] = {"seconds": build["seconds"], "chunks": m["n_chunks"], "docs": len(m["docs"]),
                        "skipped": len(m["skipped"]), "not_utf8": len(m.get("encodings", {}))}
    print(f"build: {figures['build']}", file=sys.stderr)
    figures["incremental"] = incremental(cfg, env, rng)
    print(f"incremental: {figures['incremental']}", file=sys.stderr)
    if kills:
        figures["kills"] = kill_loop(cfg, env, rng, kills, figures["incremental"]["build_seconds"])
        assert Watched(corpus, env).finish() == 0  # up to date again for the chat
    if concurrent:
        figures["chats"] = concurrent_chats(corpus, env, concurrent)
    figures["load_average_end"] = os.getloadavg()
    if work is None:
        shutil.rmtree(root, ignore_errors=True)
    return figures


def markdown(f: dict) -> str:
    b, inc = f["build"], f["incremental"]
    rows = [f"| files | {f['files']} ({b['docs']} indexed, {b['skipped']} skipped, {b['not_utf8']} not UTF-8) |",
            f"| first build (`rag index`, wall) | {b['seconds']} s, {b['chunks']} chunks |",
            f"| update after touching 10 files | {inc['files_embedded']} files / {inc['chunks_embedded']} chunks "
            f"embedded (those files hold {inc['chunks_of_touched_files']} of {inc['total_chunks']}); "
            f"{inc['seconds']} s wall |"]
    if "kills" in f:
        k = f["kills"]
        rows.append(f"| SIGKILL during an update | index usable after {k['usable']}/{k['runs']} "
                    f"({k['killed']} killed mid-run: {k['previous']} previous, {k['new']} new) |")
    if "chats" in f:
        c = f["chats"]
        rows.append(f"| chat requests sent at once | {c['answered']}/{c['sent']} answered, "
                    f"first after {c['seconds_first']} s, last after {c['seconds_last']} s |")
    return "\n".join([f"Scale run {f['started']} (load average {f['load_average'][0]:.1f})", "",
                      "| what | figure |", "|---|---|", *rows])


if __name__ == "__main__":
    main()
