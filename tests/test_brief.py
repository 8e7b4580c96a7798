import docx

from rag.brief import to_docx, to_json, to_markdown, write_briefing
from rag.cite import numbers_in, strip_markers
from rag.clean import normalize_query


def test_briefing_cites_several_documents_exactly(runtime, tmp_path):
    b = write_briefing(runtime, "各地如何推进生态治理？", docs=3, progress=False)
    assert len({s.doc for s in b.sections}) >= 2
    for c in b.sources:
        assert (runtime.cfg.corpus / c.doc).read_text(encoding="utf-8")[c.start:c.end] == c.quote
    for s in b.sections:
        cited = " ".join(normalize_query(c.quote) for c in s.citations)
        assert numbers_in(normalize_query(strip_markers(s.text))) <= numbers_in(cited)
        assert "[" in s.text
    md = to_markdown(b)
    assert md.startswith("# ") and "## Sources" in md
    to_docx(b, tmp_path / "b.docx")
    headings = [p.text for p in docx.Document(str(tmp_path / "b.docx")).paragraphs if p.style.name.startswith("Heading")]
    assert headings == [s.heading for s in b.sections] + ["Sources"]
    assert to_json(b)["sections"][0]["citations"]
