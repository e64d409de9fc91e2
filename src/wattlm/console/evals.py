"""The eval page: pick models and task files, run the tasks (the same `evaluate_model` as `watt eval run`,
scores stored on each model and reused on a rerun), and compare the models side by side with the table
and charts of `watt eval compare`. Task files are uploaded once into `WATT_HOME/eval-tasks/`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from markupsafe import Markup

from wattlm.console.i18n import register
from wattlm.console.pages import home_of, registry_of, render
from wattlm.console.security import CsrfChecked
from wattlm.console.uploads import checked_name, save_upload
from wattlm.errors import WattError
from wattlm.eval.compare import comparison
from wattlm.eval.tasks import stored_metric
from wattlm.shared.charts import PALETTE, hbar_chart

router = APIRouter()
TASK_SUFFIXES = (".jsonl", ".yaml", ".yml")
TASK_FOLDER = "eval-tasks"
MAX_TASK_BYTES = 5 * 1024 * 1024

register({
    "eval.title": {"en": "Evaluate and compare", "zh": "评测与对比"},
    "eval.models": {"en": "Models", "zh": "模型"},
    "eval.tasks": {"en": "Task files", "zh": "评测任务文件"},
    "eval.no_tasks": {"en": "No task file yet: upload a JSONL (QA / multiple choice) or lm-eval YAML file.",
                      "zh": "还没有任务文件：上传 JSONL（问答/选择题）或 lm-eval YAML 文件。"},
    "eval.upload": {"en": "Upload a task file", "zh": "上传任务文件"},
    "eval.file": {"en": "Task file", "zh": "任务文件"},
    "eval.limit": {"en": "Items per task (optional)", "zh": "每个任务的题数（可选）"},
    "eval.run": {"en": "Run the tasks", "zh": "运行评测"},
    "eval.compare": {"en": "Compare", "zh": "对比"},
    "eval.comparison": {"en": "Side by side", "zh": "并排对比"},
    "eval.better": {"en": "better", "zh": "更优方向"},
    "eval.pick": {"en": "Pick two or more models and press Compare.", "zh": "选择两个或更多模型，然后点击“对比”。"},
    "js.eval.running": {"en": "Running the tasks (this takes a while on a CPU)…", "zh": "正在运行评测（CPU 上需要一些时间）…"},
})


def task_folder(request: Request) -> Path:
    return home_of(request) / TASK_FOLDER


def task_files(request: Request) -> list[str]:
    folder = task_folder(request)
    return sorted(p.name for p in folder.iterdir() if p.suffix in TASK_SUFFIXES) if folder.is_dir() else []


def better(metric: str) -> str:
    """Which way is better for a metric, as its task kind declares it."""
    declared = stored_metric(metric)
    return "?" if declared is None else "higher" if declared.higher_is_better else "lower"


def comparison_view(payload: dict) -> dict:
    """The comparison's rows and one bar chart per metric, as `watt eval compare` draws them."""
    models = payload["models"]
    rows, charts = [], []
    for metric in payload["metrics"]:
        cells = [payload["scores"][m["id"]].get(metric) for m in models]
        rows.append({"metric": metric, "better": better(metric), "cells": cells})
        bars = [(m["name"][:24], v) for m, v in zip(models, cells, strict=True) if v is not None]
        charts.append(Markup(hbar_chart(bars, title=f"{metric} ({better(metric)})", colors=PALETTE,
                                        value_format="{:.2f}", width=460, label_width=170)))
    return {"models": models, "rows": rows, "charts": charts}


@router.get("/eval")
def eval_page(request: Request):
    chosen = request.query_params.getlist("model")
    with registry_of(request) as registry:
        candidates = [m for m in registry.list("model")]
        picked = [registry.get(ref) for ref in chosen]
        view = comparison_view(comparison(registry, picked)) if picked else None
    return render(request, "eval.html", candidates=candidates, chosen=[m.id for m in picked], view=view,
                  tasks=task_files(request))


@router.post("/console-api/eval/tasks", dependencies=[CsrfChecked])
async def upload_task(request: Request, name: str):
    saved = await save_upload(request, task_folder(request), name, MAX_TASK_BYTES, TASK_SUFFIXES)
    return {"name": saved.name}


@router.post("/console-api/eval/run", dependencies=[CsrfChecked])
async def run_tasks(request: Request):
    body = await request.json()
    models, names = list(body.get("models") or []), list(body.get("tasks") or [])
    limit = body.get("limit") or None
    if not models or not names:
        raise HTTPException(400, "pick at least one model and one task file")
    files = [task_folder(request) / checked_name(str(n), TASK_SUFFIXES) for n in names]

    def run() -> list[dict]:
        from wattlm.eval.loaders import TaskSettings, load_task
        from wattlm.eval.runner import evaluate_model
        from wattlm.models.store import resolve_model

        settings = TaskSettings(limit=int(limit) if limit else None)
        tasks = [load_task(f, settings) for f in files]
        rows = []
        with registry_of(request) as registry:
            for ref in models:
                art = resolve_model(registry, str(ref))
                for result in evaluate_model(registry, art, tasks):
                    rows.append({"model": art.id, "task": result.task, "scores": result.scores, "reused": result.reused})
        return rows

    try:
        return {"data": await asyncio.to_thread(run)}
    except (WattError, ValueError, FileNotFoundError) as error:
        raise HTTPException(400, str(error)) from error
