import io
import zipfile
from pathlib import Path

import docx
import pytest

from rag.load import LoadError, read_raw, read_text

PROJECT = Path(__file__).resolve().parent.parent


def test_txt_is_read_as_is(tmp_path: Path):
    p = tmp_path / "a.txt"
    p.write_text("第一行\r\n第二行", encoding="utf-8", newline="")
    assert read_raw(p) == open(p, encoding="utf-8").read()


@pytest.mark.parametrize("name,data,why", [
    ("empty.txt", b"", "empty"),
    ("binary.txt", bytes(range(256)) * 4, "binary"),
    ("latin1.txt", "Société générale à Genève, créée en 1998.".encode("latin-1"), "not valid utf-8"),
    ("cp1251.txt", "Министерство экологии сообщило о проверке.".encode("cp1251"), "not valid utf-8"),
    ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog", "pdf"),
    ("broken.docx", b"PK\x03\x04 truncated", "docx"),
])
def test_bad_files_give_one_line_reasons(tmp_path: Path, name, data, why):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(LoadError) as err:
        read_raw(p)
    message = str(err.value)
    assert name in message and "\n" not in message and why in message.lower()


def test_docx_and_html_extracted(tmp_path: Path):
    d = docx.Document()
    d.add_paragraph("松岭市新增绿道36公里。")
    d.save(tmp_path / "a.docx")
    assert "绿道36公里" in read_raw(tmp_path / "a.docx")
    (tmp_path / "b.html").write_text("<html><script>x=1</script><p>湿地1500亩</p></html>", encoding="utf-8")
    assert read_raw(tmp_path / "b.html").strip() == "湿地1500亩"


def test_truncated_docx_zip(tmp_path: Path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", "<w:document>")
    (tmp_path / "t.docx").write_bytes(buf.getvalue()[:40])
    with pytest.raises(LoadError):
        read_raw(tmp_path / "t.docx")


@pytest.mark.parametrize("name,text,encoding", [
    ("gbk.txt", "绿色发展示范区建设", "gb18030"),
    ("big5.txt", "綠色發展示範區", "big5"),
    ("crlf.txt", "第一行\r\n第二行：青禾县河长212名。\r\n", "gb18030"),
])
def test_legacy_encodings_are_read(tmp_path: Path, name, text, encoding):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    assert read_text(p) == (text.replace("\r\n", "\n"), encoding)


def test_real_text_in_either_legacy_encoding_reads_back_exactly(tmp_path: Path):
    """Every corpus and fixture document, as GB18030 and (in Traditional script) as Big5: the right encoding
    is found and the text comes back character for character (Big5 bytes also decode as GB18030)."""
    import opencc

    s2t = opencc.OpenCC("s2t")
    sources = [*(PROJECT / "corpus").iterdir(), *(PROJECT / "tests" / "fixtures" / "corpus").iterdir()]
    for source in sources:
        text = source.read_text(encoding="utf-8")
        for encoding, variant in (("gb18030", text), ("big5", s2t.convert(text))):
            variant = variant.encode(encoding, errors="replace").decode(encoding)  # what Big5 can hold
            p = tmp_path / f"{source.stem}-{encoding}.txt"
            p.write_bytes(variant.encode(encoding))
            assert read_text(p) == (variant, encoding), (source.name, encoding)
