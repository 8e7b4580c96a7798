import json
from pathlib import Path

from rag.eval import answer_metrics, compare, fact_found, judge_answer, load_qa, retrieval_metrics, summarize

PROJECT = Path(__file__).resolve().parent.parent


def row(kind, answerable, rank, refused, correct, n_cit, with_ev, unsupported=0):
    return {"kind": kind, "split": "tune", "answerable": answerable, "rank": rank, "timings": {"ttft_s": 1.0,
            "total_s": 2.0}, "verdict": {"refused": refused, "correct": correct, "n_citations": n_cit,
                                          "quotes_exact": n_cit, "citations_with_evidence": with_ev,
                                          "unsupported_numbers": unsupported}}


def test_metrics_on_hand_made_report():
    rows = [row("zh", True, 1, False, True, 2, 1),  # right at rank 1, one of two citations on evidence
            row("en", True, 4, True, False, 0, 0),  # found at rank 4 but refused
            row("unanswerable", False, None, True, True, 0, 0)]
    r = retrieval_metrics(rows)
    assert r == {"n": 2, "R@1": 0.5, "R@3": 0.5, "R@5": 1.0, "MRR": round((1 + 1 / 4) / 2, 3)}
    a = answer_metrics(rows)
    assert a["answer_correct"] == 0.5
    assert a["citation_precision"] == 0.5
    assert a["refusal_recall"] == 1.0 and a["refusal_precision"] == 0.5 and a["answerable_refused"] == 0.5
    assert summarize(rows)["zh"]["R@1"] == 1.0


def test_judge_answer_checks_facts_quotes_and_numbers(tmp_path):
    (tmp_path / "d.txt").write_text("前言。全县古树2808棵,古树群4个。", encoding="utf-8")
    item = load_qa_line(tmp_path, {"id": "x", "q": "古树多少棵", "kind": "zh", "doc": "d.txt",
                                   "evidence": ["全县古树2808棵"], "facts": ["2808棵"]})
    good = {"answer": "全县有古树2808棵[1]。", "refused": False,
            "citations": [{"n": 1, "doc": "d.txt", "start": 3, "end": 14, "quote": "全县古树2808棵,古"}]}
    v = judge_answer(item, good, [("d.txt", 3, 12)], tmp_path)
    assert v["correct"] and v["quotes_exact"] == 1 and v["unsupported_numbers"] == 0
    bad = {**good, "answer": "全县有古树3000棵[1]。"}
    v = judge_answer(item, bad, [("d.txt", 3, 12)], tmp_path)
    assert not v["correct"] and v["unsupported_numbers"] == 1


def test_judge_answer_counts_names_the_quotes_do_not_hold(tmp_path):
    """A Latin name a Chinese sentence adds is counted; an English answer's words and the quotes shown after
    it ("Sources: …") are not names."""
    source = "白石公司发布新芯片前一年，首席设计官 Lin Bo 离职，从他工作了二十年的公司退出。"
    (tmp_path / "d.txt").write_text(source, encoding="utf-8")
    item = load_qa_line(tmp_path, {"id": "x", "q": "首席设计官去了哪家公司？", "kind": "zh", "doc": "d.txt",
                                   "evidence": ["首席设计官 Lin Bo 离职"], "facts": ["Qubrix"]})
    cited = [{"n": 1, "doc": "d.txt", "start": 0, "end": len(source), "quote": source}]
    invented = {"answer": "首席设计官Lin Bo离职后去了Qubrix公司担任总裁[1]。", "refused": False, "citations": cited}
    assert judge_answer(item, invented, [], tmp_path)["unsupported_names"] == ["qubrix"]
    english = {**invented, "answer": f"Lin Bo left the company [1].\nSources: [1] “{source.rstrip('。')}”"}
    assert judge_answer(item, english, [], tmp_path)["unsupported_names"] == []


def load_qa_line(tmp_path, obj):
    p = tmp_path / "qa.jsonl"
    p.write_text(json.dumps(obj, ensure_ascii=False) + "\n", encoding="utf-8")
    return load_qa(p)[0]


def test_fact_matching_normalises_script():
    assert fact_found("4.72亿元", "信貸資金4.72億元")
    assert not fact_found("4.72亿元", "信贷资金4.27亿元")
    assert fact_found("第三批", "白石镇入选第3批示范镇") and not fact_found("第三批", "白石镇入选第4批示范镇")
    assert fact_found("6.5%", "CPI同比上涨6.50%") and fact_found("6.50%", "上涨6.5%") and fact_found("2", "增长2.0倍")
    assert not fact_found("6.5%", "上涨6.05%") and not fact_found("100", "共10个")


def test_csv_qa_loads(tmp_path):
    p = tmp_path / "qa.csv"
    p.write_text("id,q,kind,doc,evidence,facts\na,问题,zh,d.txt,证据一|证据二,事实\n", encoding="utf-8")
    item = load_qa(p)[0]
    assert item.evidence == ["证据一", "证据二"] and item.doc == ["d.txt"]


def test_project_qa_evidence_occurs_in_documents():
    items = load_qa(PROJECT / "eval" / "qa.jsonl")
    assert len(items) >= 60
    for item in items:
        for ev in item.evidence:
            assert any(ev in (PROJECT / "corpus" / d).read_text(encoding="utf-8") for d in item.doc), (item.id, ev)


def test_compare_reports(tmp_path):
    for name, value in (("a", 0.5), ("b", 0.75)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps({"summary": {"all": {"R@5": value}}}))
    assert "+0.250" in compare(tmp_path / "a", tmp_path / "b")
