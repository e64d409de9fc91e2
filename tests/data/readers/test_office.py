import io

import pytest

from wattlm.data import DataConfig
from wattlm.data.pipeline import build_corpus
from wattlm.data.readers.base import ReadError
from wattlm.data.readers.office import DocxReader, PdfReader

from ..helpers import sentence, write


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with a Helvetica text layer, written by hand (no PDF writer needed)."""
    ops = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(ops)} >>\nstream\n{ops}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx_bytes(paragraphs: list[str], table: list[list[str]]) -> bytes:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    grid = document.add_table(rows=len(table), cols=len(table[0]))
    for r, row in enumerate(table):
        for c, cell in enumerate(row):
            grid.cell(r, c).text = cell
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_pdf_text_layer():
    [doc] = PdfReader().read_bytes(minimal_pdf(["Transformer oil test report.", "Dissolved gas is normal."]), "r.pdf")
    assert "Transformer oil test report." in doc.text and "Dissolved gas is normal." in doc.text
    assert doc.source == "r.pdf" and doc.meta["format"] == "text"


def test_corrupt_pdf_raises_read_error():
    with pytest.raises(ReadError, match="corrupt or unreadable PDF"):
        list(PdfReader().read_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog", "bad.pdf"))


def test_docx_paragraphs_and_tables():
    data = docx_bytes(["变电站巡视规程", sentence(1)], [["设备", "周期"], ["主变压器", "每日"]])
    [doc] = DocxReader().read_bytes(data, "rules.docx")
    assert doc.text == f"变电站巡视规程\n{sentence(1)}\n设备\t周期\n主变压器\t每日"
    with pytest.raises(ReadError, match="corrupt or unreadable DOCX"):
        list(DocxReader().read_bytes(b"PK\x03\x04 not really a zip", "bad.docx"))


def test_pipeline_reads_pdf_docx_and_counts_a_corrupt_pdf(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "report.pdf").write_bytes(minimal_pdf(["The annual maintenance report covers all feeders.",
                                                  "Every breaker was tested and found in good order."]))
    (raw / "rules.docx").write_bytes(docx_bytes(["变电站巡视规程", sentence(2)], [["设备", "周期"], ["主变", "每日"]]))
    (raw / "broken.pdf").write_bytes(b"%PDF-1.7\ngarbage that is not a PDF")
    (raw / "empty.docx").write_bytes(b"")
    write(raw / "note.txt", sentence(3))
    report = build_corpus([raw], tmp_path / "out", DataConfig(min_chars=20), progress=False)
    assert report.files_failed == 2
    errors = {e.file: e.error for e in report.errors}
    assert errors["broken.pdf"].startswith("corrupt or unreadable PDF")
    assert errors["empty.docx"] == "empty file"
    assert report.docs_kept == 3 and report.encodings == {"utf-8": 1}
