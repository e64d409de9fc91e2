"""HTTP routes of the knowledge bases: list them, and retrieval alone (no model)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from wattlm.serve.grounding import KnowledgeBases
from wattlm.serve.protocol.knowledge import KbCard, KbHit, KbList, KbSearchRequest, KbSearchResponse


def get_knowledge(request: Request) -> KnowledgeBases:
    return request.app.state.knowledge


Knowledge = Annotated[KnowledgeBases, Depends(get_knowledge)]

router = APIRouter()


@router.get("/v1/kb")
async def list_knowledge_bases(knowledge: Knowledge) -> KbList:
    kbs = await asyncio.to_thread(knowledge.listing)
    return KbList(data=[KbCard(id=kb.name, artifact_id=kb.id, created=int(kb.created), chunks=kb.metrics.get("chunks"),
                               sources=kb.metrics.get("sources"), default=kb.name == knowledge.default)
                        for kb in kbs])


@router.post("/v1/kb/{name}/search")
async def search_knowledge_base(name: str, request: KbSearchRequest, knowledge: Knowledge) -> KbSearchResponse:
    kb, hits = await asyncio.to_thread(knowledge.search, name, request.query, request.k, request.mode)
    return KbSearchResponse(kb=kb.name, kb_id=kb.id, data=[KbHit(**hit.to_dict()) for hit in hits])
