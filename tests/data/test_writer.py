import json

from wattlm.data.document import Document
from wattlm.data.writer import atomic_write_text, write_shards


def test_atomic_write_leaves_no_temp(tmp_path):
    atomic_write_text(tmp_path / "sub" / "f.json", "{}\n")
    atomic_write_text(tmp_path / "sub" / "f.json", '{"a": 1}\n')
    assert (tmp_path / "sub" / "f.json").read_text() == '{"a": 1}\n'
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.json"]


def test_shards_split_and_stale_ones_removed(tmp_path):
    docs = [Document(f"id{i}", f"文本{i}", f"{i}.txt", {"lang": "zh"}) for i in range(5)]
    folder = tmp_path / "train"
    write_shards(docs, folder, shard_docs=2)
    assert sorted(p.name for p in folder.iterdir()) == ["shard-00000.jsonl", "shard-00001.jsonl", "shard-00002.jsonl"]
    lines = (folder / "shard-00000.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[0] == '{"id": "id0", "text": "文本0", "source": "0.txt", "lang": "zh", "chars": 3}'
    write_shards(docs[:3], folder, shard_docs=2)
    assert sorted(p.name for p in folder.iterdir()) == ["shard-00000.jsonl", "shard-00001.jsonl"]
    assert [json.loads(line)["id"] for line in (folder / "shard-00001.jsonl").read_text().splitlines()] == ["id2"]


def test_failed_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    atomic_write_text(target, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("wattlm.data.writer.os.replace", broken_replace)
    try:
        atomic_write_text(target, "new\n")
    except OSError:
        pass
    else:
        raise AssertionError("the write should have failed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
