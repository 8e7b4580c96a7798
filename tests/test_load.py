import io
import zipfile
from pathlib import Path

import docx
import pytest

from rag.load import LoadError, read_raw


def test_txt_is_read_as_is(tmp_path: Path):
    p = tmp_path / "a.txt"
    p.write_text("第一行\r\n第二行", encoding="utf-8", newline="")
    assert read_raw(p) == open(p, encoding="utf-8").read()


@pytest.mark.parametrize("name,data,why", [
    ("empty.txt", b"", "empty"),
    ("binary.txt", bytes(range(256)) * 4, "binary"),
    ("gbk.txt", "绿色发展示范区建设".encode("gbk"), "gb18030"),
    ("big5.txt", "綠色發展示範區".encode("big5"), "big5"),
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
