"""Batch evaluation against a QA set: every figure the project reports comes from here.

A hit counts as relevant when it overlaps an evidence string's position in its document by at least half
of the evidence (so a chunk boundary cutting a long evidence string still counts). Answers are judged by
key facts: each fact, normalised like the corpus (Simplified, no pinyin, width-folded), must appear in
the normalised answer; for English questions the cited quotes also count, since the answer quotes
Chinese figures through them.
"""

from __future__ import annotations

import csv
import json
import os
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from rag.ask import QUOTES_FOLLOW
from rag.cite import in_digits, split_answer, strip_markers, unsupported_names, unsupported_numbers
from rag.clean import normalize_query
from rag.config import PROJECT_ROOT
from rag.load import LoadError, read_raw
from rag.retrieve import hit_json

KINDS = ["zh", "zh-Hant", "en", "multi-doc", "unanswerable"]


@dataclass
class QAItem:
    id: str
    q: str
    kind: str
    doc: list[str]
    evidence: list[str]
    facts: list[str]
    lang: str = ""
    numeric: bool = False
    split: str = "tune"
    extra: dict = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable" and bool(self.evidence)


def _as_list(value) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v for v in str(value).split("|") if v]


def load_qa(path: Path) -> list[QAItem]:
    """JSONL (one object per line) or CSV with the same column names; list fields joined by '|' in CSV."""
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    else:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = []
    for i, row in enumerate(rows, 1):
        if "q" not in row:
            raise ValueError(f"{path.name}: row {i} has no 'q' field")
        numeric = row.get("numeric", False)
        items.append(QAItem(
            id=str(row.get("id") or f"row{i}"), q=row["q"], kind=row.get("kind") or "zh",
            doc=_as_list(row.get("doc")), evidence=_as_list(row.get("evidence")), facts=_as_list(row.get("facts")),
            lang=row.get("lang") or "", numeric=numeric in (True, "true", "True", "1", 1),
            split=row.get("split") or "tune"))
    return items


# ---------------------------------------------------------------- per-question verdicts

def evidence_spans(item: QAItem, corpus: Path) -> list[tuple[str, int, int]]:
    spans = []
    for ev in item.evidence:
        for doc in item.doc:
            try:
                raw = read_raw(corpus / doc)
            except (OSError, LoadError):
                continue
            pos = raw.find(ev)
            if pos >= 0:
                spans.append((doc, pos, pos + len(ev)))
                break
    return spans


def overlaps(doc: str, start: int, end: int, span: tuple[str, int, int], share: float = 0.5) -> bool:
    d, a, b = span
    return doc == d and min(end, b) - max(start, a) >= share * (b - a)


def first_relevant_rank(hits: list[dict], spans: list[tuple[str, int, int]]) -> int | None:
    for rank, h in enumerate(hits, 1):
        if any(overlaps(h["doc"], h["start"], h["end"], s) for s in spans):
            return rank
    return None


def fact_found(fact: str, text: str) -> bool:
    """The fact as one contiguous string of the text, both normalised like the corpus (Simplified, no
    pinyin, width-folded), without digit-group commas ("1,200" is "1200") and without a decimal's
    trailing zeros ("6.50%" is "6.5%", as a source may write it). No piecewise matching:
    "第1" is not in "…1月…第3名". Chinese numerals are read as digits on both sides, as the verifier reads
    them (第三批 is 第3批)."""
    f, t = _graded(fact), _graded(text)
    return bool(f) and (f in t or _graded(in_digits(fact)) in _graded(in_digits(text)))


def _graded(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3})", "", normalize_query(text)).replace(" ", "")
    return _TRAILING_ZEROS.sub(lambda m: m[1] + (f".{m[2]}" if m[2] else ""), text)


_TRAILING_ZEROS = re.compile(r"(\d+)\.(\d*?)0+(?![\d.])")  # a decimal's, not a date's (2022.10.05)


def citation_holds(citation: dict, item: QAItem, spans: list[tuple[str, int, int]]) -> bool:
    """A citation counts when it overlaps a recorded evidence span, or its quote holds a fact (news sets
    carry the same answer in several files; the one recorded file is not the only right one)."""
    if any(overlaps(citation["doc"], citation["start"], citation["end"], s, 0.3)
           or (citation["doc"] == s[0] and s[1] <= citation["start"] < s[2]) for s in spans):
        return True
    quote = citation["quote"]
    return any(ev in quote for ev in item.evidence) or any(fact_found(f, quote) for f in item.facts)


