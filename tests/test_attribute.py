from rag.attribute import core, document_view, is_about, question_names
from rag.chunk import chunk_document
from rag.load import Document

# One report, one section per county; each county is named once, at the top of its section.
REPORT = (
    "县域调研报告\n"
    "我们调研了青川县、平武县、北川县三地的生态建设。\n"
    "一是青川县推进能源转型。全县新建光伏电站2座。清洁能源占比达50%。\n"
    "二是平武县加强林业保护。森林覆盖率达80%。\n"
    "三是完善基础设施,全县新建公园3个。\n"
)


def spans(text: str) -> dict[str, tuple[int, int]]:
    return {s: (REPORT.index(s), REPORT.index(s) + len(s)) for s in
            ("清洁能源占比达50%。", "森林覆盖率达80%。", "全县新建公园3个。", "一是青川县推进能源转型。")}


def view():
    chunks = chunk_document(Document("report.txt", REPORT, "x"), size=40, overlap=10)
    return document_view(chunks)


def test_question_names_are_place_cores_not_common_words():
    assert question_names("青川县的清洁能源占比是多少?") == {"青川": True}
    assert question_names("为了美丽城市建设,北川县新建了什么?") == {"北川": True}
    assert question_names("清洁能源占比是多少?") == {}
    assert question_names("") == {}
    assert question_names("🌳 Qingchuan 青川县?") == {"青川": True}
    assert core("荥经县") == "荥经" and core("县") == "县"


def test_rivals_come_from_lists_of_names():
    assert view().rivals("青川") == {"平武", "北川"}
    assert document_view(chunk_document(Document("a.txt", "我们调研了青川县的生态建设。", "x"), 40, 10)).rivals("青川") == set()


def test_a_sentence_belongs_to_the_nearest_named_place_before_it():
    v, where = view(), spans(REPORT)
    assert is_about("青川", v, *where["清洁能源占比达50%。"])
    assert not is_about("平武", v, *where["清洁能源占比达50%。"])
    assert is_about("平武", v, *where["森林覆盖率达80%。"])
    assert not is_about("青川", v, *where["森林覆盖率达80%。"])
    # No place named in its own section: read back past the list in the introduction to 平武's section.
    assert is_about("平武", v, *where["全县新建公园3个。"])
    assert not is_about("北川", v, *where["全县新建公园3个。"])


def test_names_the_document_never_mentions_and_questions_without_names():
    v, where = view(), spans(REPORT)
    assert not is_about("江油", v, *where["清洁能源占比达50%。"])
    assert is_about("江油", v, *where["清洁能源占比达50%。"], sure=False)  # maybe a common word, mis-tagged
    assert is_about("", v, *where["清洁能源占比达50%。"])
    assert is_about("青川", v, *where["一是青川县推进能源转型。"])
