"""A hostile input folder: every bad file gets its own error with a reason, the build finishes, the good
files are all kept, and memory stays bounded (peak RSS printed; run with -s to see it).

The files are made on the fly and stay small on disk: the bombs are a few hundred KB compressed, and
the 2 GiB single-line JSONL is a sparse file (truncate), refused by its size before anything is read.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from wattlm.data import DataConfig
from wattlm.data.document import Document
from wattlm.data.pipeline import build_corpus
from wattlm.data.readers.base import BaseReader
from wattlm.data.readers.limits import FileRefused, ReadLimits
from wattlm.data.readers.office import DocxReader, check_zip
from wattlm.data.readers.source import FileSource, list_input_files

from ..helpers import sentence, write
from .test_office import docx_bytes

MiB = 2**20
GOOD = {f"good{i}.txt": "\n".join(sentence(i * 5 + k) for k in range(5)) for i in range(3)}


def zeros_deflated(n_mib: int) -> bytes:
    """`n_mib` MiB of zeros, deflated in a stream (never held uncompressed)."""
    packer, chunk = zlib.compressobj(9), bytes(MiB)
    return b"".join(packer.compress(chunk) for _ in range(n_mib)) + packer.flush()


def docx_bomb(n_mib: int) -> bytes:
    """A real DOCX plus one member that inflates to `n_mib` MiB of zeros (~1000x)."""
    buffer = io.BytesIO(docx_bytes(["A real paragraph."], [["a", "b"]]))
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("word/media/bomb.bin", "w", force_zip64=True) as member:
            for _ in range(n_mib):
                member.write(bytes(MiB))
    return buffer.getvalue()


def pdf_stream_bomb(n_mib: int) -> bytes:
    """A one-page PDF whose content stream is FlateDecode of `n_mib` MiB of zeros."""
    stream = zeros_deflated(n_mib)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def hostile_folder(root: Path) -> Path:
    raw = root / "raw"
    for name, text in GOOD.items():
        write(raw / name, text)
    (raw / "bomb.docx").write_bytes(docx_bomb(64))
    (raw / "bomb.pdf").write_bytes(pdf_stream_bomb(100))  # pypdf stops at 75 MB per stream
    with open(raw / "huge.jsonl", "wb") as handle:  # 2 GiB, one line, sparse: a few KB on disk
        handle.write(b'{"text": "')
        handle.truncate(2 * 2**30)
    (raw / "passwd.txt").symlink_to("/etc/passwd")
    os.mkfifo(raw / "pipe.txt")
    (raw / "inside.md").symlink_to(raw / "good0.txt")  # a link within the folder is fine (same file: read once)
    return raw


EXPECTED_REASONS = {"bomb.docx": "zip_bomb", "bomb.pdf": "stream_too_large", "huge.jsonl": "too_large",
                    "passwd.txt": "symlink_outside_input", "pipe.txt": "not_regular_file"}


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (KiB there), in MiB."""
    status = Path("/proc/self/status").read_text()
    return int(next(row for row in status.splitlines() if row.startswith(field + ":")).split()[1]) / 1024