def judge_answer(item: QAItem, result: dict, spans: list[tuple[str, int, int]], corpus: Path) -> dict:
    citations = result.get("citations", [])
    quotes_exact = sum(read_raw(corpus / c["doc"])[c["start"]:c["end"]] == c["quote"] for c in citations)
    cited_evidence = sum(citation_holds(c, item, spans) for c in citations)
    text = result.get("answer", "")
    if item.lang == "en":
        text += " " + " ".join(c["quote"] for c in citations)
    facts = [fact_found(f, text) for f in item.facts]
    quote_text = normalize_query(" ".join(c["quote"] for c in citations))
    answer = normalize_query(strip_markers(result.get("answer", "")))
    invented = unsupported_numbers(answer, quote_text)  # 第3批 is held by 第三批, as the verifier reads it
    claims = result.get("answer", "").split(QUOTES_FOLLOW)[0]  # an English answer's quotes follow its claims
    names = [n for sentence in split_answer(claims)  # per sentence, as the verifier reads them
             for n in unsupported_names(normalize_query(strip_markers(sentence)), quote_text, normalize_query(item.q))]
    refused = bool(result.get("refused"))
    correct = (not item.answerable and refused) or (item.answerable and not refused and all(facts)
                                                    and cited_evidence > 0)
    return {"refused": refused, "facts_found": facts, "correct": correct, "n_citations": len(citations),
            "quotes_exact": quotes_exact, "citations_with_evidence": cited_evidence,
            "unsupported_numbers": len(invented), "unsupported_names": names}


# ---------------------------------------------------------------- aggregation

def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def retrieval_metrics(rows: list[dict]) -> dict:
    ranks = [r["rank"] for r in rows if r["answerable"]]
    n = len(ranks) or 1
    return {"n": len(ranks),
            **{f"R@{k}": round(sum(1 for x in ranks if x and x <= k) / n, 3) for k in (1, 3, 5)},
            "MRR": round(sum(1 / x for x in ranks if x) / n, 3)}


def answer_metrics(rows: list[dict]) -> dict:
    judged = [r for r in rows if "verdict" in r]
    if not judged:
        return {}
    ans = [r for r in judged if r["answerable"]]
    una = [r for r in judged if not r["answerable"]]
    refused = [r for r in judged if r["verdict"]["refused"]]
    n_cit = sum(r["verdict"]["n_citations"] for r in judged) or 1
    ttft = [r["timings"].get("ttft_s", 0) for r in judged if r["timings"].get("ttft_s")]
    total = [r["timings"].get("total_s", 0) for r in judged]
    return {
        "answer_correct": round(sum(r["verdict"]["correct"] for r in ans) / (len(ans) or 1), 3),
        "cited_evidence": round(sum(r["verdict"]["citations_with_evidence"] > 0 for r in ans) / (len(ans) or 1), 3),
        "citation_precision": round(sum(r["verdict"]["citations_with_evidence"] for r in judged) / n_cit, 3),
        "quote_exact": round(sum(r["verdict"]["quotes_exact"] for r in judged) / n_cit, 3),
        "refusal_recall": round(sum(r["verdict"]["refused"] for r in una) / (len(una) or 1), 3),
        "refusal_precision": round(sum(not r["answerable"] for r in refused) / (len(refused) or 1), 3),
        "answerable_refused": round(sum(r["verdict"]["refused"] for r in ans) / (len(ans) or 1), 3),
        "unsupported_numbers": sum(r["verdict"]["unsupported_numbers"] for r in judged),
        "unsupported_names": sum(len(r["verdict"].get("unsupported_names", [])) for r in judged),
        "ttft_p50_s": pct(ttft, 0.5), "ttft_p90_s": pct(ttft, 0.9),
        "total_p50_s": pct(total, 0.5), "total_p90_s": pct(total, 0.9),
    }


def summarize(rows: list[dict]) -> dict:
    groups = {"all": rows}
    for kind in KINDS:
        groups[kind] = [r for r in rows if r["kind"] == kind]
    for split in ("tune", "heldout"):
        groups[f"split:{split}"] = [r for r in rows if r["split"] == split]
    summary = {name: {**retrieval_metrics(g), **answer_metrics(g), "questions": len(g)}
               for name, g in groups.items() if g}
    return {**summary, "counts": counts(rows)}


# ---------------------------------------------------------------- running

@dataclass(frozen=True)
class Suite:
    """One QA set with the corpus it is asked of."""

    name: str
    qa: Path
    corpus: Path


def bench_root() -> Path:
    """The development sets beside the checkout (../shared/bench), or RAG_BENCH_DIR."""
    return Path(os.environ.get("RAG_BENCH_DIR", PROJECT_ROOT.parent / "shared" / "bench"))


