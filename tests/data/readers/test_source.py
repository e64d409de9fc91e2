import pytest

from wattlm.data.readers.source import FileSource, list_input_files
from wattlm.errors import NotFound

from ..helpers import write


def test_files_are_sorted_relative_and_hidden_ones_skipped(tmp_path):
    root = tmp_path / "raw"
    for name in ["b.txt", "a/z.md", "a/c.txt", ".git/config", ".DS_Store", "a/.hidden.txt"]:
        write(root / name, "x")
    files = list_input_files([root])
    assert [f.source for f in files] == ["a/c.txt", "a/z.md", "b.txt"]


def test_single_file_input_uses_its_name(tmp_path):
    path = write(tmp_path / "deep" / "one.txt", "x")
    assert [f.source for f in list_input_files([path])] == ["one.txt"]


def test_same_relative_path_in_two_inputs_gets_distinct_sources(tmp_path):
    write(tmp_path / "a" / "x.txt", "1")
    write(tmp_path / "b" / "x.txt", "2")
    sources = [f.source for f in list_input_files([tmp_path / "a", tmp_path / "b"])]
    assert sources == ["x.txt", "b/x.txt"]


def test_output_folder_inside_input_is_not_read(tmp_path):
    write(tmp_path / "doc.txt", "x")
    write(tmp_path / "out" / "train" / "shard-00000.jsonl", '{"text": "x"}\n')
    assert [f.source for f in list_input_files([tmp_path], exclude=tmp_path / "out")] == ["doc.txt"]


def test_missing_input_raises_not_found(tmp_path):
    with pytest.raises(NotFound, match="input not found: .*nope"):
        list_input_files([tmp_path / "nope"])


def test_source_counts_encodings_errors_and_unsupported(tmp_path):
    root = tmp_path / "raw"
    write(root / "gbk.txt", "国家电网公司输电线路运行维护管理规定", "gbk")
    write(root / "big5.txt", "台灣電力公司輸電線路運行維護管理規定", "big5")
    write(root / "utf8.md", "# 标题\n正文")
    (root / "empty.txt").write_bytes(b"")
    (root / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(root / "slides.pptx", "not supported")
    write(root / "bad.jsonl", '{"text": "好"}\n{oops\n')
    write(root / "nocol.csv", "a,b\n1,2\n")
    source = FileSource(list_input_files([root]))
    docs = {doc.source: doc for doc in source.run()}

    assert docs["gbk.txt"].text == "国家电网公司输电线路运行维护管理规定"
    assert docs["big5.txt"].text == "台灣電力公司輸電線路運行維護管理規定"
    assert docs["gbk.txt"].meta["encoding"] == "gb18030"
    assert docs["big5.txt"].meta["encoding"] == "big5"
    assert set(docs) == {"gbk.txt", "big5.txt", "utf8.md", "bad.jsonl#1"}
    assert source.files_seen == 8
    assert source.files_failed == 3  # empty, binary, csv without the column
    assert source.skipped == {"unsupported_type": 1}
    assert source.encodings == {"gb18030": 1, "big5": 1, "utf-8": 3}
    errors = {(e.file, e.error) for e in source.errors}
    assert ("empty.txt", "empty file") in errors
    assert ("image.txt", "binary file (contains NUL bytes)") in errors
    assert ("nocol.csv", "no column 'text' (columns: a, b)") in errors
    assert any(f == "bad.jsonl" and e.startswith("line 2: invalid JSON") for f, e in errors)
