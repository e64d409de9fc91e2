"""Saved web pages as a crawler or blog exporter writes them (tests/data/webtext/, our own writing on five
made-up sites): every good article is kept with its body and without its chrome, every junk page is
dropped, and front matter becomes record fields. Built with the demo recipe's data settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wattlm.data import DataConfig, build_corpus

from .test_golden_output import DEMO_DATA

WEBTEXT = Path(__file__).parent / "webtext"

# Good article -> sentences of its body that must survive (first, middle, last; lists and tables too).
BODY = {
    "good/dianli_transformer_inspection.txt": [
        "变压器是变电站里最贵重的设备之一", "第五看呼吸器。硅胶变色超过三分之二就应当更换", "设备的“脾气”就摸清楚了"],
    "good/dianli_cable_fault_location.md": [
        "去年十一月的一个夜里", "| 故障距离 | 低压脉冲法（A相） | 约1205米 |", "施工时一定要有人旁站"],
    "good/lvye_sourdough_diary.html": [
        "去年冬天，我决定自己养一罐酸面种", "这是正常的“沉寂期”", "后来我把一小勺面种分享给了楼上的邻居"],
    "good/lvye_balcony_garden.html": [
        "很多人想在阳台上种点菜", "把葱白的根须剪短到两厘米左右", "远远超过那几把菜本身的价值"],
    "good/lvye_reading_notes.md": ["费孝通先生的《乡土中国》是一本薄薄的小书", "第二点是“礼治秩序”", "也多了一份清醒"],
    "good/shancheng_chongqing_walk.txt": ["从解放碑往南走", "我在半坡的一家店里吃了一碗豌杂面", "去看看嘉陵江那一边的老城"],
    "good/shancheng_train_ticket_tips.md": [
        "每年一到春运", "开售前十分钟登录好账号", "| 候补购票 | 起售后立即提交 | 可以同时选择多个车次 |", "祝大家都能顺利回家过年"],
    "good/devnotes_sqlite_wal.html": [
        "Our internal ticket tracker is a small Python service", "WAL does not work on network file systems",
        "keep transactions short"],
    "good/devnotes_rust_errors.txt": [
        "When I moved from Python to Rust", "Reserve unwrap and expect for cases that truly cannot happen",
        "what the program was doing when it failed"],
    # trafilatura's precision mode drops this page's numbered steps (<ol>; its recall mode keeps them):
    # the intro, the ingredient table and the tips must stay.
    "good/jiangnan_braised_pork.txt": [
        "本帮红烧肉是上海人家里逢年过节必不可少的一道菜", "| 带皮五花肉 | 800克 | 选肥瘦相间、层次分明的 |",
        "吸满了汤汁，比肉还受欢迎"],
}
JUNK = {
    "junk/dianli_login_page.html": "no_main_text",
    "junk/lvye_tag_index.txt": "low_script_ratio",
    "junk/shancheng_share_footer_only.md": "empty",
    "junk/jiangnan_keyword_spam.txt": "few_sentence_lines",
    "junk/devnotes_404.html": "too_short",
    "junk/jiangnan_price_list.txt": "low_script_ratio",
}
# Chrome of the pages above (login bars, counters, share rows, breadcrumbs, prompts, prev/next, footers) and
# markup. Sentences that merely mention 登录 or 分享 are body text (BODY holds two).
CHROME = ["首页 | 登录", "免费注册", "Sign in", "Log in", "Sign up", "阅读 12,804", "浏览量", "浏览：", "次阅读", "views",
          "Views:", "当前位置", "您的位置", "首页 >", "Home >", "分享 ", "分享到", "点赞", "收藏", "转发", "Like 48",
          "Tweet", "扫一扫", "扫码", "公众号", "二维码", "上一篇", "下一篇", "Previous post", "版权所有", "Copyright",
          "©", "ICP备", "【打印】", "All rights reserved", "<div", "<p", "class=", "&gt;"]
FRONT_MATTER = {
    "good/dianli_transformer_inspection.txt": {
        "title": "油浸式变压器日常巡视的十个要点", "date": "2025-03-18", "author": "王建平",
        "categories": "运维检修, 变压器"},
    "good/dianli_cable_fault_location.md": {"author": "陈晓东", "categories": "配电, 电缆"},
    "good/lvye_sourdough_diary.html": {
        "title": "养一罐酸面种的三十天", "date": "2025-01-09T21:30:00", "author": "绿叶", "categories": "厨房日记"},
    "good/shancheng_chongqing_walk.txt": {"title": "在重庆下半城走一个下午", "date": "2024-09-14"},
    "good/shancheng_train_ticket_tips.md": {"title": "春运火车票的几个实用建议", "categories": "出行"},
    "good/devnotes_rust_errors.txt": {
        "title": "Error handling in Rust: a field guide for Python programmers", "author": "Mira Chen"},
    "good/jiangnan_braised_pork.txt": {"title": "本帮红烧肉的家常做法", "categories": "家常菜, 上海菜"},
}
NO_FRONT_MATTER = ["good/lvye_balcony_garden.html", "good/lvye_reading_notes.md", "good/devnotes_sqlite_wal.html"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[dict[str, dict], dict]:
    out = tmp_path_factory.mktemp("webtext") / "out"
    build_corpus([WEBTEXT], out, DataConfig(**DEMO_DATA), progress=False)
    records = {}
    for path in sorted(out.glob("*/shard-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            records[record["source"]] = record
    return records, json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_the_test_corpus_is_complete():
    on_disk = {path.relative_to(WEBTEXT).as_posix() for path in WEBTEXT.rglob("*") if path.is_file()}
    assert on_disk == set(BODY) | set(JUNK)
    assert len(BODY) >= 8


def test_every_good_article_is_kept_with_its_body(corpus):
    records, _ = corpus
    assert set(records) == set(BODY)
    for source, sentences in BODY.items():
        for sentence in sentences:
            assert sentence in records[source]["text"], (source, sentence)


def test_no_chrome_survives(corpus):
    records, _ = corpus
    for source, record in records.items():
        for chrome in CHROME:
            assert chrome not in record["text"], (source, chrome)


def test_every_junk_page_is_dropped_for_its_reason(corpus):
    _, report = corpus
    dropped_sources = {sample["source"]: sample["reason"] for sample in report["samples"]["dropped"]}
    assert report["docs_in"] == len(BODY) + len(JUNK)
    assert report["docs_kept"] == len(BODY)
    expected: dict[str, int] = {}
    for reason in JUNK.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert report["dropped"] == expected
    for source, reason in JUNK.items():
        assert dropped_sources.get(source) == reason, source


def test_front_matter_fields_are_record_fields(corpus):
    records, _ = corpus
    for source, fields in FRONT_MATTER.items():
        for key, value in fields.items():
            assert records[source][key] == value, (source, key)
        assert "title:" not in records[source]["text"] and "---" not in records[source]["text"][:5]
    for source in NO_FRONT_MATTER:
        assert [records[source][key] for key in ("title", "date", "author", "categories")] == [""] * 4, source


def test_chrome_lines_are_counted_per_rule(corpus):
    _, report = corpus
    chrome = report["page_chrome_lines"]
    # trafilatura already removes most chrome of the HTML pages; the plain-text crawl has a line of each kind.
    assert set(chrome["rules"]) == {"login_bar", "breadcrumb", "view_counter", "share_row", "follow_prompt",
                                    "prev_next", "copyright"}
    assert chrome["lines"] == sum(chrome["rules"].values()) > 0
    assert "扫一扫，关注山城旅行笔记微信公众号" in chrome["examples"]["follow_prompt"]
    names = [step["name"] for step in report["steps"]]
    assert names.index("normalize") < names.index("remove_page_chrome") < names.index("remove_boilerplate")
