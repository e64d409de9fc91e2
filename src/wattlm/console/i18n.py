"""Labels of the console in English and Chinese, and the `t(key)` the templates call.

Every label lives in one table, `{key: {"en": ..., "zh": ...}}`; a page module (or console-jobs'
runs page) adds its own with `register`. The language comes from the `watt_lang` cookie; an unknown
key renders as itself so a missing label shows up on the page instead of failing it.
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "watt_lang"

_LABELS: dict[str, dict[str, str]] = {}


def register(labels: dict[str, dict[str, str]]) -> None:
    """Add labels: {key: {"en": text, "zh": text}}. Both languages are required, so no page is half-translated."""
    for key, texts in labels.items():
        missing = [lang for lang in LANGUAGES if not texts.get(lang)]
        if missing:
            raise ValueError(f"console label '{key}' lacks {', '.join(missing)}")
        _LABELS[key] = dict(texts)


def translate(key: str, lang: str) -> str:
    texts = _LABELS.get(key)
    if texts is None:
        return key
    return texts.get(lang) or texts[DEFAULT_LANGUAGE]


def language_of(cookie: str | None) -> str:
    return cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE


def labels_for(lang: str, prefix: str) -> dict[str, str]:
    """The labels whose key starts with `prefix`, in `lang` (handed to page scripts as JSON)."""
    return {key: translate(key, lang) for key in _LABELS if key.startswith(prefix)}


register({
    "app.name": {"en": "wattlm console", "zh": "wattlm 控制台"},
    "nav.overview": {"en": "Overview", "zh": "总览"},
    "nav.eval": {"en": "Eval", "zh": "评测"},
    "nav.playground": {"en": "Playground", "zh": "试用"},
    "nav.kb": {"en": "Knowledge bases", "zh": "知识库"},
    "nav.keys": {"en": "Keys", "zh": "密钥"},
    "nav.runs": {"en": "Runs", "zh": "运行"},
    "nav.skip": {"en": "Skip to content", "zh": "跳到正文"},
    "nav.main": {"en": "Main navigation", "zh": "主导航"},
    "nav.language": {"en": "Language", "zh": "语言"},
    "nav.switch": {"en": "Switch", "zh": "切换"},
    "nav.signout": {"en": "Sign out", "zh": "退出"},
    "login.title": {"en": "Sign in", "zh": "登录"},
    "login.key": {"en": "API key", "zh": "API 密钥"},
    "login.help": {"en": "This console requires an API key (created with `watt keys create NAME`).",
                   "zh": "此控制台需要 API 密钥（用 `watt keys create 名称` 创建）。"},
    "login.submit": {"en": "Sign in", "zh": "登录"},
    "login.bad": {"en": "Unknown or revoked key.", "zh": "密钥无效或已吊销。"},
    "common.none": {"en": "none", "zh": "无"},
    "common.name": {"en": "Name", "zh": "名称"},
    "common.id": {"en": "ID", "zh": "ID"},
    "common.created": {"en": "Created", "zh": "创建时间"},
    "common.tier": {"en": "Tier", "zh": "层级"},
    "common.status": {"en": "Status", "zh": "状态"},
    "common.metric": {"en": "Metric", "zh": "指标"},
    "common.value": {"en": "Value", "zh": "数值"},
    "common.error": {"en": "Error", "zh": "错误"},
    "common.back": {"en": "Back to overview", "zh": "返回总览"},
})
