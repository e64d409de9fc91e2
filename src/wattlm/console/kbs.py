"""Knowledge-base pages: the list, and per KB its documents, a search test (query -> ranked chunks with
scores), adding documents (an upload goes through the data stage's cleaning, then `add_to_kb`) and
removing a document (`remove_from_kb`). Each change registers a new KB version, as `watt kb` does."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

from wattlm.console.i18n import register
from wattlm.console.pages import home_of, registry_of, render
from wattlm.console.security import CsrfChecked, form_fields
from wattlm.console.uploads import fresh_upload_folder, save_upload
from wattlm.errors import NotFound, WattError
from wattlm.registry import Artifact

router = APIRouter()
CONTEXT_CHARS = 400  # document text shown around a cited passage
_GAP = re.compile(r" {3,}")

register({
    "kb.title": {"en": "Knowledge bases", "zh": "知识库"},
    "kb.chunks": {"en": "Chunks", "zh": "分块"},
    "kb.sources": {"en": "Documents", "zh": "文档"},
    "kb.search": {"en": "Search test", "zh": "检索测试"},
    "kb.query": {"en": "Query", "zh": "查询"},
    "kb.k": {"en": "Results", "zh": "结果数"},
    "kb.mode": {"en": "Retrieval mode", "zh": "检索方式"},
    "kb.run_search": {"en": "Search", "zh": "检索"},
    "kb.add": {"en": "Add a document", "zh": "添加文档"},
    "kb.file": {"en": "Document file", "zh": "文档文件"},
    "kb.upload": {"en": "Upload and add", "zh": "上传并添加"},
    "kb.remove": {"en": "Remove", "zh": "删除"},
    "kb.remove_label": {"en": "Remove document", "zh": "删除文档"},
    "kb.version": {"en": "This version", "zh": "当前版本"},
    "kb.none": {"en": "No knowledge base yet: `watt kb build DOCS --name NAME`, or a recipe's knowledge section.",
                "zh": "还没有知识库：运行 `watt kb build 文档 --name 名称`，或在配方中配置 knowledge。"},
    "js.kb.score": {"en": "score", "zh": "得分"},
    "js.kb.supported": {"en": "supported", "zh": "有依据"},
    "js.kb.unsupported": {"en": "below the support threshold", "zh": "低于依据阈值"},
    "js.kb.none": {"en": "No results.", "zh": "没有结果。"},
    "js.kb.adding": {"en": "Adding (cleaning and embedding the document)…", "zh": "正在添加（清洗并向量化文档）…"},
})


def newest_kbs(registry) -> list[Artifact]:
    return list({art.name: art for art in registry.list("kb")}.values())


def kb_chunks(kb: Artifact) -> list[dict]:
    chunks_file = Path(kb.path) / "chunks.jsonl"
    if not chunks_file.is_file():
        return []
    with open(chunks_file, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def passage_in_context(kb: Artifact, source: str, start: int, end: int) -> dict:
    """The document text around [start, end) of `source`, rebuilt from the KB's chunks (they index the
    cleaned document), split as before / cited / after so the page can highlight the cited span."""
    pieces = sorted((c for c in kb_chunks(kb) if c["source"] == source), key=lambda c: c["start"])
    if not pieces:
        raise NotFound(f"knowledge base {kb.name} has no document {source!r}")
    text, cursor, offset = "", pieces[0]["start"], pieces[0]["start"]
    for chunk in pieces:  # chunks may overlap or leave gaps (dropped whitespace): place each at its offset
        if chunk["start"] > cursor:
            text += " " * (chunk["start"] - cursor)
            cursor = chunk["start"]
        overlap = cursor - chunk["start"]
        text += chunk["text"][overlap:]
        cursor = max(cursor, chunk["start"] + len(chunk["text"]))
    rel_start, rel_end = max(0, start - offset), max(0, end - offset)
    parts = {"before": text[max(0, rel_start - CONTEXT_CHARS):rel_start], "cited": text[rel_start:rel_end],
             "after": text[rel_end:rel_end + CONTEXT_CHARS]}
    # A gap between chunks (a heading line the chunks leave out) shows as an ellipsis, not a run of spaces.
    return {"source": source, "title": pieces[0].get("title", ""),
            **{name: _GAP.sub(" … ", part) for name, part in parts.items()}}


def _kb(registry, ref: str) -> Artifact:
    """The KB named by `ref`, or a 404 that the routes' `except WattError` (a 400) lets through."""
    try:
        return registry.get(ref, kind="kb")
    except NotFound as error:
        raise HTTPException(404, str(error)) from error


@router.get("/kb")
def kb_list(request: Request):
    with registry_of(request) as registry:
        kbs = newest_kbs(registry)
    return render(request, "kb_list.html", kbs=kbs)


@router.get("/kb/{ref}")
def kb_page(request: Request, ref: str):
    with registry_of(request) as registry:
        kb = _kb(registry, ref)
    sources = Counter(chunk["source"].split("#")[0] for chunk in kb_chunks(kb))
    return render(request, "kb.html", kb=kb, sources=sorted(sources.items()))


@router.post("/console-api/kb/{ref}/search", dependencies=[CsrfChecked])
async def kb_search(request: Request, ref: str):
    body = await request.json()
    from wattlm.kb.retrieve import search

    def run() -> list[dict]:
        with registry_of(request) as registry:
            kb = _kb(registry, ref)
        return [hit.to_dict() for hit in search(kb, str(body.get("query", "")), k=int(body.get("k", 5)),
                                                 mode=str(body.get("mode", "hybrid")))]

    try:
        return {"data": await asyncio.to_thread(run)}
    except (WattError, ValueError) as error:
        raise HTTPException(400, str(error)) from error


@router.get("/console-api/kb/{ref}/passage")
def kb_passage(request: Request, ref: str, source: str, start: int, end: int):
    with registry_of(request) as registry:
        kb = _kb(registry, ref)
    return passage_in_context(kb, source, start, end)


@router.post("/console-api/kb/{ref}/documents", dependencies=[CsrfChecked])
async def kb_add(request: Request, ref: str, name: str):
    """The body is the file itself (the page sends it with fetch); `name` is its file name."""
    home = home_of(request)
    saved = await save_upload(request, fresh_upload_folder(home), name)

    def add() -> Artifact:
        from wattlm.kb.stage import add_to_kb
        from wattlm.run.knowledge import documents_dataset, kb_origins, sidecar_hash

        with registry_of(request) as registry:
            previous = _kb(registry, ref)
            dataset = documents_dataset(registry, [saved], f"{previous.name}-added", progress=False)
            art, _ = add_to_kb(registry, previous, dataset, kb_origins([saved], shown_under=saved.parent), sidecar_hash([saved]))
            return art

    try:
        art = await asyncio.to_thread(add)
    except WattError as error:
        raise HTTPException(400, str(error)) from error
    return {"id": art.id, "name": art.name, "chunks": art.metrics.get("chunks"), "url": f"/kb/{art.id}"}


@router.post("/kb/{ref}/remove", dependencies=[CsrfChecked])
async def kb_remove(request: Request, ref: str):
    source = (await form_fields(request)).get("source", "")

    def remove() -> Artifact:
        from wattlm.kb.stage import remove_from_kb

        with registry_of(request) as registry:
            art, _ = remove_from_kb(registry, _kb(registry, ref), source)
            return art

    try:
        art = await asyncio.to_thread(remove)
    except WattError as error:
        raise HTTPException(400, str(error)) from error
    return RedirectResponse(f"/kb/{art.id}", status_code=303)
