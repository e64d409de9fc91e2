"""Bodies of wattlm's knowledge-base endpoints: GET /v1/kb and POST /v1/kb/{name}/search."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KbSearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)
    k: int = Field(5, ge=1, le=50)
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"


class KbHit(BaseModel):
    """One retrieved chunk (the fields of `wattlm.kb.retrieve.Hit`)."""

    rank: int
    id: str
    source: str
    title: str
    heading: str
    text: str
    start: int
    end: int
    score: float
    similarity: float
    support: float
    supported: bool  # support >= the KB's calibrated threshold
    superseded: bool
    superseded_by: str | None = None
    effective: str | None = None


class KbSearchResponse(BaseModel):
    object: Literal["list"] = "list"
    kb: str  # the KB's name
    kb_id: str  # the artifact id of the version searched
    data: list[KbHit]


class KbCard(BaseModel):
    id: str  # the KB's name (what `knowledge.kb` and the search path take)
    object: Literal["knowledge_base"] = "knowledge_base"
    artifact_id: str  # its newest version
    created: int
    chunks: int | None = None
    sources: int | None = None
    default: bool = False  # grounds chat answers unless a request says otherwise


class KbList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KbCard]