def _reset_peak_rss() -> float:
    """Start this process's peak RSS afresh (Linux: writing 5 to clear_refs resets VmHWM to the current
    RSS) and return that RSS: what earlier tests in the same pytest process still hold is not the build's."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def _peak_rss_mib() -> float:
    """This process's peak RSS since `_reset_peak_rss` (VmHWM). With workers=1 the whole build runs here;
    forkserver workers are not our children, so their peak is not visible from here."""
    return _status_mib("VmHWM")


@pytest.mark.parametrize("workers", [1, 2])
def test_hostile_corpus_fails_file_by_file_and_keeps_the_rest(tmp_path, workers):
    raw = hostile_folder(tmp_path)
    config = DataConfig(workers=workers, steps=[])
    before_mib = _reset_peak_rss()
    started = time.perf_counter()
    report = build_corpus([raw], tmp_path / "out", config, progress=False)
    seconds = time.perf_counter() - started
    grown_mib = _peak_rss_mib() - before_mib
    print(f"\nhostile corpus, workers={workers}: {seconds:.1f} s, peak RSS of the test process {grown_mib:.0f} MiB "
          f"above the {before_mib:.0f} MiB it held before the build "
          "(2-core machine shared with other jobs: figures indicative)")
    reasons = {error.file: error.reason for error in report.errors}
    assert reasons == EXPECTED_REASONS
    assert report.files_failed == len(EXPECTED_REASONS)
    assert all(error.error and "\n" not in error.error for error in report.errors)
    assert report.docs_kept == len(GOOD)  # nothing good lost
    # The 2 GiB file was never read: the build's peak stays far below it.
    assert grown_mib < 1024


def test_size_cap_setting_refuses_a_file_before_reading(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "small.txt", GOOD["good0.txt"])
    write(raw / "big.txt", "x" * 5000)
    config = DataConfig(steps=[], limits=ReadLimits(max_file_bytes=4096))
    report = build_corpus([raw], tmp_path / "out", config, progress=False)
    assert [(e.file, e.reason) for e in report.errors] == [("big.txt", "too_large")]
    assert "limit max_file_bytes=4096" in report.errors[0].error
    assert report.docs_kept == 1


def test_zip_checks_declared_and_real_sizes():
    legit = docx_bytes(["Paragraph."], [["a"]])
    check_zip(legit, ReadLimits())  # a real DOCX passes
    with pytest.raises(FileRefused) as refused:
        check_zip(legit, ReadLimits(max_unzipped_bytes=1000))
    assert refused.value.reason == "zip_too_large"
    with pytest.raises(FileRefused) as refused:
        check_zip(legit, ReadLimits(max_zip_members=2))
    assert refused.value.reason == "zip_bomb"
    # A bomb under the ratio limit still stops at the total, counted while decompressing.
    bomb = docx_bomb(8)
    with pytest.raises(FileRefused) as refused:
        list(DocxReader(ReadLimits(max_zip_ratio=10_000, max_unzipped_bytes=4 * MiB)).read_bytes(bomb, "b.docx"))
    assert refused.value.reason == "zip_too_large"


class SpinningReader(BaseReader):
    """A parser stuck in a loop on one file (pure Python, as pypdf is)."""

    extensions = (".spin",)

    def read(self, text: str, source: str) -> Iterator[Document]:
        while text != "never":
            pass
        yield self._doc(text, source)


def test_time_limit_stops_one_file_and_the_next_is_read(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "a.spin", "stuck")
    write(raw / "b.txt", GOOD["good1.txt"])
    source = FileSource(list_input_files([raw]), limits=ReadLimits(file_timeout_s=0.3))
    source.readers[".spin"] = SpinningReader()
    docs = list(source.run())
    assert [doc.source for doc in docs] == ["b.txt"]
    assert [(e.file, e.reason) for e in source.errors] == [("a.spin", "timeout")]
    assert "limit file_timeout_s" in source.errors[0].error


def test_a_line_longer_than_the_cap_fails_its_piece_and_earlier_pieces_are_read(tmp_path):
    """A JSONL cut into pieces: the search for a line end stops at the cap, so the over-long rest is one
    refused piece; the records before it are kept."""
    raw = tmp_path / "raw"
    raw.mkdir()
    records = "".join(json.dumps({"text": f"{GOOD['good0.txt']} {i}"}, ensure_ascii=False) + "\n" for i in range(40))
    with open(raw / "mixed.jsonl", "w", encoding="utf-8") as handle:
        handle.write(records + '{"text": "' + "x" * 20_000 + '"}\n' + records)
    config = DataConfig(steps=[], split_bytes=1024, limits=ReadLimits(max_file_bytes=8192))
    report = build_corpus([raw], tmp_path / "out", config, progress=False)
    assert [e.reason for e in report.errors] == ["too_large"]
    assert report.errors[0].error.endswith(")") and "(bytes " in report.errors[0].error
    # The earlier pieces' records are kept (all or most of the 40 before the long line: the refused piece
    # starts at a piece boundary); what follows the long line goes with the refused piece.
    assert 30 <= report.docs_in <= 40
