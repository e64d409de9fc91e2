"""Shared helpers for the data-stage tests: tiny documents written into tmp_path."""

from __future__ import annotations

from pathlib import Path

# A realistic news page: trafilatura needs an article of some length to tell it from the chrome.
ARTICLE_PARAGRAPHS = [
    "国家电网公司今日发布了关于加强夏季用电高峰期间输电线路运行维护管理的通知，要求各单位严格执行巡视制度。",
    "通知指出，各级调度机构应当提前编制负荷预测和检修计划，及时发现并消除设备缺陷，确保电网安全稳定运行。",
    "对于重要输电通道，运维单位需要增加无人机巡检频次，重点关注导线弧垂、绝缘子污秽和树障隐患等问题。",
    "变电站值班人员应当加强对主变压器油温、负荷电流和冷却系统的监视，发现异常情况立即向调度汇报并按规程处置。",
]
NAV_TEXT = "首页 新闻中心 关于我们 联系方式"
FOOTER_TEXT = "版权所有 某某电力网站 备案号 京ICP备00000000号"
COMMENT_TEXT = "网友评论：这篇文章写得真好，点赞支持"


def _nav_links() -> str:
    return "".join(f'<li><a href="/{i}">{word}</a></li>' for i, word in enumerate(NAV_TEXT.split()))


def article_html() -> str:
    paragraphs = "\n".join(f"<p>{text}</p>" for text in ARTICLE_PARAGRAPHS)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>关于加强输电线路运行维护管理的通知</title></head>
<body>
<header><nav><ul>{_nav_links()}</ul></nav></header>
<main><article>
<h1>关于加强输电线路运行维护管理的通知</h1>
{paragraphs}
</article>
<section class="comments" id="comments"><div class="comment"><p>{COMMENT_TEXT}</p></div></section>
</main>
<footer><p>{FOOTER_TEXT}</p></footer>
</body></html>
"""


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def nav_only_html() -> str:
    """A section index page: navigation, a list of links and a footer, no article."""
    links = _nav_links()
    return (
        f"<html><head><title>栏目导航</title></head><body><header><nav><ul>{links}</ul></nav></header>"
        f'<main><ul class="column-list">{links}</ul></main><footer><p>{FOOTER_TEXT}</p></footer></body></html>'
    )


# Distinct rule sentences: any two share at most one clause, so near-dup removal keeps them all.
_DUTIES = [
    "变电站值班人员应当定期检查主变压器的油温和负荷电流",
    "输电线路巡视人员每月测量导线弧垂与绝缘子污秽情况",
    "调度员在交接班时核对电网运行方式和检修计划",
    "配电运维班组负责开关柜的红外测温与局部放电检测",
    "继电保护专业人员按年度校验保护装置定值",
    "营销部门统计大客户的月度用电量与功率因数",
    "电缆运检人员进入隧道前必须检测氧气和有害气体浓度",
    "新能源场站应当按照调度指令参与一次调频和无功调节",
]
_FOLLOW_UPS = [
    "发现异常立即向值班调度员汇报",
    "检查结果录入生产管理系统备查",
    "重大缺陷须在二十四小时内组织消除",
    "相关记录保存不少于三年",
    "工作结束后由工作负责人签字确认",
]


def sentence(i: int) -> str:
    """A one-sentence rule, different for each i < 40 (duty i % 8, follow-up i // 8 % 5)."""
    return f"第{i}号规程：{_DUTIES[i % 8]}，{_FOLLOW_UPS[i // 8 % 5]}。"


def load_bench(name: str):
    """Import bench/<name>.py (scripts, not a package) so a test can run its generator small."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[2] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module
