import pytest
from pydantic import ValidationError

from wattlm.data.document import Document
from wattlm.data.transforms.page_chrome import RULES, PageChromeRemover, chrome_rule

CHROME = {
    "login_bar": ["首页 | 登录 | 注册 | 帮助中心", "您好，欢迎来到电力技术网！请登录 免费注册", "Log in | Sign up", "登录"],
    "breadcrumb": ["当前位置：首页 > 新闻中心 > 正文", "首页 > 技术文章 > 变压器", "您的位置: 首页 » 菜谱", "Home > Databases"],
    "view_counter": ["作者：张三  2024-03-05 10:20  阅读 1234", "发布时间：2024-03-05 | 来源：本站 | 浏览量：1,234",
                     "1,234 views", "Posted by Ann · 5 min read · 2,310 views", "查看: 2,215 | 回复: 5", "2,310 次阅读"],
    "share_row": ["分享 点赞 收藏 转发", "点赞(12) 收藏(3) 分享", "分享到：微信 微博 QQ空间", "Like 12 Comment 3 Share",
                  "在看 | 12人点赞"],
    "page_actions": ["【打印】【关闭】", "返回顶部", "字号：大 中 小", "Back to top | Print"],
    "follow_prompt": ["扫描下方二维码关注我们的微信公众号", "扫一扫，关注山城旅行笔记", "长按识别二维码，关注绿叶生活",
                      "公众号：电网技术圈"],
    "prev_next": ["上一篇：配电网规划要点", "下一篇", "Previous post: Profiling a slow view"],
    "copyright": ["Copyright © 2024 电力技术网 版权所有 京ICP备12345678号", "© 2025 DevNotes. All rights reserved."],
}
CONTENT = [
    "用户首次使用需要注册",
    "查看1号主变温度",
    "欢迎读者分享本文中的检修经验，共同提高。",
    "电压 U1 > U2 > U3",
    "重点关注变压器温升",
    "Next, we check the relay.",
    "开售前十分钟登录好账号，把乘车人信息都填好。",
    "| 微信支付 | 2 | 元 |",
    "## 登录",
    "后来我把一小勺面种分享给了楼上的邻居，她说要给它起名叫小酸，还让我有空去看看。",
    "阅读本规程前，应先学习安全工作规程的相关章节，并在班组内组织讨论，每人阅读 3 遍以上并签字确认学习记录。",
    "位置：3号杆塔以东200米",
    "3. 扫码登记设备信息",
    "扫描设备铭牌上的二维码",
    "第五条 版权所有人应当在合同中注明。",
    "双击图标，点击 3 次确认",
    "当前位置：正文",
    "Share your results with the team before the review meeting, and like any other change, record it in the log.",
]


@pytest.mark.parametrize(("rule", "line"), [(rule, line) for rule, lines in CHROME.items() for line in lines])
def test_chrome_lines_match_their_rule(rule, line):
    assert chrome_rule(line) == rule


@pytest.mark.parametrize("line", CONTENT)
def test_content_lines_are_kept(line):
    assert chrome_rule(line) is None


def test_every_rule_is_tested():
    assert set(CHROME) == set(RULES)


def test_long_lines_are_never_chrome():
    long_share = "分享 点赞 收藏 转发 " * 8  # matches the share rule's vocabulary, but 64+ characters long
    assert chrome_rule(long_share) is None


def test_step_removes_lines_and_counts_per_rule():
    step = PageChromeRemover()
    text = "首页 | 登录 | 注册\n作者：老周 阅读 1,204\n正文第一段，说明巡视要点。\n\n分享 点赞 收藏\n上一篇：前文"
    docs = list(step([Document("a", text, "a.txt"), Document("b", "没有任何页面杂项的正文。", "b.txt")]))
    assert [d.text for d in docs] == ["正文第一段，说明巡视要点。", "没有任何页面杂项的正文。"]
    extras = step.report_extras()["page_chrome_lines"]
    assert extras["lines"] == 4 and extras["docs"] == 1
    assert extras["rules"] == {"login_bar": 1, "view_counter": 1, "share_row": 1, "prev_next": 1}
    assert extras["examples"]["prev_next"] == ["上一篇：前文"]


def test_shard_copies_merge_to_the_serial_counts():
    texts = [f"首页 | 登录 | 注册\n正文{i}。\n上一篇：第{i}篇" for i in range(5)]
    serial = PageChromeRemover()
    list(serial(Document(str(i), t, f"{i}.txt") for i, t in enumerate(texts)))
    merged = PageChromeRemover()
    for part in (texts[:2], texts[2:]):
        shard = PageChromeRemover()
        list(shard(Document(t, t, "x.txt") for t in part))
        merged.merge_stats(shard.stats_state())
    assert merged.report_extras() == serial.report_extras()


def test_rules_param_selects_rules_and_rejects_unknown_ones():
    step = PageChromeRemover(rules=["copyright"])
    (doc,) = step([Document("a", "首页 | 登录\n正文。\n版权所有 某站", "a.txt")])
    assert doc.text == "首页 | 登录\n正文。"
    with pytest.raises(ValidationError, match="unknown page chrome rules"):
        PageChromeRemover(rules=["banner"])
