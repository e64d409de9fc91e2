"""The rag eval file a synthesis run writes: QA pairs of held-out documents only, with their source."""

import json
from types import SimpleNamespace

from wattlm.synth.chunking import Chunk
from wattlm.synth.parsing import Item
from wattlm.synth.rag import rag_rows, write_rag


def _candidate(doc_id: str, split: str, kind: str = "qa", question: str | None = "电压多少？"):
    chunk = Chunk(id=f"{doc_id}#0", doc_id=doc_id, index=0, text="母线电压为10千伏。", lang="zh", split=split)
    return SimpleNamespace(job=SimpleNamespace(chunk=chunk, kind=kind), item=Item(question, "10千伏"))


def test_only_held_out_qa_pairs_with_a_source_are_written(tmp_path):
    for split, rows in {"train": [{"id": "t1", "text": "x", "source": "train_doc.md"}],
                        "heldout": [{"id": "h1", "text": "x", "source": "grid/rules.md"},
                                    {"id": "h2", "text": "x"}]}.items():
        (tmp_path / split).mkdir()
        (tmp_path / split / "shard-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = SimpleNamespace(format="jsonl", path=tmp_path)
    candidates = [_candidate("t1", "train"), _candidate("h1", "heldout"), _candidate("h2", "heldout"),
                  _candidate("h1", "heldout", kind="summary", question=None)]
    assert rag_rows(corpus, candidates) == [{"question": "电压多少？", "answer": "10千伏", "source": "grid/rules.md",
                                             "chunk_id": "h1#0", "passage": "母线电压为10千伏。"}]
    out = tmp_path / "artifact"
    out.mkdir()
    assert write_rag(out, corpus, candidates) == 1
    assert json.loads((out / "rag.jsonl").read_text())["source"] == "grid/rules.md"
    assert write_rag(out / "none", corpus, candidates[:1]) == 0 and not (out / "none").exists()
