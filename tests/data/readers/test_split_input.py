"""Large JSONL / text inputs cut into line-aligned byte ranges: same records, resumable, shared by workers."""

import json

import pytest

from wattlm.data import DataConfig, build_corpus
from wattlm.data.executors import local as executor
from wattlm.data.readers.source import InputFile, list_input_files, read_piece
from wattlm.data.readers.split_input import file_pieces

from ..executors.test_local import output_bytes
from ..helpers import sentence, write

CONFIG = DataConfig(min_chars=20, heldout_fraction=0.2, quality_filters=False, near_dedup=False,
                    paragraph_dedup_min_docs=0)


def big_jsonl(root):
    lines = [json.dumps({"text": f"{sentence(i % 40)}记录编号{i}，巡视结果正常。"}, ensure_ascii=False)
             for i in range(120)]
    lines[57] = "{broken"
    return write(root / "big.jsonl", "\n".join(lines) + "\n")


def test_pieces_are_line_aligned_and_cover_the_file(tmp_path):
    path = big_jsonl(tmp_path)
    pieces = file_pieces(InputFile(path, "big.jsonl"), 2048)
    assert len(pieces) > 3
    assert b"".join(read_piece(piece) for piece in pieces) == path.read_bytes()
    data = path.read_bytes()
    for piece in pieces:
        assert piece.start == 0 or data[piece.start - 1 : piece.start] == b"\n"
        assert piece.first_line == data[: piece.start].count(b"\n") + 1
    one_line = write(tmp_path / "one.txt", "电" * 5000)
    assert file_pieces(InputFile(one_line, "one.txt"), 2048) == [InputFile(one_line, "one.txt")]


def test_split_jsonl_gives_the_same_corpus_and_resumes(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    big_jsonl(raw)
    write(raw / "small.txt", sentence(3))
    whole = build_corpus([raw], tmp_path / "whole", CONFIG, progress=False)
    split = CONFIG.model_copy(update={"split_bytes": 2048})
    out = tmp_path / "split"
    real, ran = executor.run_shard, []

    def stop_after_two(task):
        if len(ran) == 2:
            raise KeyboardInterrupt
        ran.append(task.index)
        real(task)

    monkeypatch.setattr(executor, "run_shard_hook", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        build_corpus([raw], out, split, progress=False)
    monkeypatch.setattr(executor, "run_shard_hook", real)
    report = build_corpus([raw], out, split.model_copy(update={"workers": 2}), progress=False)
    assert len(list_input_files([raw])) == 2 and report.files_seen == 2
    assert report.to_dict() == whole.to_dict()  # same records, same line numbers in errors and sources
    assert [e.error for e in report.errors] == ["line 58: invalid JSON (Expecting property name enclosed in "
                                                "double quotes)"]
    whole_bytes, split_bytes = output_bytes(tmp_path / "whole"), output_bytes(out)
    assert whole_bytes == split_bytes


def test_text_pieces_are_documents(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "manual.txt", "\n".join(f"{sentence(i % 40)}第{i}条。" for i in range(100)))
    report = build_corpus([raw], tmp_path / "out", CONFIG.model_copy(update={"split_bytes": 2048}), progress=False)
    records = [json.loads(line) for split in ("train", "heldout")
               for path in sorted((tmp_path / "out" / split).glob("*.jsonl"))
               for line in path.read_text("utf-8").splitlines()]
    sources = sorted(record["source"] for record in records)
    assert report.files_seen == 1 and len(sources) > 3 and sources[0] == "manual.txt@0"
    assert all(source.startswith("manual.txt@") for source in sources)
