"""Reading registered datasets back: corpus splits (JSONL or Parquet shards) and text sets."""

import pytest

from wattlm.datasets import dataset_records, dataset_texts, read_split_texts, read_texts
from wattlm.errors import NotFound, WattError
from wattlm.registry import Registry

from .data.helpers import write

SFT_EXAMPLES = [
    {"prompt": "What does a Buchholz relay protect?", "response": "An oil-filled transformer, against internal faults."},
    {"prompt": "Before grounding a line you must?", "response": "Verify that it is de-energised."},
]


def test_folder_of_mixed_files(tmp_path):
    write(tmp_path / "a.txt", "第一篇")
    write(tmp_path / "b.md", "---\ntitle: x\n---\n第二篇")
    write(tmp_path / "c" / "shard-00000.jsonl", '{"text": "第三篇"}\n{"text": "  "}\n{"text": "第四篇"}\n')
    write(tmp_path / "report.json", '{"docs_in": 3}')
    (tmp_path / "empty.txt").write_bytes(b"")
    write(tmp_path / "gbk.txt", "国标编码的第五篇", "gbk")
    assert list(read_texts(tmp_path)) == ["第一篇", "第二篇", "第三篇", "第四篇", "国标编码的第五篇"]


def test_single_file(tmp_path):
    assert list(read_texts(write(tmp_path / "x.jsonl", '{"text": "甲"}\n'))) == ["甲"]


def test_errors(tmp_path):
    with pytest.raises(NotFound, match="input not found"):
        list(read_texts(tmp_path / "missing"))
    with pytest.raises(WattError, match=r"bad\.jsonl: line 2: invalid JSON"):
        list(read_texts(write(tmp_path / "bad.jsonl", '{"text": "a"}\nnope\n')))
    with pytest.raises(WattError, match=r"nofield\.jsonl: line 1: no string field 'text'"):
        list(read_texts(write(tmp_path / "nofield.jsonl", '{"body": "a"}\n')))
    with pytest.raises(WattError, match="unsupported text file"):
        list(read_texts(write(tmp_path / "x.csv", "text\na\n")))
    (tmp_path / "none").mkdir()
    with pytest.raises(WattError, match="no texts found"):
        list(read_texts(tmp_path / "none"))


def test_parquet_files_and_split_folders(tmp_path):
    pytest.importorskip("pyarrow")
    from wattlm.data.document import Document
    from wattlm.data.writer import write_shards

    docs = [Document(f"id{i}", f"第{i}篇", f"{i}.txt", {"lang": "zh"}) for i in range(3)]
    write_shards(docs, tmp_path / "train", shard_docs=2, fmt="parquet")
    assert list(read_texts(tmp_path / "train")) == ["第0篇", "第1篇", "第2篇"]
    assert list(read_texts(tmp_path / "train" / "shard-00001.parquet")) == ["第2篇"]
    assert list(read_split_texts(tmp_path / "train")) == ["第0篇", "第1篇", "第2篇"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="no record files"):
        list(read_split_texts(tmp_path / "empty"))
    write(tmp_path / "bad" / "shard-00000.parquet", "not parquet")
    with pytest.raises(WattError, match="cannot read"):
        list(read_split_texts(tmp_path / "bad"))


def _corpus(registry: Registry, records: list[dict], fmt: str):
    """A corpus artifact whose train split is one shard in `fmt`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wattlm.shared.records import atomic_write_jsonl

    with registry.staging() as staged:
        shard = staged / "train" / f"shard-00000.{fmt}"
        shard.parent.mkdir()
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pylist(records), shard)
        else:
            atomic_write_jsonl(shard, records)
        return registry.register("dataset", f"corpus-{fmt}", staged=staged, format=fmt)


def test_records_and_texts_of_a_parquet_corpus_equal_the_jsonl_ones(tmp_path):
    pytest.importorskip("pyarrow")
    registry = Registry(tmp_path / "ws")
    texts = [{"id": "a", "text": "第一篇"}, {"id": "b", "text": "第二篇"}]
    jsonl, parquet = _corpus(registry, texts, "jsonl"), _corpus(registry, texts, "parquet")
    assert list(dataset_texts(parquet, "train")) == list(dataset_texts(jsonl, "train")) == ["第一篇", "第二篇"]
    assert list(dataset_records(parquet, "train")) == list(dataset_records(jsonl, "train")) == texts
    with pytest.raises(NotFound, match=r"corpus-parquet .* no JSONL or Parquet records for split 'heldout'"):
        list(dataset_records(parquet, "heldout"))


def test_sft_trains_on_a_parquet_corpus(tiny_model_dir, tmp_path):
    """Before the shared reader, sft read JSONL records only and failed on a Parquet corpus."""
    pytest.importorskip("pyarrow")
    from wattlm.models.store import add_model
    from wattlm.train.config import TrainConfig
    from wattlm.train.stage import train_model

    registry = Registry(tmp_path / "ws")
    parent = add_model(registry, str(tiny_model_dir), name="tiny")
    corpus = _corpus(registry, SFT_EXAMPLES, "parquet")
    config = TrainConfig(method="sft", chat_template="chatml", steps=2, seq_len=64, batch_size=2, warmup_steps=1,
                         bf16=False, save_every=0)
    model, reused = train_model(registry, parent, corpus, config, "tiny-sft", progress=False)
    assert not reused and model.tier == "industry" and model.metrics["train_loss_end"] > 0
