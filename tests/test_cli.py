"""The command line as users and the held-out evaluation call it (../shared/CONTRACT.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
RAG = [sys.executable, "-m", "rag"]


def run(args, stdin: bytes | None = None, env_extra=None, cwd=PROJECT):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([*RAG, *args], input=stdin, capture_output=True, cwd=cwd, env=env, timeout=600)


def test_search_json_contract(cfg, runtime):
    questions = "松岭市旅游收入\n\n   \nHow many river chiefs in Qinghe?\n".encode() + b"\xff\xfe bad\n"
    out = run(["search", "--json", "--k", "3", "--corpus", str(cfg.corpus), "--no-translate"], stdin=questions,
              env_extra={"RAG_INDEX_DIR": str(cfg.index_root)})
    assert out.returncode == 0, out.stderr.decode()
    lines = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert len(lines) == 4  # blank line skipped; whitespace-only and bad bytes answered with errors
    first = lines[0]
    assert first["question"] == "松岭市旅游收入" and 0 < len(first["hits"]) <= 3
    for hit in first["hits"]:
        raw = open(cfg.corpus / hit["doc"], encoding="utf-8").read()
        assert raw[hit["start"]:hit["end"]] == hit["text"]
        assert isinstance(hit["score"], float)
    assert first["hits"][0]["doc"] == "forest.txt"
    assert lines[1]["error"] == "empty question"
    assert lines[2]["hits"][0]["doc"] == "river.txt"
    assert "UTF-8" in lines[3]["error"]
    assert b"Traceback" not in out.stderr


def test_ask_json_with_small_model(cfg, runtime):
    out = run(["ask", "青禾县设立了多少名河长？", "--json", "--corpus", str(cfg.corpus)],  # the default 1.5B
              env_extra={"RAG_INDEX_DIR": str(cfg.index_root)})
    assert out.returncode == 0, out.stderr.decode()
    result = json.loads(out.stdout)
    assert result["refused"] is False and result["citations"]
    for c in result["citations"]:
        assert open(cfg.corpus / c["doc"], encoding="utf-8").read()[c["start"]:c["end"]] == c["quote"]
        assert f"[{c['n']}]" in result["answer"]


def test_usage_errors_are_one_line(tmp_path):
    out = run(["ask", "问题", "--model", "no-such-model"])
    assert out.returncode != 0 and out.stderr.decode().count("\n") == 1 and b"Traceback" not in out.stderr
    out = run(["search", "x", "--corpus", str(tmp_path / "missing")])
    assert out.returncode != 0 and b"Traceback" not in out.stderr and b"does not exist" in out.stderr


def test_missing_models_name_the_fetch_command(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.json").write_text((PROJECT / "models" / "manifest.json").read_text())
    out = run(["search", "x"], env_extra={"RAG_MODELS_DIR": str(models)})
    assert out.returncode == 1 and b"rag models fetch" in out.stderr and b"Traceback" not in out.stderr


def test_eval_writes_its_report_where_it_says(cfg, runtime, tmp_path):
    """One QA set: report.json, report.md and failures.md in the folder the last line names."""
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "a", "q": "青禾县设立了多少名河长？", "kind": "zh", "doc": "river.txt",
                              "evidence": "设立河长212名", "facts": "212"}, ensure_ascii=False) + "\n", encoding="utf-8")
    out = run(["eval", "--retrieval-only", "--qa", str(qa), "--corpus", str(cfg.corpus), "--out", str(tmp_path / "r")],
              env_extra={"RAG_INDEX_DIR": str(cfg.index_root)})
    assert out.returncode == 0, out.stderr.decode()
    folder = Path(out.stderr.decode().strip().splitlines()[-1].removeprefix("report: "))
    assert {p.name for p in folder.iterdir()} >= {"report.json", "report.md", "failures.md"}
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["questions"][0]["id"] == "a" and report["summary"]["all"]["R@5"] == 1.0