def known_suites() -> dict[str, Suite]:
    """'own' (eval/qa.jsonl over corpus/) and every bench folder holding qa.jsonl and corpus/."""
    suites = {"own": Suite("own", PROJECT_ROOT / "eval" / "qa.jsonl", PROJECT_ROOT / "corpus")}
    root = bench_root()
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if (folder / "qa.jsonl").is_file() and (folder / "corpus").is_dir():
                suites[folder.name] = Suite(folder.name, folder / "qa.jsonl", folder / "corpus")
    return suites


def pick_suites(names: list[str]) -> list[Suite]:
    """Suites by name; 'all' is every known suite. Raises ValueError naming the known ones."""
    known = known_suites()
    wanted = list(known) if "all" in names else names
    missing = [n for n in wanted if n not in known]
    if missing:
        raise ValueError(f"unknown suite {', '.join(missing)}; known: {', '.join(known)}, all")
    return [known[n] for n in dict.fromkeys(wanted)]


def run_eval(rt, items: list[QAItem], retrieval_only: bool, model: str | None, progress: bool = True,
             desc: str = "eval") -> list[dict]:
    """One row per question; a question that raises becomes a row with an "error" and the run goes on."""
    rows = []
    for item in tqdm(items, desc=desc, unit="q", disable=not progress, file=sys.stderr):
        spans = evidence_spans(item, rt.cfg.corpus)
        row = {"id": item.id, "q": item.q, "kind": item.kind, "split": item.split, "answerable": item.answerable,
               "numeric": item.numeric, "facts": item.facts}
        try:
            row.update(_retrieval_row(rt, item) if retrieval_only else _answer_row(rt, item, model, spans))
        except Exception as exc:  # one bad question never ends the batch
            row.update({"error": f"{type(exc).__name__}: {exc}", "hits": [], "timings": {}})
            if not retrieval_only:
                row["verdict"] = judge_answer(item, {"refused": True, "citations": []}, spans, rt.cfg.corpus)
        row["rank"] = first_relevant_rank(row["hits"], spans) if spans else None
        rows.append(row)
    return rows


def _retrieval_row(rt, item: QAItem) -> dict:
    from rag.ask import retrieve_for

    retrieval = retrieve_for(rt, item.q)
    return {"hits": [hit_json(h) for h in retrieval.hits], "timings": {"retrieval_s": round(retrieval.seconds, 3)}}


def _answer_row(rt, item: QAItem, model: str | None, spans: list[tuple[str, int, int]]) -> dict:
    from rag.ask import answer, answer_json

    result = answer(rt, item.q, model)
    out = answer_json(result)
    return {"answer": out["answer"], "refused": out["refused"], "citations": out["citations"],
            "draft": result.draft, "support": out["support"], "dropped": result.dropped, "reason": result.reason,
            "timings": out["timings"], "variants": list(result.retrieval.variants),
            "hits": [hit_json(h) for h in result.retrieval.hits],
            "evidence": [{"doc": e.doc, "start": e.start, "end": e.end, "score": e.score, "norm": e.norm}
                         for e in result.evidence],
            "verdict": judge_answer(item, out, spans, rt.cfg.corpus)}


