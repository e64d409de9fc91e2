import json

from wattlm.data.document import Document
from wattlm.data.writer import write_shards


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
