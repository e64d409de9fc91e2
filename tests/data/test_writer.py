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


def test_front_matter_fields_in_jsonl_and_parquet(tmp_path):
    import pyarrow.parquet as pq

    docs = [Document("a", "正文一", "a.md", {"lang": "zh", "title": "标题", "categories": ["运维", "变压器"]}),
            Document("b", "正文二", "b.txt", {"lang": "zh"})]
    write_shards(docs, tmp_path / "jsonl", shard_docs=1)
    records = [json.loads((tmp_path / "jsonl" / f"shard-0000{i}.jsonl").read_text()) for i in range(2)]
    assert records[0]["title"] == "标题" and records[0]["categories"] == "运维, 变压器"
    assert records[1]["title"] == "" and records[1]["categories"] == ""  # one schema for every shard
    write_shards(docs, tmp_path / "pq", shard_docs=1, fmt="parquet")
    for i, title in enumerate(["标题", ""]):  # every shard of a split has the same columns
        table = pq.read_table(tmp_path / "pq" / f"shard-0000{i}.parquet")
        assert table.column_names == ["id", "text", "source", "lang", "chars", "title", "categories"]
        assert table.column("title").to_pylist() == [title]
    write_shards(docs[1:], tmp_path / "plain", shard_docs=1, fmt="parquet")
    assert pq.read_table(tmp_path / "plain" / "shard-00000.parquet").column_names == [
        "id", "text", "source", "lang", "chars"]
