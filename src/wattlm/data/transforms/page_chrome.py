"""Single-page chrome: site bars, read counters, share rows, breadcrumbs, follow prompts, prev/next links
and copyright footers, removed line by line with rules that need no other page.

`remove_boilerplate` learns a site's template from the lines its pages share, so it cannot see chrome on
a site that gave us one page, and trafilatura keeps what sits inside the article container (a byline
with "阅读 1234", a "分享 点赞 收藏" row). These rules are fixed, and conservative: a line is chrome only
when it is short (each rule has its own length limit) *and* matches as a whole. Token rules (a login bar,
a share row) need every piece of the line, split at separators, to be a word of the rule's vocabulary
(counts allowed), so "欢迎读者分享本文的经验" or any sentence that mentions 分享 is never touched.

The step runs in the `read` phase, right after `normalize` (traditional characters and full-width
forms are folded by then): before the corpus-wide line counts of `remove_boilerplate`, so chrome neither
inflates that table nor is claimed by its fixed debris list, and every removed line is counted here,
per rule (`page_chrome_lines` in report.json). A document left empty is dropped by `filter_empty`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

from pydantic import Field, field_validator

from wattlm.data.base import Step, StepParams
from wattlm.data.document import Document

EXAMPLES_PER_RULE = 3
# Where a line is cut into tokens: spaces, bars, slashes, dots, brackets, commas, colons, exclamations.
_SEPARATORS = re.compile(r"[\s|｜/\\·•丨,，、:：;；!！?？\[\]【】()（）<>《》「」“”\"'-]+")
# A count next to a token ("点赞 12", "12人点赞", "收藏(3)") is part of the row, not other content.
_COUNT = re.compile(r"\d[\d,.]*[万千kKwW+]?[人次个条]?")
_PHRASE = re.compile(r"\b(log|sign|my|share|back)\s+(in|up|out|account|this|to\s+top)\b", re.IGNORECASE)


def _words(*words: str) -> re.Pattern[str]:
    alternatives = "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))
    return re.compile(rf"(?:{_COUNT.pattern})?(?:{alternatives})(?:{_COUNT.pattern})?", re.IGNORECASE)


_AUTH = _words("登录", "登陆", "注册", "请登录", "免费注册", "立即注册", "立即登录", "快速登录", "退出", "退出登录",
               "注销", "找回密码", "忘记密码", "会员中心", "个人中心", "用户中心", "我的账户", "login",
               "signin", "signup", "register", "logout", "signout", "myaccount")
_SITE_NAV = _words("首页", "网站首页", "帮助", "帮助中心", "设为首页", "加入收藏", "网站导航", "手机版", "移动版",
                   "English", "中文", "简体", "繁体", "客服", "联系我们", "关于我们", "您好", "你好", "欢迎您",
                   "欢迎光临", "消息", "投稿", "home", "help", "hi", "hello", "welcome")
_GREETING = re.compile(r"^(欢迎|您好|你好).{0,14}$")  # "欢迎来到电力技术网" before the login links
_SHARE = _words("分享", "分享到", "一键分享", "点赞", "赞", "收藏", "转发", "评论", "在看", "打赏", "赞赏", "喜欢",
                "举报", "微信", "微博", "朋友圈", "QQ", "QQ空间", "新浪微博", "腾讯微博", "豆瓣", "复制链接",
                "share", "sharethis", "like", "likes", "tweet", "facebook", "twitter", "linkedin", "weibo",
                "wechat", "comment", "comments", "save")
_SHARE_LEAD = re.compile(r"^(分享到|分享至|share (this|on))", re.IGNORECASE)
_PAGE_ACTIONS = _words("返回顶部", "回到顶部", "打印", "打印本页", "关闭", "关闭窗口", "返回列表", "返回首页",
                       "字号", "大", "中", "小", "纠错", "我要纠错", "收藏本页", "backtotop", "print", "close")
# 阅读/浏览 may stand bare before the number; 点击/查看/访问 ("点击 3 次确认" is an instruction) need 量/数/次数
# or a colon. The number must end there: "查看1号主变" is content.
_COUNTER = re.compile(
    r"((阅读|浏览|围观)(量|数|次数|人数)?\s*[:：]?|(点击|查看|访问|热度)((量|数|次数|人数)\s*[:：]?|\s*[:：]))"
    r"\s*\d[\d,.]*\s*[万千kKwW]?\s*[次人]?(?=$|[\s|｜/·•,，;；)）\]】])"
    r"|\d[\d,.]*\s*[万千kK]?\s*(次阅读|人阅读|次浏览|人浏览|人看过|次播放|views?|reads?)\b"
    r"|\b(views?|reads?)\s*[:：]\s*\d",
    re.IGNORECASE,
)
_LOCATION = re.compile(r"^(当前位置|您的位置|您现在的位置|你的位置|所在位置|you are here)\s*(是|在)?\s*[:：]\s*",
                       re.IGNORECASE)
_CRUMB_SPLIT = re.compile(r"\s*(?:>>|＞＞|»|›|>|＞|→|/)\s*")
_HOME = re.compile(r"^(首页|网站首页|主页|返回首页|home|homepage)$", re.IGNORECASE)
# A scan prompt needs what the scan is for ("扫码登记设备信息" is a work step); the others stand alone.
_SCAN = re.compile(r"扫码|扫一扫|扫描.{0,8}二维码|长按.{0,8}(识别|二维码)")
_SCAN_FOR = re.compile(r"关注|下载|订阅|加入|添加|获取|了解更多|阅读原文|公众号|小程序|进群|app", re.IGNORECASE)
_FOLLOW = re.compile(
    r"关注.{0,10}(公众号|微信号|服务号|订阅号|官方微信|我们的微信|微博|抖音|视频号)"
    r"|(公众号|微信号)\s*[:：]|点击(上方|下方|蓝字).{0,6}关注|follow us on",
    re.IGNORECASE,
)
_PREV_NEXT = re.compile(r"^(上一篇|下一篇|上一条|下一条|上一页|下一页|上篇|下篇|previous (post|article)|next (post|article))"
                        r"(\s*[:：]|\s*$)", re.IGNORECASE)
_COPYRIGHT = re.compile(r"版权所有|保留所有权利|all rights reserved|copyright\s*(©|\(c\)|\d{4})|©\s*\d{4}|icp[备证]|公网安备",
                        re.IGNORECASE)


def _tokens(line: str) -> list[str]:
    """The pieces of `line` between separators, English two-word phrases ("log in") kept as one piece."""
    joined = _PHRASE.sub(lambda match: "".join(match.group(0).split()), line)
    return [piece for piece in _SEPARATORS.split(joined) if piece]


def _token_line(line: str, vocab: re.Pattern[str], need: int, allow: re.Pattern[str] | None = None) -> bool:
    """Every token of `line` is a `vocab` word (or a bare count, or matches `allow`), `need` of them vocab."""
    hits = 0
    for token in _tokens(line):
        if _COUNT.fullmatch(token):
            continue
        if vocab.fullmatch(token):
            hits += 1
        elif allow is None or not allow.fullmatch(token):
            return False
    return hits >= need


def _login_bar(line: str) -> bool:
    # Every piece a login word, a site-bar word or a greeting, and at least one login word.
    pieces = [p for p in _tokens(line) if not _COUNT.fullmatch(p)]
    auth = sum(1 for p in pieces if _AUTH.fullmatch(p))
    other_ok = all(_AUTH.fullmatch(p) or _SITE_NAV.fullmatch(p) or _GREETING.match(p) for p in pieces)
    return auth >= 1 and other_ok


def _share_row(line: str) -> bool:
    return _token_line(line, _SHARE, 1 if _SHARE_LEAD.match(line) else 2)


def _page_actions(line: str) -> bool:
    return _token_line(line, _PAGE_ACTIONS, 1)


def _view_counter(line: str) -> bool:
    return "。" not in line and _COUNTER.search(line) is not None


def _breadcrumb(line: str) -> bool:
    located = _LOCATION.match(line)
    parts = [p for p in _CRUMB_SPLIT.split(line[located.end():] if located else line) if p]
    if len(parts) < 2 or any(len(p) > 25 or "。" in p for p in parts):
        return False
    return located is not None or _HOME.match(parts[0]) is not None


def _follow_prompt(line: str) -> bool:
    return _FOLLOW.search(line) is not None or (_SCAN.search(line) is not None and _SCAN_FOR.search(line) is not None)


def _prev_next(line: str) -> bool:
    return _PREV_NEXT.match(line) is not None


def _copyright(line: str) -> bool:
    # "。" marks a sentence: a clause about 版权所有人 is content, a footer has none.
    return "。" not in line and _COPYRIGHT.search(line) is not None


# Rule name -> (longest line it may remove, test). The order decides which rule counts a line two match.
RULES: dict[str, tuple[int, Callable[[str], bool]]] = {
    "login_bar": (60, _login_bar),
    "breadcrumb": (80, _breadcrumb),
    "view_counter": (80, _view_counter),
    "share_row": (60, _share_row),
    "page_actions": (40, _page_actions),
    "follow_prompt": (60, _follow_prompt),
    "prev_next": (80, _prev_next),
    "copyright": (100, _copyright),
}


LONGEST = max(max_chars for max_chars, _ in RULES.values())


def chrome_rule(line: str, rules: Iterable[str] = RULES) -> str | None:
    """The name of the first rule that calls `line` chrome, or None (content)."""
    stripped = line.strip()
    if not stripped or len(stripped) > LONGEST:  # no rule takes a line this long
        return None
    return _first_rule(stripped, tuple(rules))


@lru_cache(maxsize=1 << 16)
def _first_rule(stripped: str, rules: tuple[str, ...]) -> str | None:
    """`chrome_rule` of a stripped line, remembered: a site's short lines (headings, menus, bylines,
    footers) come back page after page; on the bench corpus 3 of 4 short lines were seen before."""
    for name in rules:
        max_chars, test = RULES[name]
        if len(stripped) <= max_chars and test(stripped):
            return name
    return None


class PageChromeParams(StepParams):
    rules: list[str] = Field(default_factory=lambda: list(RULES),
                             description=f"The rules to apply (default all): {', '.join(RULES)}.")

    @field_validator("rules")
    @classmethod
    def _known(cls, rules: list[str]) -> list[str]:
        unknown = [rule for rule in rules if rule not in RULES]
        if unknown:
            raise ValueError(f"unknown page chrome rules {unknown}; known: {', '.join(RULES)}")
        return rules


class PageChromeRemover(Step):
    """Removes chrome lines from each document (never drops a document itself)."""

    name = "remove_page_chrome"
    phase = "read"
    Params = PageChromeParams

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.lines_by_rule: Counter[str] = Counter()
        self.docs_changed = 0
        self.examples: dict[str, list[str]] = {}

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        rules = tuple(name for name in RULES if name in self.params.rules)  # the table's order, whatever the list's
        for doc in docs:
            kept: list[str] = []
            removed = 0
            for line in doc.text.split("\n"):
                rule = chrome_rule(line, rules)
                if rule is None:
                    kept.append(line)
                    continue
                removed += 1
                self.lines_by_rule[rule] += 1
                examples = self.examples.setdefault(rule, [])
                if len(examples) < EXAMPLES_PER_RULE:
                    examples.append(line.strip())
            if removed:
                self.docs_changed += 1
                doc.text = "\n".join(kept).strip()
            yield doc

    def report_extras(self) -> dict[str, object]:
        return {"page_chrome_lines": {"lines": sum(self.lines_by_rule.values()), "docs": self.docs_changed,
                                      "rules": {name: self.lines_by_rule[name] for name in RULES
                                                if self.lines_by_rule[name]},
                                      "examples": {name: self.examples[name] for name in RULES
                                                   if name in self.examples}}}

    def extra_state(self) -> dict[str, object]:
        return {"rules": dict(self.lines_by_rule), "docs": self.docs_changed, "examples": self.examples}

    def merge_extra(self, extra: dict) -> None:
        self.lines_by_rule.update(extra["rules"])
        self.docs_changed += extra["docs"]
        for name, lines in extra["examples"].items():  # the first few in shard order, as in a serial run
            mine = self.examples.setdefault(name, [])
            mine.extend(lines[: EXAMPLES_PER_RULE - len(mine)])
