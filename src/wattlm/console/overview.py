"""The overview page: models by tier (foundation -> industry -> task -> exports), datasets, knowledge
bases and the recent runs (the job rows `watt run` records, and older run reports)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from wattlm.console.i18n import register
from wattlm.console.pages import registry_of, render
from wattlm.jobs import Jobs
from wattlm.registry import TIERS, Artifact, Registry

router = APIRouter()
RECENT_RUNS = 10

register({
    "overview.title": {"en": "Overview", "zh": "总览"},
    "overview.models": {"en": "Models by tier", "zh": "按层级的模型"},
    "overview.exports": {"en": "Exports (GGUF)", "zh": "导出（GGUF）"},
    "overview.datasets": {"en": "Datasets", "zh": "数据集"},
    "overview.kbs": {"en": "Knowledge bases", "zh": "知识库"},
    "overview.runs": {"en": "Recent runs", "zh": "最近的运行"},
    "overview.empty": {"en": "The workspace is empty: run a recipe (`watt run examples/power-grid/recipe.yaml`).",
                       "zh": "工作区为空：运行一个配方（`watt run examples/power-grid/recipe.yaml`）。"},
    "tier.foundation": {"en": "Foundation", "zh": "基础模型"},
    "tier.industry": {"en": "Industry", "zh": "行业模型"},
    "tier.task": {"en": "Task", "zh": "任务模型"},
    "tier.exports": {"en": "Exports", "zh": "导出"},
    "overview.parent": {"en": "Parent", "zh": "父模型"},
    "overview.docs": {"en": "Documents kept", "zh": "保留文档"},
    "overview.chunks": {"en": "Chunks", "zh": "分块"},
    "overview.recipe": {"en": "Recipe", "zh": "配方"},
    "overview.seconds": {"en": "Seconds", "zh": "耗时（秒）"},
    "overview.size": {"en": "Size (MB)", "zh": "大小（MB）"},
    "overview.quant": {"en": "Quantization", "zh": "量化"},
    "overview.finished": {"en": "finished", "zh": "已完成"},
    "overview.queued": {"en": "queued", "zh": "排队中"},
    "overview.running": {"en": "running", "zh": "运行中"},
    "overview.succeeded": {"en": "succeeded", "zh": "成功"},
    "overview.failed": {"en": "failed", "zh": "失败"},
    "overview.cancelled": {"en": "cancelled", "zh": "已取消"},
    "overview.interrupted": {"en": "interrupted", "zh": "已中断"},
})


def parent_name(registry: Registry, art: Artifact, names: dict[str, str]) -> str:
    parent = next((pid for pid, role in art.parents if role in ("parent", "model")), None)
    return names.get(parent, parent or "")


def run_rows(registry: Registry) -> list[dict]:
    """Recent runs, newest first: the job rows every `watt run` records (CLI or console, with their live
    status and a link to the run page), then run reports older than the first job (runs from before jobs
    were recorded have only their report)."""
    jobs = Jobs(registry.home)
    try:
        jobs.sweep()  # a run whose process is gone shows as interrupted, not as running forever
        recorded = jobs.list(limit=RECENT_RUNS)
    finally:
        jobs.close()
    rows = [{"id": job.id, "recipe": job.name, "created": job.created, "status": job.status,
             "seconds": (job.finished - job.started) if job.finished and job.started else None,
             "href": f"/runs/{job.id}"} for job in recorded]
    first_job = min((job.created for job in recorded), default=float("inf"))
    for report in reversed(registry.list("report")):
        if len(rows) >= RECENT_RUNS:
            break
        if report.created >= first_job:
            continue
        summary_file = report.path / "report.json"
        try:
            summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.is_file() else {}
        except (OSError, ValueError):
            summary = {}
        if "recipe" in summary:
            rows.append({"id": report.id, "recipe": summary.get("recipe"), "created": report.created,
                         "seconds": summary.get("seconds"), "status": "finished", "href": None})
    return rows


def overview_context(registry: Registry) -> dict:
    models = registry.list("model")
    names = {art.id: art.name for art in registry.list()}
    tiers = {tier: [{"art": m, "parent": parent_name(registry, m, names)} for m in models if m.tier == tier]
             for tier in TIERS}
    exports = [{"art": e, "parent": parent_name(registry, e, names)} for e in registry.list("export")]
    return {"tiers": tiers, "exports": exports, "datasets": registry.list("dataset"), "kbs": registry.list("kb"),
            "runs": run_rows(registry)}


@router.get("/")
def overview(request: Request):
    with registry_of(request) as registry:
        context = overview_context(registry)
    return render(request, "overview.html", **context)
