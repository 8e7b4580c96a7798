"""The Gradio chat as users meet it: a real `ui.py` server on loopback, driven by headless Chromium and gradio_client.

One server (0.5B model, a private copy of the fixture corpus, a private index folder) serves the whole module.
The browser is Debian's chromium + chromedriver at fixed paths; nothing is ever downloaded (no Selenium Manager).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import FIXTURES, copy_fixture_corpus

PROJECT = Path(__file__).resolve().parent.parent
REPORTS = PROJECT / "reports"
SMALL_MODEL = "qwen2.5-coder-0.5b"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
START_TIMEOUT = 240  # model and embedder load while another job may be using both cores
ANSWER_TIMEOUT = 300
RIVER_QUESTION = "青禾县设立了多少名河长？"
MARKER = re.compile(r"\[(\d+)\]")
SOURCE = re.compile(r"<div class='source' id='source-(\d+)'>.*?<code>(.*?)</code>.*?<mark>(.*?)</mark>", re.S)
BRIEF_TOPIC = "各地如何推进生态治理？"
BRIEF_SOURCE = re.compile(r"^(?:\d+\. )?(.*?) \(`?([^`()]+?)`?, characters (\d+)–(\d+)\): “(.*)”(?: \(also in [^“”]*\))?$",
                          re.S)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    """End the server and anything it started (its own process group), politely first."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def ui_corpus(tmp_path_factory) -> Path:
    """A private copy of the fixture corpus: uploads land here, never in tests/fixtures."""
    return copy_fixture_corpus(tmp_path_factory.mktemp("ui-corpus"))


@pytest.fixture(scope="module")
def ui_port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def ui_url(ui_corpus, ui_port, tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("ui-index")
    log_path = tmp_path_factory.mktemp("ui-log") / "server.log"
    url = f"http://127.0.0.1:{ui_port}/"
    env = {**os.environ, "RAG_INDEX_DIR": str(index_dir), "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost"}
    cmd = [sys.executable, str(PROJECT / "ui.py"), "--host", "127.0.0.1", "--port", str(ui_port),
           "--corpus", str(ui_corpus), "--model", SMALL_MODEL]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(url):
            if proc.poll() is not None:
                pytest.fail(f"ui.py exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"ui.py did not answer on {url} within {START_TIMEOUT} s:\n"
                            f"{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(1)
        yield url
        assert proc.poll() is None, "ui.py died during the tests:\n" + log_path.read_text(errors="replace")[-3000:]
        assert "Traceback" not in log_path.read_text(errors="replace"), log_path.read_text(errors="replace")[-3000:]
    finally:
        _stop(proc)


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def _ask(client, question: str, k: int = 5, timeout: float = ANSWER_TIMEOUT):
    return client.submit(question, [], SMALL_MODEL, k, api_name="/ask").result(timeout=timeout)


def _text(message: dict) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text") or "" for part in content if isinstance(part, dict))


def _last_answer(history: list) -> str:
    assert history and history[-1]["role"] == "assistant", history
    return re.sub(r"<sub>.*?</sub>", "", _text(history[-1])).strip()


def test_browser_chat(ui_url, tmp_path):
    pytest.importorskip("selenium")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make browser)")
    os.environ["SE_OFFLINE"] = "true"  # belt and braces: Selenium Manager must never fetch a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--no-proxy-server",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_window_size(1400, 1000)
        driver.set_page_load_timeout(120)
        driver.get(ui_url)
        box = WebDriverWait(driver, 120).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#question textarea"))
        box.send_keys(RIVER_QUESTION)
        driver.find_element(By.ID, "ask").click()

        WebDriverWait(driver, 180, poll_frequency=1).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#sources .source mark"))

        def final_answer(d):  # the chat shows the finished answer with its timing line
            bots = d.find_elements(By.CSS_SELECTOR, "#chat .message.bot, #chat [data-testid='bot']")
            return bots and "[1]" in bots[-1].text and bots[-1].text

        answer = WebDriverWait(driver, 30).until(final_answer)
        assert "[1]" in answer and "212" in answer, answer
        source = driver.find_element(By.CSS_SELECTOR, "#sources #source-1")
        assert "river.txt" in source.text
        assert "212" in source.find_element(By.TAG_NAME, "mark").text
        REPORTS.mkdir(exist_ok=True)
        driver.execute_script("window.scrollTo(0, 0);")
        assert driver.save_screenshot(str(REPORTS / "ui-chat.png"))
    finally:
        driver.quit()


def test_gradio_client_answers_with_citation(ui_url):
    history, cleared, sources, passages = _ask(_client(ui_url), RIVER_QUESTION)
    answer = _last_answer(history)
    assert cleared == ""
    assert MARKER.search(answer) and "212" in answer, answer
    assert "class='source'" in sources and "<mark>" in sources, sources
    assert "river.txt" in passages


def _listening(port: int) -> set[str]:
    """Local addresses in LISTEN state on this TCP port, from the kernel's own tables."""
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(addr_hex)
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # per-word little endian
            found.add(socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, words))
    return found


