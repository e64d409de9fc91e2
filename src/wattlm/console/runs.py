"""The Runs pages and their JSON API: start a recipe, watch it live, cancel, resume.

Runs are jobs (`wattlm.jobs`): `watt run` processes record their rows and progress events in the
workspace, whether the CLI or this console started them, so every page (and every browser) shows the
same run. Starting one here spawns a detached `watt run --job ID` (`jobs_spawn.py`); the page follows
it over Server-Sent Events (`jobs_stream.py`). Uploads go through `jobs_uploads.py`.

Pages: `/runs` (list + start form), `/runs/{id}` (live view). API under `/console-api/`: `runs`
(GET list, POST start), `runs/{id}` (GET), `runs/{id}/events?after=N`, `runs/{id}/stream` (SSE),
`runs/{id}/cancel`, `runs/{id}/resume` (POST), `examples` (GET), `uploads` (POST opens one),
`uploads/{id}/{recipe|doc}?name=` (PUT one file as the body); starting a run with an upload's id seals
it. Every POST and PUT carries the CSRF token.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, model_validator

from wattlm.console import jobs_spawn, jobs_uploads
from wattlm.console.i18n import register
from wattlm.console.jobs_stream import run_stream
from wattlm.console.pages import home_of, render
from wattlm.console.security import CsrfChecked
from wattlm.errors import NotFound, WattError
from wattlm.jobs import Jobs

router = APIRouter()
API = "/console-api"

register({
    "runs.title": {"en": "Runs", "zh": "运行"},
    "runs.start": {"en": "Start a run", "zh": "开始运行"},
    "runs.example": {"en": "Example recipe", "zh": "示例配方"},
    "runs.use_example": {"en": "Run this example", "zh": "运行此示例"},
    "runs.upload": {"en": "Or upload a recipe and its documents", "zh": "或上传配方及其文档"},
    "runs.recipe_file": {"en": "Recipe (YAML)", "zh": "配方（YAML）"},
    "runs.doc_files": {"en": "Documents (saved under docs/ beside the recipe)", "zh": "文档（保存在配方旁的 docs/ 下）"},
    "runs.use_upload": {"en": "Upload and run", "zh": "上传并运行"},
    "runs.list": {"en": "All runs", "zh": "全部运行"},
    "runs.none": {"en": "No runs yet.", "zh": "还没有运行。"},
    "runs.no_examples": {"en": "No example recipes found.", "zh": "没有找到示例配方。"},
    "runs.recipe": {"en": "Recipe", "zh": "配方"},
    "runs.origin": {"en": "Started from", "zh": "来源"},
    "runs.stage": {"en": "Stage", "zh": "阶段"},
    "runs.step": {"en": "Step", "zh": "步数"},
    "runs.started": {"en": "Started", "zh": "开始时间"},
    "runs.finished": {"en": "Finished", "zh": "结束时间"},
    "runs.attempt": {"en": "Attempt", "zh": "尝试次数"},
    "runs.loss": {"en": "Training loss", "zh": "训练损失"},
    "runs.tps": {"en": "Tokens/s", "zh": "每秒词元数"},
    "runs.eta": {"en": "ETA", "zh": "预计剩余"},
    "runs.log": {"en": "Log (tail)", "zh": "日志（末尾）"},
    "runs.events": {"en": "Stages and results", "zh": "阶段与结果"},
    "runs.cancel": {"en": "Cancel run", "zh": "取消运行"},
    "runs.resume": {"en": "Resume run", "zh": "继续运行"},
    "runs.report": {"en": "Run report", "zh": "运行报告"},
    "runs.back": {"en": "All runs", "zh": "全部运行"},
    "js.runs.status.queued": {"en": "queued", "zh": "排队中"},
    "js.runs.status.running": {"en": "running", "zh": "运行中"},
    "js.runs.status.succeeded": {"en": "succeeded", "zh": "成功"},
    "js.runs.status.failed": {"en": "failed", "zh": "失败"},
    "js.runs.status.cancelled": {"en": "cancelled", "zh": "已取消"},
    "js.runs.status.interrupted": {"en": "interrupted", "zh": "已中断"},
    "js.runs.starting": {"en": "Starting…", "zh": "正在启动…"},
    "js.runs.uploading": {"en": "Uploading", "zh": "正在上传"},
    "js.runs.no_recipe": {"en": "Choose a recipe file first.", "zh": "请先选择配方文件。"},
    "js.runs.stage_took": {"en": "took", "zh": "用时"},
    "js.runs.no_steps": {"en": "No training steps yet.", "zh": "还没有训练步。"},
    "js.runs.loss_chart": {"en": "Training loss by step", "zh": "各步训练损失"},
    "js.runs.live_lost": {"en": "Live updates paused; reconnecting…", "zh": "实时更新中断，正在重连…"},
})


class StartRun(BaseModel):
    """Either an example recipe (a path under the examples folder) or a finished upload's id."""

    example: str | None = None
    upload: str | None = None

    @model_validator(mode="after")
    def one_source(self):
        if (self.example is None) == (self.upload is None):
            raise ValueError("give exactly one of 'example' or 'upload'")
        return self


def _http(error: WattError) -> HTTPException:
    if isinstance(error, NotFound):
        return HTTPException(404, str(error))
    if isinstance(error, jobs_uploads.UploadTooLarge):
        return HTTPException(413, str(error))
    return HTTPException(400, str(error))