def combined_table(summaries: dict[str, dict]) -> str:
    """One line per suite: the figures that decide whether a change helps everywhere."""
    head = ["suite", "questions", "correct", "unanswerable refused", "answerable refused", "R@5",
            "unsupported numbers", "unsupported names", "quotes exact", "TTFT p50"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, summary in summaries.items():
        m, n = summary.get("all", {}), summary.get("counts", {})
        lines.append("| " + " | ".join(str(x) for x in [
            name, m.get("questions", 0), f"{n.get('correct', '–')}/{n.get('answerable', 0)}",
            f"{n.get('refused_unanswerable', '–')}/{n.get('unanswerable', 0)}",
            f"{n.get('refused_answerable', '–')}/{n.get('answerable', 0)}", m.get("R@5", "–"),
            m.get("unsupported_numbers", "–"), m.get("unsupported_names", "–"), m.get("quote_exact", "–"),
            m.get("ttft_p50_s", "–")]) + " |")
    return "\n".join(lines) + "\n"


def counts(rows: list[dict]) -> dict:
    """Raw counts beside the rates, so a table reads "85/100" rather than "0.85"."""
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    out = {"answerable": len(ans), "unanswerable": len(una), "errors": sum("error" in r for r in rows)}
    if any("verdict" in r for r in rows):
        out.update({"correct": sum(r["verdict"]["correct"] for r in ans),
                    "refused_unanswerable": sum(r["verdict"]["refused"] for r in una),
                    "refused_answerable": sum(r["verdict"]["refused"] for r in ans)})
    return out


def failures(rows: list[dict]) -> str:
    """Markdown list of every question not answered right, with what the product said and why."""
    out = []
    for r in rows:
        wrong = ("verdict" in r and not r["verdict"]["correct"]) or ("verdict" not in r and r["answerable"]
                                                                    and not (r["rank"] and r["rank"] <= 5))
        if not wrong and "error" not in r:
            continue
        out.append(f"- **{r['id']}** ({r['kind']}, rank {r['rank']}) {r['q']}\n  facts {r.get('facts')}; "
                   f"answer: {r.get('answer', '')!r}; reason: {r.get('reason', '')}; error: {r.get('error', '')}")
    return "\n".join(out) + "\n"


def write_report(rows: list[dict], summary: dict, meta: dict, run_folder: Path, name: str = "") -> Path:
    """report.json, report.md, failures.md and plots in the run's folder (<out>/<timestamp>), or in its
    <name> subfolder for one suite of several."""
    folder = run_folder / name if name else run_folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps({"meta": meta, "summary": summary, "questions": rows},
                                                   ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "report.md").write_text(markdown(summary, meta), encoding="utf-8")
    (folder / "failures.md").write_text(failures(rows), encoding="utf-8")
    plot(rows, summary, folder)
    return folder


def markdown(summary: dict, meta: dict) -> str:
    cols = sorted({k for name, v in summary.items() if name != "counts" for k in v}, key=_col_order)
    lines = [f"# Evaluation {meta.get('started', '')}", "",
             f"QA set `{meta.get('qa')}`, corpus `{meta.get('corpus')}`, model `{meta.get('model')}`, "
             f"retrieval only: {meta.get('retrieval_only')}", "",
             "| group | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in summary.items():
        if name == "counts":
            continue
        lines.append(f"| {name} | " + " | ".join(str(m.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


_ORDER = ["questions", "n", "R@1", "R@3", "R@5", "MRR", "answer_correct", "cited_evidence", "citation_precision",
          "quote_exact", "refusal_recall", "refusal_precision", "answerable_refused", "unsupported_numbers",
          "unsupported_names"]


def _col_order(col: str) -> tuple[int, str]:
    return (_ORDER.index(col) if col in _ORDER else len(_ORDER), col)


def plot(rows: list[dict], summary: dict, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranks = [r["rank"] for r in rows if r["answerable"]]
    ks = list(range(1, 11))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for kind in ["all", *KINDS[:-1]]:
        sel = [r["rank"] for r in rows if r["answerable"] and (kind == "all" or r["kind"] == kind)]
        if sel:
            ax.plot(ks, [sum(1 for x in sel if x and x <= k) / len(sel) for k in ks], marker="o", label=kind)
    ax.set(xlabel="k", ylabel="recall@k", title=f"Recall@k ({len(ranks)} answerable)", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "recall_at_k.png", dpi=120)
    plt.close(fig)

    kinds = [k for k in KINDS if k in summary]
    metric = "answer_correct" if any("answer_correct" in summary[k] for k in kinds) else "R@5"
    values = [summary[k].get(metric if k != "unanswerable" else "refusal_recall", 0) or 0 for k in kinds]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(kinds, values, color="#4a7ab0")
    ax.set(ylabel=f"{metric} (unanswerable: refusal recall)", ylim=(0, 1.05), title="Per-kind accuracy")
    for i, v in enumerate(values):
        ax.text(i, v + 0.02, f"{v:.2f}", ha="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "per_kind.png", dpi=120)
    plt.close(fig)

    latency = [r["timings"].get("total_s", r["timings"].get("retrieval_s", 0)) for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(latency, bins=20, color="#b0704a")
    ax.set(xlabel="seconds per question", ylabel="questions",
           title=f"Latency (p50 {statistics.median(latency):.2f} s)" if latency else "Latency")
    fig.tight_layout()
    fig.savefig(folder / "latency.png", dpi=120)
    plt.close(fig)


def compare(a: Path, b: Path) -> str:
    sa = json.loads((a / "report.json").read_text(encoding="utf-8"))["summary"]
    sb = json.loads((b / "report.json").read_text(encoding="utf-8"))["summary"]
    lines = [f"{'group':14} {'metric':22} {a.name:>16} {b.name:>16} {'delta':>8}"]
    for group in sa:
        if group not in sb:
            continue
        for metric in sorted(set(sa[group]) | set(sb[group]), key=_col_order):
            x, y = sa[group].get(metric), sb[group].get(metric)
            if isinstance(x, int | float) and isinstance(y, int | float) and x != y:
                lines.append(f"{group:14} {metric:22} {x:>16} {y:>16} {y - x:>+8.3f}")
    return "\n".join(lines) if len(lines) > 1 else "no differences"