def test_server_bound_to_loopback_only(ui_url, ui_port):
    addresses = _listening(ui_port)
    assert addresses == {"127.0.0.1"}, addresses
    if shutil.which("ss"):  # the same, as an administrator would check it
        out = subprocess.run(["ss", "-Hltn", f"sport = :{ui_port}"], capture_output=True, text=True, timeout=30)
        locals_ = {line.split()[3] for line in out.stdout.splitlines() if line.strip()}
        assert locals_ == {f"127.0.0.1:{ui_port}"}, out.stdout
        assert not any(a.startswith(("0.0.0.0:", "*:", "[::]:")) for a in locals_)


def test_upload_docx_becomes_answerable(ui_url, ui_corpus, tmp_path):
    import docx
    from gradio_client import handle_file

    path = tmp_path / "baisha.docx"
    document = docx.Document()
    document.add_heading("白沙镇污水治理进展", level=1)
    document.add_paragraph("白沙镇2023年新建污水管网18公里。")
    document.save(str(path))
    client = _client(ui_url)

    status = client.submit([handle_file(str(path))], api_name="/upload").result(timeout=ANSWER_TIMEOUT)
    assert "✓ baisha.docx added" in status, status
    assert (ui_corpus / "baisha.docx").exists()

    history, _, sources, _ = _ask(client, "白沙镇新建了多少公里污水管网？")
    answer = _last_answer(history)
    cited = {n: (doc, quote) for n, doc, quote in SOURCE.findall(sources)}
    docx_marks = [n for n, (doc, _) in cited.items() if doc == "baisha.docx"]
    assert docx_marks, sources
    assert any(f"[{n}]" in answer for n in docx_marks), (answer, sources)
    assert "18" in answer and any("18" in cited[n][1] for n in docx_marks), (answer, sources)

    bad = tmp_path / "garbage.txt"
    bad.write_bytes(b"\x00\x01\x02\xff\xfe" * 200)
    status = client.submit([handle_file(str(bad))], api_name="/upload").result(timeout=ANSWER_TIMEOUT)
    assert status.startswith("✗ garbage.txt:") and "Traceback" not in status, status
    assert len(status.splitlines()) == 1 and not (ui_corpus / "garbage.txt").exists()

    history, _, sources, _ = _ask(client, RIVER_QUESTION)
    answer = _last_answer(history)
    assert MARKER.search(answer) and "212" in answer and "class='source'" in sources, answer


def test_upload_never_overwrites(ui_url, ui_corpus, tmp_path):
    """Same name and content: already there. Same name, other content: kept under a new name, both stay."""
    from gradio_client import handle_file

    client = _client(ui_url)
    original = (FIXTURES / "corpus" / "river.txt").read_bytes()
    same = tmp_path / "same" / "river.txt"
    same.parent.mkdir()
    same.write_bytes(original)
    status = client.submit([handle_file(str(same))], api_name="/upload").result(timeout=ANSWER_TIMEOUT)
    assert status == "= river.txt: already in the collection", status

    other = tmp_path / "other" / "river.txt"
    other.parent.mkdir()
    other.write_text("白鹭镇2023年新建人工湿地7处，修复河岸带15公里。\n", encoding="utf-8")
    status = client.submit([handle_file(str(other))], api_name="/upload").result(timeout=ANSWER_TIMEOUT)
    first = status.splitlines()[0]
    assert first.startswith("✓ river.txt added as river-2.txt") and "kept" in first, status
    assert (ui_corpus / "river.txt").read_bytes() == original
    assert (ui_corpus / "river-2.txt").read_bytes() == other.read_bytes()
    status = client.submit([handle_file(str(other))], api_name="/upload").result(timeout=ANSWER_TIMEOUT)
    assert status == "= river.txt: already in the collection as river-2.txt", status

    passages = _ask(client, "白鹭镇新建了多少处人工湿地？")[3]  # both files are searched
    assert "<code>river-2.txt</code>" in passages.split("</li>")[0], passages
    passages = _ask(client, RIVER_QUESTION)[3]
    assert "<code>river.txt</code>" in passages.split("</li>")[0], passages


def _passages(passages_html: str) -> int:
    return passages_html.count("<li>")


