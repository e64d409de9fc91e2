"""The playground: chat or completion with any served model, streamed through this server's own `/v1`
routes (the page's script calls them with the session's CSRF token; `app.ConsoleGate` adds the key),
sampling parameters, a knowledge base on or off with the citations beside the answer, and the same
request as `curl` and `openai` code."""

from __future__ import annotations

from fastapi import APIRouter, Request

from wattlm.console.i18n import register
from wattlm.console.kbs import newest_kbs
from wattlm.console.pages import registry_of, render

router = APIRouter()

register({
    "play.title": {"en": "Playground", "zh": "试用"},
    "play.model": {"en": "Model", "zh": "模型"},
    "play.served": {"en": "Served now", "zh": "已加载"},
    "play.registry": {"en": "In the registry (loaded on demand)", "zh": "注册表中（按需加载）"},
    "play.mode": {"en": "Mode", "zh": "模式"},
    "play.chat": {"en": "Chat", "zh": "对话"},
    "play.completion": {"en": "Completion", "zh": "续写"},
    "play.kb": {"en": "Knowledge base", "zh": "知识库"},
    "play.kb_off": {"en": "off (answer without documents)", "zh": "关闭（不检索文档）"},
    "play.k": {"en": "Passages", "zh": "段落数"},
    "play.temperature": {"en": "Temperature", "zh": "温度"},
    "play.top_p": {"en": "Top p", "zh": "Top p"},
    "play.max_tokens": {"en": "Max tokens", "zh": "最大 token 数"},
    "play.system": {"en": "System prompt (chat)", "zh": "系统提示（对话）"},
    "play.prompt": {"en": "Message or prompt", "zh": "消息或提示"},
    "play.send": {"en": "Send", "zh": "发送"},
    "play.stop": {"en": "Stop", "zh": "停止"},
    "play.answer": {"en": "Answer", "zh": "回答"},
    "play.citations": {"en": "Citations", "zh": "引用"},
    "play.passage": {"en": "Cited passage", "zh": "引用的段落"},
    "play.code": {"en": "The same request as code", "zh": "等价的代码"},
    "play.no_models": {"en": "No model is served or registered yet.", "zh": "还没有已加载或已注册的模型。"},
    "js.play.none": {"en": "No citations.", "zh": "没有引用。"},
    "js.play.show": {"en": "Show passage", "zh": "查看段落"},
    "js.play.streaming": {"en": "Streaming…", "zh": "生成中…"},
    "js.play.done": {"en": "Done.", "zh": "完成。"},
    "js.play.stopped": {"en": "Stopped.", "zh": "已停止。"},
})


def served_model_ids(request: Request) -> list[str]:
    api_app = request.app.state.api_app
    if api_app is None:
        return []
    return [card.id for card in api_app.state.served_models.cards()]


def registry_model_names(request: Request, served: list[str]) -> tuple[list[str], list[str]]:
    """Exports and GGUF models (what llama.cpp serves), newest name first, minus those served now."""
    with registry_of(request) as registry:
        arts = [a for a in registry.list() if a.kind == "export" or (a.kind == "model" and a.format == "gguf")]
        kbs = [kb.name for kb in newest_kbs(registry)]
    names = list(dict.fromkeys(a.name for a in reversed(arts)))
    return [n for n in names if n not in served], kbs


@router.get("/playground")
def playground(request: Request, model: str = "", kb: str = ""):
    served = served_model_ids(request)
    others, kbs = registry_model_names(request, served)
    knowledge = request.app.state.api_app.state.knowledge if request.app.state.api_app is not None else None
    default_kb = kb or (knowledge.default if knowledge is not None else None) or ""
    return render(request, "playground.html", served=served, others=others, kbs=kbs, chosen=model,
                  chosen_kb=default_kb)
