import json

import pytest

from wattlm.errors import NotFound, WattError
from wattlm.shared.records import (
    atomic_write_jsonl,
    atomic_write_text,
    jsonl_records,
    parse_jsonl,
    read_records,
    record_files,
)


def test_atomic_write_leaves_no_temp(tmp_path):
    atomic_write_text(tmp_path / "sub" / "f.json", "{}\n")
    atomic_write_text(tmp_path / "sub" / "f.json", '{"a": 1}\n')
    assert (tmp_path / "sub" / "f.json").read_text() == '{"a": 1}\n'
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.json"]


def test_failed_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    atomic_write_text(target, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("wattlm.shared.records.os.replace", broken_replace)
    try:
        atomic_write_text(target, "new\n")
    except OSError:
        pass
    else:
        raise AssertionError("the write should have failed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_parse_jsonl_numbers_lines_and_reports_bad_ones_without_stopping():
    lines = list(parse_jsonl('{"a": 1}\n\nnope\n{"b": "\u2028"}\n', first_line=10))
    assert [(line.number, line.value) for line in lines if line.error is None] == [(10, {"a": 1}), (13, {"b": "\u2028"})]
    assert lines[1].number == 12 and lines[1].error.startswith("invalid JSON")


def test_a_bad_line_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n\n[1]\n', encoding="utf-8")
    with pytest.raises(WattError, match=r"bad\.jsonl: line 3: expected a JSON object"):
        list(jsonl_records(bad))
    bad.write_text('{"text": "a"}\n{"id": 1}\n', encoding="utf-8")
    with pytest.raises(WattError, match=r"bad\.jsonl: line 2: no field 'text'"):
        list(jsonl_records(bad, fields=("text",)))
    bad.write_text('{"text": "a"}\n{oops\n', encoding="utf-8")
    with pytest.raises(WattError, match=r"bad\.jsonl: line 2: invalid JSON"):
        list(read_records(bad))


def test_jsonl_and_parquet_shards_read_alike_in_name_order(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    atomic_write_jsonl(tmp_path / "shard-00000.jsonl", [{"id": "a", "text": "甲"}])
    pq.write_table(pa.Table.from_pylist([{"id": "b", "text": "乙", "lang": "zh"}]), tmp_path / "shard-00001.parquet")
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / ".shard-00002.jsonl.x.tmp").write_text("half a line")
    assert [r["id"] for r in read_records(tmp_path)] == ["a", "b"]
    assert [r["text"] for r in read_records(tmp_path, fields=("text",), pattern="shard-*")] == ["甲", "乙"]
    assert list(read_records(tmp_path / "shard-00001.parquet", fields=("text",))) == [{"text": "乙"}]  # only those columns
    with pytest.raises(WattError, match=r"shard-00001\.parquet: no column 'source'"):
        list(read_records(tmp_path / "shard-00001.parquet", fields=("source",)))
    (tmp_path / "shard-00003.parquet").write_text("not parquet")
    with pytest.raises(WattError, match="cannot read"):
        list(read_records(tmp_path))


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(NotFound):
        record_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="no record files"):
        record_files(tmp_path / "empty", "shard-*")
    assert record_files(tmp_path / "empty", allow_empty=True) == []


def test_jsonl_writer_keeps_non_ascii_and_one_record_a_line(tmp_path):
    atomic_write_jsonl(tmp_path / "x.jsonl", [{"text": "变压器"}, {"text": "b"}])
    assert (tmp_path / "x.jsonl").read_text(encoding="utf-8") == '{"text": "变压器"}\n{"text": "b"}\n'
    assert [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()] == [{"text": "变压器"}, {"text": "b"}]