def test_two_clients_each_get_their_own_k(ui_url, tmp_path):
    """k=1 and k=8 submitted at the same moment: each answer reads its own number of passages, and the
    server's own setting is untouched (a later request with k=5 reads 5)."""
    from gradio_client import handle_file

    long_doc = tmp_path / "changshou.txt"  # one real report: enough chunks for eight passages
    long_doc.write_bytes((PROJECT / "corpus" / "000_e82d20db0e0dda62.txt").read_bytes())
    status = _client(ui_url).submit([handle_file(str(long_doc))], api_name="/upload").result(timeout=ANSWER_TIMEOUT)
    assert "changshou.txt" in status, status
    question = "长寿区划定的经开区建设用地面积有多大？"
    start = threading.Barrier(2)
    results: dict[int, tuple | BaseException] = {}

    def worker(k: int) -> None:
        try:
            client = _client(ui_url)
            start.wait(timeout=120)
            results[k] = _ask(client, question, k=k)
        except BaseException as exc:  # reported below
            results[k] = exc

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in (1, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=2 * ANSWER_TIMEOUT)
    for k in (1, 8):
        assert isinstance(results.get(k), tuple), results.get(k)
        history, _, _, passages = results[k]
        assert _last_answer(history), history
        assert _passages(passages) == k, (k, passages)
    assert _passages(_ask(_client(ui_url), question, k=5)[3]) == 5


def test_concurrent_questions_all_answered(ui_url):
    questions = [RIVER_QUESTION, "松岭市2022年旅游收入是多少？", "城东新区设置了多少个智能回收站？",
                 "青禾县建成了几座污水处理厂？", "How many river chiefs does Qinghe county have?",
                 "松嶺市新增綠道多少公里？", "城东新区居民参与率是多少？", "青禾县地表水优良比例是多少？"]
    deadline = time.monotonic() + 600
    start = threading.Barrier(len(questions))
    results: dict[int, str | BaseException] = {}

    def worker(i: int, question: str) -> None:
        try:
            client = _client(ui_url)
            start.wait(timeout=120)
            history, *_ = _ask(client, question, timeout=max(1.0, deadline - time.monotonic()))
            results[i] = _last_answer(history)
        except BaseException as exc:  # reported below, with the question
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i, q), daemon=True) for i, q in enumerate(questions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic() + 30))
    assert all(not t.is_alive() for t in threads), "some questions were still unanswered after 10 minutes"
    for i, question in enumerate(questions):
        result = results.get(i)
        assert isinstance(result, str) and result, f"{question}: {result!r}"


def _brief(client, topic: str, docs: int, fmt: str, timeout: float = ANSWER_TIMEOUT):
    return client.submit(topic, SMALL_MODEL, docs, fmt, api_name="/brief").result(timeout=timeout)


def _check_sources(entries: list[str], corpus: Path) -> set[str]:
    """Every source entry quotes an exact raw slice of its file; returns the cited file names."""
    from rag.load import read_raw

    cited = set()
    for entry in entries:
        match = BRIEF_SOURCE.match(entry)
        assert match, entry
        _, doc, start, end, quote = match.groups()
        assert quote and read_raw(corpus / doc)[int(start):int(end)] == quote, entry
        cited.add(doc)
    return cited


def test_briefing_tab_downloads_cited_word_and_markdown(ui_url, ui_corpus):
    import docx

    client = _client(ui_url)
    for bad in ("", "   ", "河" * 20_000):
        shown, file = _brief(client, bad, 2, "Word", timeout=60)
        assert shown.startswith("⚠") and "topic" in shown and "Traceback" not in shown, shown
        assert file is None

    shown, path = _brief(client, BRIEF_TOPIC, 2, "Word")
    path = Path(path)
    assert path.suffix == ".docx" and path.is_file(), path
    paragraphs = docx.Document(str(path)).paragraphs
    headings = [p.text for p in paragraphs if p.style.name.startswith("Heading")]
    assert paragraphs[0].text == BRIEF_TOPIC and headings[-1] == "Sources" and len(headings) >= 2, headings
    entries = [p.text for p in paragraphs if p.style.name == "List Number"]
    # which documents are cited depends on what other tests uploaded; each source must quote its file exactly
    assert _check_sources(entries, ui_corpus)
    body = "\n".join(p.text for p in paragraphs[: [p.text for p in paragraphs].index("Sources")])
    assert {int(n) for n in MARKER.findall(body)} <= set(range(1, len(entries) + 1)) and MARKER.search(body)
    assert shown.startswith(f"# {BRIEF_TOPIC}") and "## Sources" in shown
    for heading in headings[:-1]:
        assert f"## {heading}" in shown, (heading, shown)

    shown_md, path_md = _brief(client, BRIEF_TOPIC, 1, "Markdown")
    path_md = Path(path_md)
    assert path_md.suffix == ".md" and path_md.is_file(), path_md
    text = path_md.read_text(encoding="utf-8")
    assert text.strip() == shown_md.strip() and text.startswith(f"# {BRIEF_TOPIC}")
    entries = re.split(r"\n(?=\d+\. )", text.split("\n## Sources\n", 1)[1].strip())
    assert _check_sources(entries, ui_corpus)
    assert not list(PROJECT.glob("briefing-*")), "downloads belong in a temporary folder, not the repo"