def examples_dir(request: Request) -> Path:
    """The folder of example recipes: the app's setting, `WATT_EXAMPLES`, or the checkout's `examples/`."""
    configured = getattr(request.app.state, "examples_dir", None) or os.environ.get("WATT_EXAMPLES")
    return Path(configured) if configured else Path(__file__).resolve().parents[3] / "examples"


def list_examples(folder: Path) -> list[dict]:
    found = []
    for path in sorted(folder.glob("*/*.y*ml")) if folder.is_dir() else []:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and "foundation" in data:
            found.append({"path": path.relative_to(folder).as_posix(), "name": str(data.get("name", path.stem)),
                          "foundation": str(data["foundation"])})
    return found


def _example_path(folder: Path, relative: str) -> Path:
    """An example named by the browser, checked to be one of the listed files (never a path it made up)."""
    known = {e["path"] for e in list_examples(folder)}
    if relative not in known:
        raise NotFound(f"no example recipe {relative!r} (see GET {API}/examples)")
    return folder / relative


def _with_jobs(home: Path, work):
    jobs = Jobs(home)
    try:
        return work(jobs)
    except WattError as error:
        raise _http(error) from error
    finally:
        jobs.close()


def _list(jobs: Jobs) -> list[dict]:
    jobs.sweep()  # the first look after a server restart (or a crash) marks runs whose process is gone
    return [j.to_dict() for j in jobs.list()]


# -- pages ---------------------------------------------------------------------------------------

@router.get("/runs")
def runs_page(request: Request):
    runs = _with_jobs(home_of(request), _list)
    return render(request, "runs.html", runs=runs, examples=list_examples(examples_dir(request)))


@router.get("/runs/{job_id}")
def run_page(request: Request, job_id: str):
    def view(jobs: Jobs) -> dict:
        jobs.sweep()
        job = jobs.get(job_id)
        return {"run": job.to_dict(), "log_tail": jobs.tail_log(job)}

    return render(request, "runs_detail.html", **_with_jobs(home_of(request), view))


# -- JSON API ------------------------------------------------------------------------------------

@router.get(f"{API}/runs")
def api_runs(request: Request):
    return {"runs": _with_jobs(home_of(request), _list)}


@router.get(f"{API}/examples")
def api_examples(request: Request):
    return {"examples": list_examples(examples_dir(request))}


@router.post(f"{API}/runs", status_code=201, dependencies=[CsrfChecked])
def api_start(request: Request, body: StartRun):
    home = home_of(request)
    try:
        if body.example is not None:
            recipe = _example_path(examples_dir(request), body.example)
        else:
            recipe = jobs_uploads.seal(home, body.upload)
        job = jobs_spawn.start_run(home, recipe)
    except WattError as error:
        raise _http(error) from error
    return {"run": job.to_dict()}


@router.get(f"{API}/runs/{{job_id}}")
def api_run(request: Request, job_id: str):
    return _with_jobs(home_of(request), lambda jobs: {"run": jobs.get(job_id).to_dict(),
                                                     "log_tail": jobs.tail_log(jobs.get(job_id))})


@router.get(f"{API}/runs/{{job_id}}/events")
def api_events(request: Request, job_id: str, after: int = 0, limit: int = 1000):
    def read(jobs: Jobs) -> dict:
        jobs.get(job_id)  # 404 for an unknown run rather than an empty list
        events = [e.to_dict() for e in jobs.events(job_id, after=max(0, after), limit=min(max(1, limit), 5000))]
        return {"events": events, "next": events[-1]["seq"] if events else max(0, after)}

    return _with_jobs(home_of(request), read)


@router.get(f"{API}/runs/{{job_id}}/stream")
def api_stream(request: Request, job_id: str, after: int = 0):
    home = home_of(request)
    _with_jobs(home, lambda jobs: jobs.get(job_id))
    resume_from = request.headers.get("last-event-id", "")
    start = int(resume_from) if resume_from.isdigit() else max(0, after)
    return StreamingResponse(run_stream(request, home, job_id, start), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post(f"{API}/runs/{{job_id}}/cancel", dependencies=[CsrfChecked])
def api_cancel(request: Request, job_id: str):
    try:
        return {"run": jobs_spawn.cancel_run(home_of(request), job_id).to_dict()}
    except WattError as error:
        raise _http(error) from error


@router.post(f"{API}/runs/{{job_id}}/resume", dependencies=[CsrfChecked])
def api_resume(request: Request, job_id: str):
    try:
        return {"run": jobs_spawn.resume_run(home_of(request), job_id).to_dict()}
    except WattError as error:
        raise _http(error) from error


@router.post(f"{API}/uploads", status_code=201, dependencies=[CsrfChecked])
def api_new_upload(request: Request):
    return {"upload": jobs_uploads.new_upload(home_of(request))}


@router.put(f"{API}/uploads/{{upload_id}}/{{role}}", dependencies=[CsrfChecked])
async def api_upload_file(request: Request, upload_id: str, role: str, name: str):
    """One file as the raw request body (streamed, size-capped); `name` is the browser's file name."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > jobs_uploads.MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"upload over {jobs_uploads.MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    try:
        saved = await jobs_uploads.save_file(home_of(request), upload_id, role, name, request.stream())
    except WattError as error:
        raise _http(error) from error
    return JSONResponse(saved)
