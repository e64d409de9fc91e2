import pytest

from wattlm.data.textset import iter_texts
from wattlm.errors import NotFound, WattError

from .helpers import write


def test_folder_of_mixed_files(tmp_path):
    write(tmp_path / "a.txt", "第一篇")
    write(tmp_path / "b.md", "---\ntitle: x\n---\n第二篇")
    write(tmp_path / "c" / "shard-00000.jsonl", '{"text": "第三篇"}\n{"text": "  "}\n{"text": "第四篇"}\n')
    write(tmp_path / "report.json", '{"docs_in": 3}')
    (tmp_path / "empty.txt").write_bytes(b"")
    write(tmp_path / "gbk.txt", "国标编码的第五篇", "gbk")
    assert list(iter_texts(tmp_path)) == ["第一篇", "第二篇", "第三篇", "第四篇", "国标编码的第五篇"]


def test_single_file(tmp_path):
    assert list(iter_texts(write(tmp_path / "x.jsonl", '{"text": "甲"}\n'))) == ["甲"]


def test_errors(tmp_path):
    with pytest.raises(NotFound, match="input not found"):
        list(iter_texts(tmp_path / "missing"))
    with pytest.raises(WattError, match=r"bad\.jsonl: line 2: invalid JSON"):
        list(iter_texts(write(tmp_path / "bad.jsonl", '{"text": "a"}\nnope\n')))
    with pytest.raises(WattError, match="unsupported text file"):
        list(iter_texts(write(tmp_path / "x.csv", "text\na\n")))
    (tmp_path / "none").mkdir()
    with pytest.raises(WattError, match="no texts found"):
        list(iter_texts(tmp_path / "none"))


def test_parquet_files_and_split_folders(tmp_path):
    pytest.importorskip("pyarrow")
    from wattlm.data.document import Document
    from wattlm.data.textset import read_split_texts
    from wattlm.data.writer import write_shards

    docs = [Document(f"id{i}", f"第{i}篇", f"{i}.txt", {"lang": "zh"}) for i in range(3)]
    write_shards(docs, tmp_path / "train", shard_docs=2, fmt="parquet")
    assert list(iter_texts(tmp_path / "train")) == ["第0篇", "第1篇", "第2篇"]
    assert list(iter_texts(tmp_path / "train" / "shard-00001.parquet")) == ["第2篇"]
    assert list(read_split_texts(tmp_path / "train")) == ["第0篇", "第1篇", "第2篇"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="no shards"):
        list(read_split_texts(tmp_path / "empty"))
    write(tmp_path / "bad" / "shard-00000.parquet", "not parquet")
    with pytest.raises(WattError, match="cannot read"):
        list(read_split_texts(tmp_path / "bad"))
