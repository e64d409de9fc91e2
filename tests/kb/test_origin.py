import pytest

from wattlm.errors import WattError
from wattlm.kb.origin import document_meta, sidecar_files, split_source


def test_front_matter_gives_title_and_validity(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("---\ntitle: 旧规程\neffective: 2020-01-01\nsuperseded_by: b.md\nauthor: x\n---\n正文", "utf-8")
    assert document_meta(doc) == {"title": "旧规程", "effective": "2020-01-01", "superseded_by": "b.md"}


def test_a_sidecar_wins_over_front_matter(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("---\ntitle: 旧\n---\n正文", "utf-8")
    (tmp_path / "a.md.meta.json").write_text('{"title": "新", "superseded_by": "c.md"}', "utf-8")
    assert document_meta(doc) == {"title": "新", "superseded_by": "c.md"}
    assert sidecar_files([tmp_path]) == [tmp_path / "a.md.meta.json"]


def test_jsonl_record_fields(tmp_path):
    doc = tmp_path / "rules.jsonl"
    doc.write_text('{"text": "a"}\n{"text": "b", "superseded_by": "rules.jsonl#1", "effective": "2019"}\n', "utf-8")
    assert document_meta(doc, 2) == {"superseded_by": "rules.jsonl#1", "effective": "2019"}
    assert document_meta(doc, 1) == {}


def test_a_broken_sidecar_is_a_one_line_error_naming_it(tmp_path):
    doc = tmp_path / "a.txt"
    doc.write_text("正文", "utf-8")
    (tmp_path / "a.txt.meta.json").write_text("{oops", "utf-8")
    with pytest.raises(WattError, match="a.txt.meta.json"):
        document_meta(doc)


def test_split_source():
    assert split_source("dir/f.jsonl#12") == ("dir/f.jsonl", 12)
    assert split_source("f.txt@4096") == ("f.txt", None)
    assert split_source("plain.md") == ("plain.md", None)
