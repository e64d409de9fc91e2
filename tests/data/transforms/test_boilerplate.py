from wattlm.data.document import Document
from wattlm.data.transforms.boilerplate import BoilerplateRemover, is_debris, source_group


def page(i: int, body: str) -> Document:
    text = f"查看: {1000 + 37 * i} | 回复: {i}\n{body}\n丰源电力技术社区 运营团队 敬上\n本帖最后由版主整理"
    return Document(f"p{i}", text, f"site/page{i}.html")


BODIES = [
    "主变压器本月完成油色谱试验，各项指标正常，可以继续运行。",
    "电缆隧道巡视发现两处积水，已安排排水泵抽排并检查密封。",
    "110千伏母线保护完成定期校验，差动回路极性正确。",
    "配电线路树障清理完成十二处，剩余三处计划下周处理。",
    "新投运的无功补偿装置试运行正常，电压合格率明显提高。",
]


def test_source_groups():
    assert source_group("site/a.html") == source_group("site/b.html") == "site/*.html"
    assert source_group("site/a.md") != source_group("site/a.html")
    assert source_group("faq.jsonl#3") == "faq.jsonl"


def test_lines_repeated_in_a_group_are_removed_with_digits_masked():
    docs = [page(i, BODIES[i]) for i in range(5)]
    docs.append(Document("x", "另一个目录的文件\n丰源电力技术社区 运营团队 敬上\n第三行内容。", "other/x.html"))
    step = BoilerplateRemover(min_docs=3, min_share=0.3)
    out = {d.id: d.text for d in step(docs)}
    assert out["p2"] == BODIES[2]  # counter, signature and note gone, the article stays
    assert "丰源电力技术社区 运营团队 敬上" in out["x"]  # another group: too rare there
    top = {row["line"]: row["docs"] for row in step.report_extras()["boilerplate_top"]}
    assert top["查看: 0 | 回复: 0"] == 5 and top["丰源电力技术社区 运营团队 敬上"] == 5
    assert step.docs_out == 6 and not step.dropped


def test_long_lines_differing_in_numbers_are_content():
    docs = [Document(f"n{i}", f"标题{i}\n第{i}号主变压器本月完成油色谱试验，各项指标均在注意值以内，经运维班组分析后可以继续运行。\n结束。",
                     f"logs/{i}.txt") for i in range(5)]
    out = list(BoilerplateRemover()(docs))
    assert all("主变压器本月完成油色谱试验" in d.text for d in out)
    assert all("结束。" not in d.text for d in out)  # a short line in every document is template


def test_fixed_debris_lines_go_everywhere():
    assert is_debris("转载请注明出处") and is_debris("阅读次数：1234") and is_debris("上一篇：关于停电的通知")
    assert is_debris("© 2019-2024 丰源电力技术社区 保留所有权利 | 丰ICP备19008866号")
    assert not is_debris("版权问题不是本规程讨论的范围，下文只讨论设备巡视的内容和周期要求。" * 3)
    assert not is_debris("工作票签发人应确认工作必要性和安全性。")
    doc = Document("a", "正文第一段。\n阅读次数：88\n正文第二段。", "a.txt")
    [out] = BoilerplateRemover()([doc])
    assert out.text == "正文第一段。\n正文第二段。"


def test_short_records_are_all_content():
    records = [Document(f"r{i}", f"第{i}条：变电站值班人员应当定期检查主变压器。", f"faq.jsonl#{i}") for i in range(6)]
    step = BoilerplateRemover()
    assert [d.text for d in step(records)] == [r.text for r in records]
    assert step.lines_removed == 0
