import json
import shutil
from pathlib import Path

import pytest

from wattlm.data import DataConfig, DataReport, build_corpus
from wattlm.data.dedup.exact import dedup_key
from wattlm.errors import NotFound, WattError

from .helpers import ARTICLE_PARAGRAPHS, FOOTER_TEXT, NAV_TEXT, article_html, nav_only_html, sentence, write

EXAMPLE_RAW = Path(__file__).resolve().parents[2] / "examples" / "power-grid" / "raw"
CONFIG = DataConfig(min_chars=20, heldout_fraction=0.2, shard_docs=3)


def make_raw(root: Path) -> Path:
    write(root / "news" / "article.html", article_html())
    write(root / "news" / "nav-only.htm", nav_only_html())
    write(root / "gbk.txt", sentence(1), "gbk")
    write(root / "big5.txt", "台灣電力公司規定：輸電線路巡視人員應當每月檢查導線弧垂與絕緣子污穢情況。", "big5")
    write(root / "notes.md", f"---\ntitle: 笔记\n---\n# 笔记\n\n{sentence(2)}\n")
    records = [{"text": sentence(i)} for i in range(3, 9)]
    records[4] = {"text": "  " + sentence(3).replace("，", "，  ") + "\n"}  # a duplicate of line 1 up to spacing
    records[5] = {"text": "太短"}
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines.insert(2, "{broken json")  # line 3
    write(root / "records.jsonl", "\n".join(lines) + "\n")
    write(root / "table.csv", f"id,text\n1,{sentence(20)}\n2,\n")
    write(root / "contact.txt", f"{sentence(30)}\n联系人王工，手机13800001234，邮箱wang@example.com。")
    (root / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (root / "zero.md").write_bytes(b"")
    write(root / "deck.pptx", "pretend slides")
    return root


def read_split(out: Path, split: str) -> list[dict]:
    shards = sorted((out / split).glob("shard-*.jsonl"))
    return [json.loads(line) for path in shards for line in path.read_text("utf-8").splitlines()]


def test_build_corpus_end_to_end(tmp_path):
    raw = make_raw(tmp_path / "raw")
    out = tmp_path / "out"
    report = build_corpus([raw], out, CONFIG, progress=False)

    assert isinstance(report, DataReport)
    assert report.files_seen == 11
    assert report.files_failed == 2  # blob.txt, zero.md
    # html 2 + gbk + big5 + md + jsonl 6 good lines + csv 2 rows + contact
    assert report.docs_in == 14
    assert report.dropped == {
        "empty": 1, "exact_duplicate": 1, "no_main_text": 1, "too_short": 1, "unsupported_type": 1
    }
    assert report.docs_kept == 10
    assert report.docs_train + report.docs_heldout == 10 and report.docs_heldout >= 1
    assert report.encodings == {"big5": 1, "gb18030": 1, "utf-8": 6}
    assert report.pii == {"email": 1, "mobile": 1}
    errors = {e.file: e.error for e in report.errors}
    assert errors["blob.txt"] == "binary file (contains NUL bytes)"
    assert errors["zero.md"] == "empty file"
    assert errors["records.jsonl"].startswith("line 3: invalid JSON")
    assert [s.name for s in report.steps] == [
        "extract_html", "normalize", "remove_page_chrome", "remove_boilerplate", "scrub_pii", "tag_language",
        "filter_empty", "filter_too_short", "filter_script_ratio", "filter_symbol_ratio", "filter_digit_ratio",
        "filter_end_punctuation", "filter_repeated_lines", "filter_repeated_ngrams", "exact_dedup",
        "near_dedup", "paragraph_dedup",
    ]
    assert report.steps[0].docs_in == 14 and report.steps[-1].docs_out == 10
    assert report.chars_kept < report.chars_in  # the HTML markup is gone

    # report.json is the report, and the shards hold exactly the kept documents.
    assert json.loads((out / "report.json").read_text("utf-8")) == report.to_dict()
    train, heldout = read_split(out, "train"), read_split(out, "heldout")
    docs = {d["source"]: d for d in train + heldout}
    assert len(train) == report.docs_train and len(heldout) == report.docs_heldout
    assert len(list((out / "train").glob("*.jsonl"))) == -(-len(train) // 3)
    assert set(docs) == {
        "news/article.html", "gbk.txt", "big5.txt", "notes.md", "table.csv#1",
        "records.jsonl#1", "records.jsonl#2", "records.jsonl#4", "records.jsonl#5", "contact.txt",
    }
    for doc in docs.values():  # notes.md has a front matter title: a column of every record
        assert set(doc) == {"id", "text", "source", "lang", "chars", "title"}
        assert doc["chars"] == len(doc["text"]) and doc["lang"] == "zh"
    assert len({d["id"] for d in docs.values()}) == 10
    assert docs["contact.txt"]["text"].endswith("联系人王工，手机<PII_PHONE>，邮箱<PII_EMAIL>。")
    assert (out / "report.html").is_file()
    samples = report.samples
    assert {s["reason"] for s in samples["dropped"]} == {"empty", "exact_duplicate", "no_main_text", "too_short"}
    assert 1 <= len(samples["kept"]) <= 3
    article = docs["news/article.html"]["text"]
    assert ARTICLE_PARAGRAPHS[1] in article and FOOTER_TEXT not in article and NAV_TEXT.split()[1] not in article
    assert docs["big5.txt"]["text"].startswith("台湾电力公司规定：输电线路巡视人员")  # simplified, '：' intact
    assert docs["notes.md"]["text"] == f"# 笔记\n\n{sentence(2)}"
    assert docs["notes.md"]["title"] == "笔记" and docs["contact.txt"]["title"] == ""
    assert docs["gbk.txt"]["text"] == sentence(1)
    assert not list(out.rglob("*.tmp"))


def test_rerun_and_moved_folder_give_same_ids_and_split(tmp_path):
    raw = make_raw(tmp_path / "raw")
    build_corpus([raw], tmp_path / "out1", CONFIG, progress=False)
    build_corpus([raw], tmp_path / "out1", CONFIG, progress=False)  # rerun over existing output
    moved = tmp_path / "elsewhere" / "deeper"
    moved.mkdir(parents=True)
    shutil.move(str(raw), str(moved / "raw"))
    build_corpus([moved / "raw"], tmp_path / "out2", CONFIG, progress=False)
    for split in ("train", "heldout"):
        assert read_split(tmp_path / "out1", split) == read_split(tmp_path / "out2", split)
    assert not list((tmp_path / "out1").rglob("*.tmp"))


def test_seed_changes_split_not_ids(tmp_path):
    raw = tmp_path / "raw"
    for i in range(40):
        write(raw / f"{i:02d}.txt", sentence(100 + i))
    a = build_corpus([raw], tmp_path / "a", DataConfig(seed=0, min_chars=20), progress=False)
    b = build_corpus([raw], tmp_path / "b", DataConfig(seed=1, min_chars=20), progress=False)

    def ids(out, split):
        return {d["id"] for d in read_split(tmp_path / out, split)}

    assert ids("a", "train") | ids("a", "heldout") == ids("b", "train") | ids("b", "heldout")
    assert ids("a", "heldout") != ids("b", "heldout")
    assert a.docs_kept == b.docs_kept == 40


def test_missing_input_raises_before_writing(tmp_path):
    write(tmp_path / "ok.txt", sentence(1))
    with pytest.raises(NotFound, match=r"input not found: .*missing"):
        build_corpus([tmp_path / "ok.txt", tmp_path / "missing"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_output_path_that_is_a_file_is_rejected(tmp_path):
    write(tmp_path / "raw" / "a.txt", sentence(1))
    write(tmp_path / "out", "a file")
    with pytest.raises(WattError, match="output path is a file"):
        build_corpus([tmp_path / "raw"], tmp_path / "out", progress=False)


def test_config_rejects_unknown_and_out_of_range_fields():
    with pytest.raises(ValueError, match="heldout_fraction"):
        DataConfig(heldout_fraction=0.5)
    with pytest.raises(ValueError, match="extra"):
        DataConfig(min_char=3)


def test_progress_bar_runs(tmp_path):
    write(tmp_path / "raw" / "a.txt", sentence(1))
    write(tmp_path / "raw" / "b.txt", sentence(2))
    report = build_corpus([tmp_path / "raw"], tmp_path / "out", CONFIG, progress=True)
    assert (report.docs_train, report.docs_heldout) == (1, 1)


def test_shards_load_with_hf_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    raw = make_raw(tmp_path / "raw")
    build_corpus([raw], tmp_path / "out", CONFIG, progress=False)
    files = sorted(str(p) for p in (tmp_path / "out" / "train").glob("shard-*.jsonl"))
    loaded = datasets.load_dataset("json", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert set(loaded.column_names) == {"id", "text", "source", "lang", "chars", "title"}


@pytest.mark.skipif(not EXAMPLE_RAW.is_dir(), reason="examples/power-grid/raw not written yet")
def test_example_power_grid_corpus(tmp_path):
    report = build_corpus([EXAMPLE_RAW], tmp_path / "out", progress=False)
    assert report.files_seen > 0 and report.docs_kept > 0
    assert report.docs_heldout >= 1
    assert report.docs_train + report.docs_heldout == report.docs_kept
    assert report.dropped.get("exact_duplicate", 0) >= 1  # the sample plants copies
    train, heldout = read_split(tmp_path / "out", "train"), read_split(tmp_path / "out", "heldout")
    for doc in train + heldout:
        assert doc["text"].strip() and doc["chars"] >= DataConfig().params_of("filter_too_short").min_chars
    # No held-out text also sits in train (exact dedup runs before the split).
    assert not {dedup_key(d["text"]) for d in train} & {dedup_key(d["text"]) for d in heldout}

    # 53 documents: nav-only page, title-only file, 3 exact copies and the 4 planted near-copies go.
    assert report.docs_in == 53 and report.docs_kept == 44
    assert report.dropped == {"exact_duplicate": 3, "near_duplicate": 4, "no_main_text": 1, "too_short": 1}
    dropped_copies = {d["source"] for c in report.near_dup_clusters for d in c["dropped"]}
    assert dropped_copies == {
        "switching_operation_ticket_guide_v2.md", "dispatcher_shift_log_0315_revised.txt",
        "ice_storm_emergency_plan_2024.txt", "site_b_infrared_thermography.html",  # the repost came first
    }
    # Every planted phone and e-mail is gone, replaced by placeholders; both ID-like numbers too.
    text = "\n".join(d["text"] for d in train + heldout)
    for planted in ("13800001234", "0599-86660123", "kefu@chengjiang-power.example.cn", "13600003579",
                    "010-55558866", "0599-86661234", "990102198507234417", "990103197911150026", "15900002468",
                    "18600007531", "zhaogang@dispatch.example.cn", "021-55556789", "dcr-duty@example.com",
                    "(02)2555-0123", "0912-000-456", "13900005678", "13700009876"):
        assert planted not in text, planted
    assert report.pii["mobile"] >= 7 and report.pii["email"] >= 6 and report.pii["id"] == 2
    assert text.count("<PII_PHONE>") >= 10 and "<PII_EMAIL>" in text and "<PII_ID>" in text
    # The forum's read counter ("查看: 2,215 | 回复: 5") is page chrome, removed by its rule on every page (it
    # was found from the corpus as template before remove_page_chrome existed; the text is the same).
    assert report.page_chrome_lines["rules"] == {"view_counter": 6}
    assert "查看:" not in text
    assert report.lang_mix == {"en": 8, "zh": 36}
    assert sum(row["docs"] for row in report.length_histogram) == 44
    html = (tmp_path / "out" / "report.html").read_text("utf-8")
    assert html.count("<svg") >= 6 and "near_duplicate" in html and "<script" not in html


def test_parquet_output_holds_the_same_records(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from wattlm.datasets import read_split_texts

    raw = make_raw(tmp_path / "raw")
    build_corpus([raw], tmp_path / "j", CONFIG, progress=False)
    # Written over a JSONL output: the old .jsonl shards must go, or a glob would see both.
    build_corpus([raw], tmp_path / "p", CONFIG, progress=False)
    report = build_corpus([raw], tmp_path / "p", CONFIG.model_copy(update={"output_format": "parquet"}),
                          progress=False)
    for split in ("train", "heldout"):
        shards = sorted((tmp_path / "p" / split).iterdir())
        assert shards and all(p.name.startswith("shard-") and p.suffix == ".parquet" for p in shards)
        records = [row for shard in shards for row in pq.read_table(shard).to_pylist()]
        assert records == read_split(tmp_path / "j", split)
        assert list(read_split_texts(tmp_path / "p" / split)) == [r["text"] for r in records]
        assert list(read_split_texts(tmp_path / "j" / split)) == [r["text"] for r in records]
    assert report.docs_train == len(read_split(tmp_path / "j", "train"))
    assert not list((tmp_path / "p").rglob("*.tmp"))
