import docx
import pytest

from rag.brief import section_heading, to_docx, to_json, to_markdown, write_briefing
from rag.cite import numbers_in, strip_markers
from rag.clean import TONE_VOWELS, normalize_query


def test_briefing_cites_several_documents_exactly(runtime, tmp_path):
    b = write_briefing(runtime, "各地如何推进生态治理？", docs=3, progress=False)
    assert len({s.doc for s in b.sections}) >= 2
    for c in b.sources:
        assert (runtime.cfg.corpus / c.doc).read_text(encoding="utf-8")[c.start:c.end] == c.quote
    for s in b.sections:
        cited = " ".join(normalize_query(c.quote) for c in s.citations)
        assert numbers_in(normalize_query(strip_markers(s.text))) <= numbers_in(cited)
        assert "[" in s.text
        assert s.heading and not set(s.heading) & set(TONE_VOWELS + "()"), s.heading
    md = to_markdown(b)
    assert md.startswith("# ") and "## Sources" in md
    to_docx(b, tmp_path / "b.docx")
    headings = [p.text for p in docx.Document(str(tmp_path / "b.docx")).paragraphs if p.style.name.startswith("Heading")]
    assert headings == [s.heading for s in b.sections] + ["Sources"]
    assert to_json(b)["sections"][0]["citations"]


@pytest.mark.parametrize(
    ("title", "heading"),
    [
        ("", "river.txt"),  # no title at all: the file name
        ("  \n ", "river.txt"),
        ("🎉🎉", "river.txt"),  # nothing left once decoration goes
        ("開雲真人 官網", "river.txt"),  # only gambling spam
        ("松嶺(lǐng)市發(fā)展生態(tài)旅遊", "松嶺市發展生態旅遊"),  # pinyin goes, Traditional stays
        ("建設(shè)", "建設"),
        ("連日來,生態(tài)城黨委當(dāng", "連日來,生態城黨委當"),  # cut inside an annotation
        ("崇州市等15个县(市)试点", "崇州市等15个县(市)试点"),  # real parentheses survive
        ("🔥青禾县推进河道治理👍🏻 ❤️", "青禾县推进河道治理"),
        ("2023年Smart City智慧城市建設(shè)報告", "2023年Smart City智慧城市建設報告"),
        ("青禾县推进河道治理 【字体:大 中 小】", "青禾县推进河道治理"),  # page furniture
        ("天氣預(yù)報(bào)\n走綠色轉(zhuǎn)型", "走綠色轉型"),
        ("深化改革举措 推动绿色发展", "深化改革举措 推动绿色发展"),  # the source's own spacing
        ("  — 标题 —  ", "标题"),
    ],
)
def test_section_heading_is_clean(title, heading):
    assert section_heading(title, "river.txt") == heading


def test_long_first_sentence_heading_is_shortened():
    long = "青禾县推进河道治理和污水管网建设,完成清淤河道128公里,建成污水处理厂4座,日处理能力达到5万吨"
    assert section_heading(long, "a.txt") == "青禾县推进河道治理和污水管网建设"
    assert len(section_heading("连" * 80, "a.txt")) == 31
